"""The issue's browser scenario: sign in, change language and workspace, make a key, find it audited."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e


def test_owner_signs_in_switches_language_and_workspace_and_creates_a_key_seen_once(page, server):
    from playwright.sync_api import expect

    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.get_by_label("Email").fill(server.email)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("Acme Tea")
    expect(page.locator(".sidebar")).to_contain_text("Audit log")

    page.get_by_role("button", name="简体中文").click()
    expect(page.locator(".sidebar")).to_contain_text("审计日志")
    expect(page.locator(".sidebar")).to_contain_text("用户与角色")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")

    page.wait_for_load_state("load")  # the switcher submits from console.js, bound once the page has loaded
    page.locator("#workspace-switch").select_option(label="Second Shop")
    expect(page.locator("h1")).to_have_text("Second Shop")
    expect(page.locator("#events-chart canvas")).to_have_count(1)

    page.locator(".sidebar").get_by_role("link", name="API 密钥").click()
    page.get_by_label("名称").fill("Shop order sync")
    page.get_by_label("events:write").check()
    page.get_by_role("button", name="创建密钥").click()
    secret = page.locator("#new-secret").inner_text()
    assert re.fullmatch(r"sy_[\w-]+\.[\w-]+", secret)
    expect(page.locator("#api-keys")).to_contain_text("Shop order sync")

    page.goto("/console/api-keys")
    expect(page.locator("#api-keys")).to_contain_text("Shop order sync")
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content()

    page.locator(".sidebar").get_by_role("link", name="审计日志").click()
    row = page.locator("tbody tr", has_text="api_key.create")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(server.email)
    expect(row).to_contain_text("Shop order sync")
    assert secret not in page.content()

    page.locator(".sidebar").get_by_role("link", name="概览").click()
    expect(page.locator("#events-chart canvas")).to_have_count(1)
    page.screenshot(path="/tmp/siyu-console.png", full_page=True)

    page.locator(".user-button").click()
    page.get_by_role("button", name="退出登录").click()
    expect(page).to_have_url(re.compile(r"/console/login$"))
    # Scripts ran under the Content-Security-Policy without a refusal or an exception.
    assert problems == []


def test_wrong_password_shows_the_error_at_the_field(page, server):
    from playwright.sync_api import expect

    page.goto("/console/login")
    page.get_by_label("Email").fill(server.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#password-error")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(re.compile(r"/console/login"))
