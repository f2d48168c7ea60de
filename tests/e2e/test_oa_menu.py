"""Editing an Official Account's custom menu in Chromium against the local fake OA: a refused name shown on
its cell, then the menu published and on the platform."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import own_workspace, sign_in
from tests.servers import wechat_oa as fake_oa

pytestmark = pytest.mark.e2e
EMAIL = "menu@example.com"


def test_edit_and_publish_the_custom_menu(page, server):
    from playwright.sync_api import expect

    from siyu.channels import service

    with fake_oa.running() as (running, base_url):
        with own_workspace(server.database_url, email=EMAIL, owner="Li Na", name="Menu Tea") as (session, actor):
            account = service.create_account(
                session, kind="wechat_oa", name="Tea OA",
                config={"app_id": fake_oa.APP_ID, "mode": "safe", "api_base": base_url},
                secrets={"app_secret": fake_oa.APP_SECRET, "token": fake_oa.TOKEN,
                         "encoding_aes_key": fake_oa.AES_KEY}, actor=actor)
            session.flush()
            account_id = account.id
        problems = sign_in(page, EMAIL)
        page.goto(f"/console/channels/{account_id}")
        page.locator("#edit-menu").click()
        expect(page.locator("h1")).to_have_text("Custom menu")

        page.locator("[name='b0.name']").fill("新品上市啦")  # 15 bytes: fine
        page.locator("[name='b0.type']").select_option("view")
        page.locator("[name='b0.value']").fill("https://shop.example.com/new")
        page.locator("[name='b1.name']").fill("会员")
        page.locator("[name='b1.s0.name']").fill("领优惠券")
        page.locator("[name='b1.s0.type']").select_option("click")
        page.locator("[name='b1.s0.value']").fill("COUPON")
        page.locator("[name='b1.s1.name']").fill("会员中心小程序")
        page.locator("[name='b1.s1.type']").select_option("miniprogram")
        page.locator("[name='b1.s1.value']").fill("https://shop.example.com/member")
        page.locator("[name='b1.s1.appid']").fill("wx286b93c14bbf93aa")
        page.locator("#publish-menu").click()
        expect(page.locator("[id='b1.s1.pagepath-error']")).to_contain_text("mini program page")
        assert running.menu is None

        page.locator("[name='b1.s1.pagepath']").fill("pages/member/index")
        page.locator("#publish-menu").click()
        expect(page.locator(".flash")).to_contain_text("Menu published")
        expect(page.locator("[name='b1.s0.value']")).to_have_value("COUPON")

    assert running.menu == {"button": [
        {"name": "新品上市啦", "type": "view", "url": "https://shop.example.com/new"},
        {"name": "会员", "sub_button": [
            {"name": "领优惠券", "type": "click", "key": "COUPON"},
            {"name": "会员中心小程序", "type": "miniprogram", "url": "https://shop.example.com/member",
             "appid": "wx286b93c14bbf93aa", "pagepath": "pages/member/index"}]}]}
    assert problems == []
