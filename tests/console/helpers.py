"""Signing in and posting console forms the way a browser does."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a rendered page put into its forms."""
    found = _CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, **extra: str):
    """Open the sign-in form and submit it; returns the response (a 303 on success)."""
    form = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text), **extra},
        follow_redirects=False,
    )


def page_token(client: TestClient, path: str = "/console") -> str:
    """The session's CSRF token, read from a console page."""
    r = client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


def post(client: TestClient, path: str, data: dict | None = None, **kwargs):
    """Submit a console form with the session's CSRF token, without following the redirect."""
    return client.post(
        path, data={"csrf_token": page_token(client), **(data or {})}, follow_redirects=False, **kwargs
    )
