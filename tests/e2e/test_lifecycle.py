"""The lifecycle page in Chromium: the stage chart draws, a bad threshold is refused by name, a good one saves."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import own_workspace, sign_in

pytestmark = pytest.mark.e2e
EMAIL = "stages@example.com"


def _seed(url: str) -> None:
    """A workspace of its own with three new contacts."""
    from siyu.contacts import service

    with own_workspace(url, email=EMAIL, owner="Lu Ming", name="Stage Tea") as (session, actor):
        for name in ("Bai Lu", "Chen Xi", "Du Fang"):
            service.create_contact(session, fields={"name": name}, actor=actor)


def test_the_stage_chart_draws_and_the_rules_form_refuses_then_saves(page, server):
    from playwright.sync_api import expect

    _seed(server.database_url)
    problems = sign_in(page, EMAIL)

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
