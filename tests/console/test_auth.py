"""Signing in and out: passwords, throttling, expiry, CSRF, and refusals that change nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from siyu.core import clock
from siyu.core.models import AuditEntry, ConsoleSession, LoginAttempt, Workspace
from tests.console.helpers import csrf_of, page_token, sign_in


def _sessions(db) -> int:
    return db.execute(select(func.count()).select_from(ConsoleSession)).scalar_one()


def test_right_password_opens_a_session_with_a_locked_down_cookie(client, db, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="ann@example.com", name="Ann")

    r = sign_in(client, "ann@example.com", next="/console/settings")

    assert r.status_code == 303
    assert r.headers["location"] == "/console/settings"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("siyu_session="))
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    page = client.get("/console")
    assert page.status_code == 200
    assert "Acme Tea" in page.text
    assert _sessions(db) == 1


def test_wrong_password_is_a_401_shown_at_the_field_and_opens_no_session(
    client, db, make_workspace, make_user
):
    ws = make_workspace(locale="en")
    make_user(ws, email="ann@example.com")

    r = sign_in(client, "ann@example.com", password="not the password")

    assert r.status_code == 401
    assert 'id="password-error"' in r.text
    assert "Wrong email or password." in r.text
    assert not any(h.startswith("siyu_session=") for h in r.headers.get_list("set-cookie"))
    assert _sessions(db) == 0
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_five_failures_lock_the_account_even_against_the_right_password(
    client, db, make_workspace, make_user
):
    ws = make_workspace(locale="en")
    make_user(ws, email="ann@example.com")

    statuses = [sign_in(client, "ann@example.com", password=f"guess {i}").status_code for i in range(5)]
    locked = sign_in(client, "ann@example.com")

    assert statuses == [401] * 5
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert _sessions(db) == 0
    # The failures were committed although every one of those requests ended in an error.
    row = db.get(LoginAttempt, "email:ann@example.com")
    assert row is not None
    assert row.locked_until is not None


def test_expired_session_sends_pages_to_sign_in_and_refuses_writes(client, make_workspace, make_user):
    ws = make_workspace(locale="en")
    make_user(ws, email="ann@example.com")
    assert sign_in(client, "ann@example.com").status_code == 303
    token = page_token(client)
    later = clock.now() + timedelta(hours=13)
    clock.set_clock(lambda: later)

    page = client.get("/console/settings", follow_redirects=False)
    write = client.post(
        "/console/settings",
        data={"csrf_token": token, "name": "Hacked", "timezone": "UTC", "currency": "CNY", "locale": "en"},
    )

    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2Fsettings"
    assert write.status_code == 401
    assert "Sign in" in write.text


def test_post_without_csrf_token_is_403_and_changes_nothing(client, db, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="ann@example.com")
    sign_in(client, "ann@example.com")
    audited = db.execute(select(func.count()).select_from(AuditEntry)).scalar_one()

    missing = client.post(
        "/console/settings", data={"name": "Renamed", "timezone": "UTC", "currency": "CNY", "locale": "en"}
    )
    wrong = client.post(
        "/console/settings",
        data={
            "csrf_token": "forged",
            "name": "Renamed",
            "timezone": "UTC",
            "currency": "CNY",
            "locale": "en",
        },
    )

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert "security token" in missing.text
    db.expire_all()
    assert db.get(Workspace, ws.id).name == "Acme Tea"
    assert db.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == audited


def test_sign_in_without_its_form_token_is_403_and_counts_no_failure(client, db, make_workspace, make_user):
    ws = make_workspace(locale="en")
    make_user(ws, email="ann@example.com")

    r = client.post("/console/login", data={"email": "ann@example.com", "password": "wrong wrong"})

    assert r.status_code == 403
    assert db.get(LoginAttempt, "email:ann@example.com") is None
    assert _sessions(db) == 0


def test_sign_out_ends_the_session(client, db, make_workspace, make_user):
    ws = make_workspace(locale="en")
    make_user(ws, email="ann@example.com")
    sign_in(client, "ann@example.com")

    r = client.post("/console/logout", data={"csrf_token": page_token(client)}, follow_redirects=False)

    assert r.status_code == 303
    assert _sessions(db) == 0
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_next_never_leads_off_the_console(client, make_workspace, make_user):
    ws = make_workspace(locale="en")
    make_user(ws, email="ann@example.com")

    r = sign_in(client, "ann@example.com", next="https://evil.example/console")

    assert r.headers["location"] == "/console"


def test_root_leads_to_the_console_and_static_assets_are_served(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/console"
    assert "htmx" in client.get("/static/vendor/htmx/htmx.min.js").text
    login = client.get("/console/login")
    assert csrf_of(login.text)
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]


def test_htmx_call_after_expiry_gets_401_and_a_way_back_to_sign_in(client, make_workspace, make_user):
    ws = make_workspace(locale="en")
    make_user(ws, email="ann@example.com")
    sign_in(client, "ann@example.com")
    later = clock.now() + timedelta(hours=13)
    clock.set_clock(lambda: later)

    r = client.get("/console/audit", params={"cursor": "x"}, headers={"HX-Request": "true"})

    assert r.status_code == 401
    assert r.headers["hx-redirect"].startswith("/console/login?next=")


def test_a_user_without_any_workspace_is_told_so(client, make_user):
    make_user(email="loner@example.com")

    assert sign_in(client, "loner@example.com").status_code == 303
    r = client.get("/console")

    assert r.status_code == 403
    assert "not a member of any workspace" in r.text
