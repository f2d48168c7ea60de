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

        menu = {"b0.name": "新品上市啦", "b0.type": "view", "b0.value": "https://shop.example.com/new",  # 15 bytes
                "b1.name": "会员", "b1.s0.name": "领优惠券", "b1.s0.type": "click", "b1.s0.value": "COUPON",
                "b1.s1.name": "会员中心小程序", "b1.s1.type": "miniprogram",
                "b1.s1.value": "https://shop.example.com/member", "b1.s1.appid": "wx286b93c14bbf93aa"}
        for name, value in menu.items():
            cell = page.locator(f"[name='{name}']")
            if name.endswith(".type"):
                cell.select_option(value)
            else:
                cell.fill(value)
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
