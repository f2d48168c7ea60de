"""A contact's profile in Chromium: its timeline shows the person's events and pages back through htmx."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace

pytestmark = pytest.mark.e2e
EMAIL, PASSWORD = "timeline@example.com", "correct horse battery"


def _seed(url: str) -> None:
    """A workspace of its own with one contact and 25 page views, the newest on /checkout."""
    from siyu.contacts import service
    from siyu.core import workspaces
    from siyu.core.events import record_event

    engine = make_engine(url)
    actor = Actor.cli("e2e")
    with Session(engine) as session:
        owner = workspaces.create_user(session, email=EMAIL, name="Tim Line", password=PASSWORD)
        ws = workspaces.create_workspace(session, actor, name="Timeline Tea", owner=owner, locale="en",
                                         timezone="UTC")
        bind_workspace(session, ws.id)
        contact = service.create_contact(session, fields={"name": "Zhou Min", "phone": "13800000070"}, actor=actor)
        for i in range(25):
            path = "/checkout" if i == 24 else f"/tea/{i}"
            record_event(session, type="page.viewed", contact_id=contact.id, properties={"path": path},
                         idempotency_key=f"view-{i}")
        session.commit()
    engine.dispose()


def test_open_a_profile_and_page_through_its_timeline(page, server):
    from playwright.sync_api import expect

    _seed(server.database_url)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/console/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

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
