"""The issue's broadcast scenario in Chromium: compose a broadcast for a segment with a live audience
count and a preview, schedule it in the workspace's timezone, and watch its report fill while a worker
sends it through a webhook account to a local endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from siyu.core import clock
from tests.e2e.conftest import own_workspace, sign_in
from tests.servers import serve

pytestmark = pytest.mark.e2e
EMAIL = "broadcaster@example.com"
NAMES = ("Bai Lu", "Chen Xi", "Du Fang")


def _seed(url: str, endpoint: str) -> None:
    """A workspace of its own with a webhook account and a segment of three contacts."""
    from siyu.channels import service as channels
    from siyu.contacts import segments, service

    with own_workspace(url, email=EMAIL, owner="Mei Lin", name="Broadcast Tea") as (session, actor):
        channels.create_account(session, kind="webhook", name="Shop app", config={"url": endpoint},
                                secrets={"secret": "s" * 20}, actor=actor)
        ids = [service.create_contact(session, fields={"name": n, "nickname": n}, actor=actor).id for n in NAMES]
        segment = segments.create_segment(session, name="Autumn buyers", kind="static", actor=actor)
        segments.add_members(session, segment, contact_ids=ids, actor=actor)


def test_compose_schedule_and_watch_the_report_fill(page, server):
    from playwright.sync_api import expect

    received: list[dict] = []

    async def endpoint(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"id": f"r{len(received)}"})

    with serve(Starlette(routes=[Route("/in", endpoint, methods=["POST"])])) as base:
        _seed(server.database_url, base + "/in")
        problems = sign_in(page, EMAIL)
        page.goto("/console/contacts")
        page.locator(".sidebar").get_by_role("link", name="Messaging").click()
        expect(page.locator("#broadcast-list")).to_contain_text("No broadcasts yet")
        page.get_by_role("link", name="New broadcast").click()

        page.get_by_label("Broadcast name").fill("Autumn tea")
        page.get_by_label("Segment").select_option(label="Autumn buyers")
        expect(page.locator("#audience-count")).to_have_text("3")
        page.get_by_label("Send through").select_option(label="Shop app (webhook)")
        # Each kind of message shows its own fields: an email has a subject, a text has none.
        page.get_by_label("Kind of message").select_option(label="Email")
        expect(page.get_by_label("Subject")).to_be_visible()
        page.get_by_label("Kind of message").select_option(label="Text")
        expect(page.get_by_label("Subject")).to_be_hidden()
        page.get_by_label("Text", exact=True).fill(
            "{{ nickname }}, the autumn tea is here: https://shop.example.com/autumn")
        page.get_by_label("Preview for").select_option(label="Chen Xi")
        expect(page.locator("#preview .preview-text")).to_have_text(
            "Chen Xi, the autumn tea is here: https://shop.example.com/autumn")
        page.get_by_label("Schedule").check()
        # The workspace's timezone is UTC; two minutes ahead, so it waits for its time.
        at = clock.now() + timedelta(minutes=2)
        page.get_by_label("Date and time (UTC)").fill(at.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_role("button", name="Save broadcast").click()

        expect(page.locator("#flash-area")).to_contain_text("Broadcast scheduled.")
        expect(page.locator("#broadcast-status")).to_have_text("Scheduled")
        expect(page.locator("#report")).to_contain_text("The report fills as soon as sending starts.")

        # A worker whose clock is ten minutes ahead finds the broadcast due and sends it.
        env = {**os.environ, "SIYU_DATABASE_URL": server.database_url, "SIYU_CLOCK_OFFSET_SECONDS": "600",
               "SIYU_WORKER_POLL_SECONDS": "0.2"}
        worker = subprocess.Popen([sys.executable, "-m", "siyu.core.worker"], env=env)
        try:
            expect(page.locator("#stat-sent")).to_have_text("3", timeout=60_000)
            expect(page.locator("#sent-chart canvas")).to_have_count(1)
            expect(page.locator('#status-counts [data-status="sent"] .count')).to_have_text("3")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    assert sorted(p["content"]["text"].split(",")[0] for p in received) == sorted(NAMES)
    assert all("/l/" in p["content"]["text"] for p in received)
    assert problems == []
