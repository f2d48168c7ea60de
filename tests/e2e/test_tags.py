"""Tagging in bulk in Chromium: make a tag in the tag manager, tick contacts on the list, tag them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import own_workspace, sign_in

pytestmark = pytest.mark.e2e
EMAIL = "tagger@example.com"


def _seed(url: str) -> None:
    """A workspace of its own with three contacts and a tag group."""
    from siyu.contacts import service, tags

    with own_workspace(url, email=EMAIL, owner="Tara Gu", name="Tag Tea") as (session, actor):
        for name in ("Bai Lu", "Chen Xi", "Du Fang"):
            service.create_contact(session, fields={"name": name}, actor=actor)
        tags.create_tag_group(session, name="Interest", actor=actor)


def test_make_a_tag_then_tag_two_ticked_contacts_in_bulk(page, server):
    from playwright.sync_api import expect

    _seed(server.database_url)
    problems = sign_in(page, EMAIL)

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
