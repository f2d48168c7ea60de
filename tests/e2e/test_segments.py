"""The issue's browser scenario for segments: build one in the builder and watch the count change."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e


def test_building_a_segment_updates_the_live_count_and_saves_it(page, server):
    from playwright.sync_api import expect

    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/console/login")
    page.locator("#email").fill(server.email)
    page.locator("#password").fill(server.password)
    page.locator("form button[type=submit], form button").last.click()
    expect(page).to_have_url(re.compile(r"/console$"))
    english = page.locator(".lang-switch button", has_text="English")
    if "active" not in (english.get_attribute("class") or ""):
        english.click()
    switch = page.locator("#workspace-switch")
    if switch.locator("option:checked").inner_text() != "Acme Tea":
        switch.select_option(label="Acme Tea")
        expect(page.locator("h1")).to_have_text("Acme Tea")

    page.locator(".sidebar").get_by_role("link", name="Contacts").click()
    page.locator(".sidebar").get_by_role("link", name="Segments").click()
    expect(page.locator("h1")).to_have_text("Segments")
    page.get_by_role("link", name="New segment").click()

    count = page.locator("#segment-count-value")
    expect(count).to_have_text("5")  # an empty rule: everyone

    page.get_by_role("button", name="Add condition").click()
    row = page.locator(".seg-cond").first
    row.locator(".seg-field").select_option(label="City")
    row.locator(".seg-op").select_option(label="is")
    row.locator(".seg-value").fill("Shanghai")
    row.locator(".seg-value").press("Tab")
    expect(count).to_have_text("3")
    expect(page.locator(".segment-sample")).to_contain_text("Liu Yang")
    expect(page.locator(".segment-sample")).not_to_contain_text("Wang Fang")

    row.locator(".seg-op").select_option(label="is not")
    row = page.locator(".seg-cond").first
    row.locator(".seg-value").fill("Shanghai")
    row.locator(".seg-value").press("Tab")
    expect(count).to_have_text("2")

    page.locator(".seg-not").first.click()  # NOT around the whole rule
    expect(count).to_have_text("3")

    page.get_by_label("Segment name").fill("Shanghai tea lovers")
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator("h1")).to_have_text("Shanghai tea lovers")
    page.get_by_role("button", name="Refresh now").click()
    expect(page.locator("#segment-member-count")).to_have_text("3")
    expect(page.locator("#segment-members")).to_contain_text("Zhao Lei")
    assert not problems, problems
