"""The issue's import scenario in Chromium: upload a file with one bad row, map, check, import, see it reported."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

FILE = "姓名,手机号,备注\n张三,13800138000,老客户\n坏行,12345,号码不对\n李四,13900139000,\n".encode("gbk")


def _run_worker(server) -> None:
    env = {**os.environ, "SIYU_DATABASE_URL": server.database_url,
           "SIYU_SECRET_KEY": "e2e-secret-key-not-for-production"}
    subprocess.run([sys.executable, "-m", "siyu.core.worker", "--burst"], env=env, check=True, timeout=120)


def test_import_a_file_with_one_bad_row_and_see_it_reported(page, server, tmp_path):
    from playwright.sync_api import expect

    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/console/login?lang=en")
    page.locator("#email").fill(server.email)
    page.locator("#password").fill(server.password)
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/console"))
    # Into the second workspace: the segment builder's test counts Acme Tea's contacts.
    expect(page).to_have_url(re.compile(r"/console$"))
    page.wait_for_load_state("load")  # the switcher submits itself once console.js has run
    switch = page.locator("#workspace-switch")
    if switch.locator("option:checked").inner_text() != "Second Shop":
        switch.select_option(label="Second Shop")
        expect(page.locator("h1")).to_have_text("Second Shop")

    upload = tmp_path / "客户名单.csv"
    upload.write_bytes(FILE)
    page.goto("/console/imports")
    page.locator("#file").set_input_files(str(upload))
    page.locator("#upload-form button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/console/imports/\d+/mapping$"))
    expect(page.locator("#map-0")).to_have_value("name")
    expect(page.locator("#map-1")).to_have_value("phone")
    expect(page.locator("#map-2")).to_have_value("ignore")
    page.locator("#check").click()
    expect(page.locator("#dry-run-errors")).to_contain_text("12345")
    expect(page.locator("#dry-run-errors")).to_contain_text("手机号")

    page.locator("#start").click()
    expect(page).to_have_url(re.compile(r"/console/imports/\d+$"))
    expect(page.locator("#import-progress progress")).to_have_count(1)
    _run_worker(server)

    # The progress card polls every second and stops once the import is done.
    expect(page.locator("#import-errors")).to_contain_text("12345", timeout=15_000)
    expect(page.locator("#import-errors")).to_contain_text("手机号")
    expect(page.locator("#import-errors tbody tr")).to_have_count(1)
    expect(page.locator("#import-progress")).not_to_have_attribute("hx-trigger", "every 1s")
    assert not problems
