"""The archive in Chromium: a Chinese search finds the message a contact sent, with the words highlighted."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import own_workspace, sign_in

pytestmark = pytest.mark.e2e
EMAIL = "archive@example.com"


def _seed(url: str) -> None:
    """Three messages received through the one inbound pipeline, on an account of a test adapter."""
    from siyu.channels import base
    from siyu.channels import service as channels
    from siyu.channels.base import Inbound
    from siyu.conversations import service as conversations
    from tests.channels.test_pipeline import Recording

    assert conversations.on_message is not None
    base.register_adapter(Recording())
    try:
        with own_workspace(url, email=EMAIL, owner="Qin Yu", name="Archive Tea") as (session, actor):
            account = channels.create_account(session, kind="recording", name="Tea OA", config={}, secrets={},
                                              actor=actor)
            for n, (openid, text) in enumerate((("o-1", "你好，我想领取优惠券"), ("o-2", "快递什么时候到？"),
                                               ("o-3", "Where is my refund?"))):
                channels.receive(session, account, Inbound(dedupe_key=f"m{n}", sender=openid, kind="text", text=text))
    finally:
        base._ADAPTERS.pop("recording", None)


def test_a_chinese_search_highlights_the_matching_message(page, server):
    from playwright.sync_api import expect

    _seed(server.database_url)
    problems = sign_in(page, EMAIL)

    page.goto("/console/inbox")
    page.locator(".sidebar").get_by_role("link", name="Archive search").click()
    expect(page.locator("#results")).to_contain_text("快递什么时候到")
    page.get_by_label("Words").fill("优惠券")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .hit")).to_have_count(1)
    expect(page.locator("#results .hit mark")).to_have_text("优惠券")
    expect(page.locator("#results")).not_to_contain_text("快递")
    assert problems == []
