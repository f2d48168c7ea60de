"""Authentication: API key scopes, body limits, console sessions and login throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.core import clock, sessions
from siyu.core.clock import FrozenClock
from siyu.core.errors import NotAuthenticated, Throttled
from siyu.core.models import ApiKey, AuditEntry, LoginAttempt
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer

WINDOW = timedelta(minutes=15)


def _login(db, email, password, ip="10.0.0.1"):
    return sessions.login(db, email=email, password=password, ip=ip, hours=12, max_failures=5, window=WINDOW)


def test_a_read_scope_cannot_write(client, make_workspace, make_key):
    ws = make_workspace()
    reader = bearer(make_key(ws, ["workspace:read"]))

    assert client.get("/api/v1/workspace", headers=reader).status_code == 200
    r = client.patch("/api/v1/workspace", json={"name": "Nope"}, headers=reader)

    assert r.status_code == 403
    assert "workspace:write" in r.json()["error"]["message"]
    assert client.get("/api/v1/workspace", headers=reader).json()["name"] == "Acme"


def test_key_secret_is_stored_only_as_a_hash(db, client, make_workspace, make_key):
    ws = make_workspace()
    secret = make_key(ws)
    bind_workspace(db, ws.id)
    key = db.execute(select(ApiKey)).scalar_one()
    assert secret not in (key.secret_hash, key.prefix)
    assert secret.startswith(key.prefix + ".")
    audit = db.execute(select(AuditEntry).where(AuditEntry.action == "api_key.create")).scalar_one()
    assert "secret_hash" not in audit.after


def test_ten_megabyte_body_is_refused_before_the_handler(client, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    body = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'

    declared = client.patch("/api/v1/workspace", content=body, headers={**key, "content-type": "application/json"})

    def chunks():
        for i in range(0, len(body), 1 << 20):
            yield body[i : i + (1 << 20)]

    streamed = client.patch("/api/v1/workspace", content=chunks(), headers={**key, "content-type": "application/json"})

    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "too_large"
    assert streamed.status_code == 413
    assert client.get("/api/v1/workspace", headers=key).json()["name"] == "Acme"


def test_login_opens_a_session_that_expires(db, make_workspace, make_user):
    ws = make_workspace()
    user = make_user(ws, email="ana@example.com", password="a long password")
    frozen = FrozenClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    clock.set_clock(frozen)

    login = _login(db, "ANA@example.com ", "a long password")

    assert login.session.workspace_id == ws.id
    assert sessions.resolve(db, login.token)[1].id == user.id
    assert sessions.resolve(db, "forged") is None
    frozen.advance(hours=12, seconds=1)
    assert sessions.resolve(db, login.token) is None


def test_wrong_password_and_unknown_email_look_the_same(db, make_workspace, make_user):
    make_user(make_workspace(), email="ana@example.com")
    with pytest.raises(NotAuthenticated) as wrong:
        _login(db, "ana@example.com", "wrong password!")
    with pytest.raises(NotAuthenticated) as unknown:
        _login(db, "bob@example.com", "wrong password!")
    assert wrong.value.message == unknown.value.message


def test_five_failures_lock_the_email_for_the_window(db, make_workspace, make_user):
    make_user(make_workspace(), email="ana@example.com", password="the right password")
    frozen = FrozenClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    clock.set_clock(frozen)
    for i in range(5):
        with pytest.raises(NotAuthenticated):
            _login(db, "ana@example.com", "guess", ip=f"10.0.0.{i}")

    with pytest.raises(Throttled) as locked:
        _login(db, "ana@example.com", "the right password", ip="10.9.9.9")
    frozen.advance(minutes=10)
    with pytest.raises(Throttled) as later:
        _login(db, "ana@example.com", "the right password", ip="10.9.9.9")
    assert (locked.value.minutes, later.value.minutes) == (15, 5)

    frozen.advance(minutes=5)
    assert _login(db, "ana@example.com", "the right password").user.email == "ana@example.com"
    assert db.get(LoginAttempt, "email:ana@example.com") is None


def test_one_address_guessing_many_emails_is_locked_too(db, make_workspace, make_user):
    make_user(make_workspace(), email="ana@example.com", password="the right password")
    for i in range(5):
        with pytest.raises(NotAuthenticated):
            _login(db, f"user{i}@example.com", "guess", ip="10.6.6.6")
    with pytest.raises(Throttled):
        _login(db, "ana@example.com", "the right password", ip="10.6.6.6")
