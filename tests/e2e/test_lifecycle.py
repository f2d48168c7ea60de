"""The lifecycle page in Chromium: the stage chart draws, a bad threshold is refused by name, a good one saves."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace

pytestmark = pytest.mark.e2e
EMAIL, PASSWORD = "stages@example.com", "correct horse battery"


def _seed(url: str) -> None:
    """A workspace of its own with three new contacts."""
    from siyu.contacts import service
    from siyu.core import workspaces

    engine = make_engine(url)
    actor = Actor.cli("e2e")
    with Session(engine) as session:
        owner = workspaces.create_user(session, email=EMAIL, name="Lu Ming", password=PASSWORD)
        ws = workspaces.create_workspace(session, actor, name="Stage Tea", owner=owner, locale="en", timezone="UTC")
        bind_workspace(session, ws.id)
        for name in ("Bai Lu", "Chen Xi", "Du Fang"):
            service.create_contact(session, fields={"name": name}, actor=actor)
        session.commit()
    engine.dispose()


def test_the_stage_chart_draws_and_the_rules_form_refuses_then_saves(page, server):
    from playwright.sync_api import expect

    _seed(server.database_url)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/console/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto("/console/contacts")
    page.locator(".sidebar").get_by_role("link", name="Lifecycle").click()
    expect(page.locator("#lifecycle-chart canvas")).to_have_count(1)
    expect(page.locator('[data-stage="new"] .count')).to_have_text("3")

    page.get_by_label("Quiet days before churned").fill("30")
    page.get_by_role("button", name="Save rules").click()
    expect(page.locator("#rules")).to_contain_text("more days than dormant")

    page.get_by_label("Quiet days before churned").fill("240")
    page.get_by_role("button", name="Save rules").click()
    expect(page.locator("#flash-area")).to_contain_text("Lifecycle rules saved.")
    expect(page.get_by_label("Quiet days before churned")).to_have_value("240")
    assert problems == []
