"""A contact's profile in Chromium: its timeline shows the person's events and pages back through htmx."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import own_workspace, sign_in

pytestmark = pytest.mark.e2e
EMAIL = "timeline@example.com"


def _seed(url: str) -> None:
    """A workspace of its own with one contact and 25 page views, the newest on /checkout."""
    from siyu.contacts import service
    from siyu.core.events import record_event

    with own_workspace(url, email=EMAIL, owner="Tim Line", name="Timeline Tea") as (session, actor):
        contact = service.create_contact(session, fields={"name": "Zhou Min", "phone": "13800000070"}, actor=actor)
        for i in range(25):
            path = "/checkout" if i == 24 else f"/tea/{i}"
            record_event(session, type="page.viewed", contact_id=contact.id, properties={"path": path},
                         idempotency_key=f"view-{i}")


def test_open_a_profile_and_page_through_its_timeline(page, server):
    from playwright.sync_api import expect

    _seed(server.database_url)
    problems = sign_in(page, EMAIL)

    page.locator(".sidebar").get_by_role("link", name="Contacts").click()
    page.get_by_label("Search").fill("13800000070")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Zhou Min").click()

    expect(page.locator("h1")).to_have_text("Zhou Min")
    timeline = page.locator("#timeline .timeline-item")
    expect(timeline).to_have_count(20)
    expect(timeline.first).to_contain_text("page.viewed")
    expect(timeline.first).to_contain_text("/checkout")
    page.get_by_role("link", name="Show older events").click()
    expect(timeline).to_have_count(26)  # 25 views and contact.created
    expect(timeline.last).to_contain_text("contact.created")
    assert problems == []
