"""Setting up a channel account in Chromium: connect a webhook to a local endpoint, test the connection,
see the answer and the health turn to working."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import own_workspace, sign_in
from tests.servers import serve
from tests.servers.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
EMAIL = "channels@example.com"
SECRET = "e2e-signing-secret-0123"


def test_connect_a_webhook_and_test_its_connection(page, server):
    from playwright.sync_api import expect

    with own_workspace(server.database_url, email=EMAIL, owner="Wei Zhang", name="Hook Tea"):
        pass
    receiver = Receiver(secret=SECRET)
    with serve(receiver.app()) as base:
        problems = sign_in(page, EMAIL)
        page.goto("/console/channels")
        expect(page.locator("#accounts")).to_contain_text("No channel accounts yet")
        page.locator("#connect-webhook").click()
        page.get_by_label("Name").fill("Brand app")
        page.get_by_label("Endpoint URL").fill(f"{base}/hook")
        page.get_by_label("Signing secret").fill(SECRET)
        page.get_by_role("button", name="Connect").click()

        expect(page.locator(".secret-set")).to_have_text("set")
        expect(page.locator(".health-state")).to_have_text("not checked yet")
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator(".test-result")).to_contain_text("Connection works: HTTP 200")
        expect(page.locator(".health-state")).to_have_text("working")
        expect(page.locator(".last-ok")).to_contain_text("UTC")

    assert [m["type"] for m in receiver.received] == ["ping"]
    assert problems == []
