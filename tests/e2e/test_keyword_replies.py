"""Editing a keyword reply in Chromium takes effect: the next message with the new keyword is answered
and the hit shows on the list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.orm import Session

from siyu.channels import base
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace
from tests.e2e.conftest import own_workspace, sign_in
from tests.messaging.conftest import KINDS, Recording, text

pytestmark = pytest.mark.e2e
EMAIL = "replier@example.com"


@contextmanager
def oa_adapter() -> Iterator[None]:
    """A recording adapter standing in for the Official Account's, in this test process only."""
    before = base.adapter_for("wechat_oa")
    base.register_adapter(Recording("wechat_oa", KINDS["wechat_oa"]))
    try:
        yield
    finally:
        if before is None:
            base._ADAPTERS.pop("wechat_oa", None)
        else:
            base.register_adapter(before)


def _seed(url: str) -> tuple[int, int]:
    from siyu.channels import service
    from siyu.messaging import keywords

    with own_workspace(url, email=EMAIL, owner="Rui Fang", name="Reply Tea") as (session, actor):
        account = service.create_account(session, kind="wechat_oa", name="Tea OA", config={}, secrets={},
                                         actor=actor)
        keywords.create_rule(session, values={"name": "Price", "account_id": account.id, "match_type": "contains",
                                              "keywords": ["price"], "reply": {"text": "See the menu"}}, actor=actor)
        ids = (account.workspace_id, account.id)
    return ids


def _message(url: str, workspace_id: int, account_id: int, said: str) -> dict | None:
    """What the OA's callback would do with a text message: the pipeline, committed; the passive reply."""
    import siyu.messaging.keywords  # noqa: F401  (registers the receive hook in this process)
    from siyu.channels import service

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            bind_workspace(session, workspace_id)
            got = service.receive(session, service.get_account(session, account_id), text(said, key=said))
            session.commit()
            return got.reply
    finally:
        engine.dispose()


def test_edit_a_keyword_rule_and_the_next_message_is_answered_and_counted(page, server):
    from playwright.sync_api import expect

    with oa_adapter():
        workspace_id, account_id = _seed(server.database_url)
        assert _message(server.database_url, workspace_id, account_id, "what does it cost") is None
        problems = sign_in(page, EMAIL)

        page.goto("/console/keywords")
        page.get_by_role("link", name="Price").click()
        page.get_by_label("Keywords, one a line").fill("price\ncost")
        page.get_by_role("button", name="Save keyword reply").click()
        expect(page.locator("#flash-area")).to_contain_text("Keyword reply saved.")

        reply = _message(server.database_url, workspace_id, account_id, "how much does it cost?")
        assert reply == {"type": "text", "text": "See the menu"}
        page.reload()
        expect(page.locator("#keyword-rules .hit-count")).to_have_text("1")
        expect(page.locator("#recent-hits")).to_contain_text("cost")
    assert problems == []
