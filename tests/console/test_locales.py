"""The console in English, 简体中文 and Español: every page, and which language wins."""

from __future__ import annotations

import pytest

from tests.console.helpers import post, sign_in

PAGES = [
    "/console",
    "/console/m/acquisition",
    "/console/m/analytics",
    "/console/settings",
    "/console/users",
    "/console/api-keys",
    "/console/audit",
]
EXPECTED = {
    "en": ('lang="en"', "Audit log", "Nothing here yet"),
    "zh_Hans": ('lang="zh-Hans"', "审计日志", "这里还没有内容"),
    "es": ('lang="es"', "Registro de auditoría", "Aquí todavía no hay nada"),
}


@pytest.mark.parametrize("locale", list(EXPECTED))
def test_every_page_renders_in_each_language(client, make_workspace, make_user, locale):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com")
    sign_in(client, "owner@example.com")
    post(client, "/console/api-keys", {"name": "Shop", "scopes": ["all:read"]})

    switched = post(client, "/console/locale", {"locale": locale, "next": "/console/audit"})

    assert switched.headers["location"] == "/console/audit"
    html_lang, nav_word, empty_title = EXPECTED[locale]
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 200, path
        assert html_lang in r.text, path
        assert nav_word in r.text, path
    assert empty_title in client.get("/console/m/journeys").text
    login = client.get("/console/login", params={"lang": locale})
    assert html_lang in login.text


def test_users_choice_beats_workspace_language_which_beats_the_browser(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="es")
    make_user(ws, email="owner@example.com")
    sign_in(client, "owner@example.com")

    workspace_default = client.get("/console", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    post(client, "/console/locale", {"locale": "zh_Hans"})
    chosen = client.get("/console", headers={"Accept-Language": "en"})

    assert 'lang="es"' in workspace_default.text
    assert 'lang="zh-Hans"' in chosen.text


def test_sign_in_page_follows_the_browser(client):
    assert (
        'lang="zh-Hans"' in client.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    )
    assert "Iniciar sesión" in client.get("/console/login", headers={"Accept-Language": "es-ES"}).text


def test_an_unknown_language_is_refused_and_nothing_changes(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com")
    sign_in(client, "owner@example.com")

    r = post(client, "/console/locale", {"locale": "fr"})

    assert r.status_code == 422
    assert 'lang="en"' in client.get("/console").text
