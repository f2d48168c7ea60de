"""A recipient unsubscribes in Chromium: the link asks first (in their language), the button withdraws."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace
from tests.e2e.conftest import own_workspace

pytestmark = pytest.mark.e2e
ADDRESS = "reader@example.com"
# The e2e server's SIYU_SECRET_KEY (tests/e2e/conftest.py): links are signed with the server's key.
SERVER_KEY = "e2e-secret-key-not-for-production"


def _seed(url: str) -> tuple[int, int, int]:
    """A workspace with a mailbox account and an opted-in reader; (workspace, account, contact) ids."""
    from siyu.channels import service as channels
    from siyu.contacts import service as contacts

    with own_workspace(url, email="mailer@example.com", owner="Mei Lin", name="Mail Tea") as (session, actor):
        account = channels.create_account(
            session, kind="email", name="News", actor=actor,
            config={"host": "smtp.example.com", "port": "587", "security": "starttls",
                    "from_address": "news@example.com", "public_url": "http://localhost"},
            secrets={})
        contact, _ = contacts.upsert_contact(session, identities=[{"type": "email", "value": ADDRESS}], actor=None)
        contacts.set_consent(session, contact, channel="email", status="granted", source="signup", actor=actor)
        session.flush()
        return account.workspace_id, account.id, contact.id


def test_the_link_asks_in_chinese_then_the_button_unsubscribes(page, server, monkeypatch):
    from playwright.sync_api import expect

    from siyu.channels.email_feedback import unsubscribe_token
    from siyu.contacts import service as contacts
    from siyu.settings import get_settings

    workspace_id, account_id, contact_id = _seed(server.database_url)
    monkeypatch.setenv("SIYU_SECRET_KEY", SERVER_KEY)
    get_settings.cache_clear()
    try:
        token = unsubscribe_token(workspace_id, account_id, ADDRESS)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    page.goto(f"/u/{token}?lang=zh_Hans")
    expect(page.get_by_role("heading")).to_have_text("不再接收这些邮件？")
    expect(page.locator(".card")).to_contain_text(ADDRESS)
    page.get_by_role("button", name="退订").click()
    expect(page.get_by_role("heading")).to_have_text("您已退订")

    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session:
            bind_workspace(session, workspace_id)
            contact = contacts.get_contact(session, contact_id)
            assert contacts.contact_permission(session, contact, "email").reason == "withdrawn"
    finally:
        engine.dispose()
