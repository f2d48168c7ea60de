"""Tagging in bulk in Chromium: make a tag in the tag manager, tick contacts on the list, tag them."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace

pytestmark = pytest.mark.e2e
EMAIL, PASSWORD = "tagger@example.com", "correct horse battery"


def _seed(url: str) -> None:
    """A workspace of its own with three contacts and a tag group."""
    from siyu.contacts import service, tags
    from siyu.core import workspaces

    engine = make_engine(url)
    actor = Actor.cli("e2e")
    with Session(engine) as session:
        owner = workspaces.create_user(session, email=EMAIL, name="Tara Gu", password=PASSWORD)
        ws = workspaces.create_workspace(session, actor, name="Tag Tea", owner=owner, locale="en", timezone="UTC")
        bind_workspace(session, ws.id)
        for name in ("Bai Lu", "Chen Xi", "Du Fang"):
            service.create_contact(session, fields={"name": name}, actor=actor)
        tags.create_tag_group(session, name="Interest", actor=actor)
        session.commit()
    engine.dispose()


def test_make_a_tag_then_tag_two_ticked_contacts_in_bulk(page, server):
    from playwright.sync_api import expect

    _seed(server.database_url)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/console/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto("/console/tags")
    page.get_by_label("New tag in Interest").fill("Oolong")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#tag-groups")).to_contain_text("Oolong")

    page.locator(".sidebar").get_by_role("link", name="Contacts").click()
    page.get_by_label("Select Bai Lu").check()
    page.get_by_label("Select Du Fang").check()
    page.locator("#bulk-tag-id").select_option(label="Oolong")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#flash-area")).to_contain_text("Tags updated on the selected contacts.")

    page.goto("/console/tags")
    expect(page.locator('[data-tag="Oolong"]')).to_contain_text("2")
    assert problems == []
