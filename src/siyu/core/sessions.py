"""Console sessions: login with throttling, lookup by cookie token, workspace switching, logout."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from siyu.core import clock, security
from siyu.core.errors import NotAuthenticated, Throttled
from siyu.core.models import ConsoleSession, LoginAttempt, User
from siyu.core.tenancy import bind_workspace
from siyu.core.workspaces import find_user, membership, user_workspaces


@dataclass(frozen=True)
class Login:
    """A fresh session; `token` goes into the cookie and is never stored."""

    token: str
    session: ConsoleSession
    user: User


def _throttle_keys(email: str, ip: str | None) -> list[str]:
    keys = [f"email:{email.strip().lower()}"]
    if ip:
        keys.append(f"ip:{ip}")
    return keys


def _check_throttle(session: Session, keys: list[str]) -> None:
    now = clock.now()
    for key in keys:
        row = session.get(LoginAttempt, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            minutes = max(1, math.ceil((row.locked_until - now).total_seconds() / 60))
            raise Throttled(
                f"too many failed logins: try again in {minutes} minutes", minutes=minutes, field="email"
            )


def _count_failure(session: Session, keys: list[str], *, max_failures: int, window: timedelta) -> None:
    now = clock.now()
    for key in keys:
        row = session.get(LoginAttempt, key)
        if row is None or now - row.window_start > window:
            if row is None:
                row = LoginAttempt(key=key, failures=0, window_start=now)
                session.add(row)
            row.failures, row.window_start, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= max_failures:
            row.locked_until = now + window


def login(
    session: Session, *, email: str, password: str, ip: str | None, hours: int, max_failures: int, window: timedelta
) -> Login:
    """Check a password and open a session; wrong passwords count toward a lock-out per email and address.

    A failed attempt's bookkeeping must survive the request's rollback, so callers commit it even when
    this raises (`NotAuthenticated` after `_count_failure`).
    """
    keys = _throttle_keys(email, ip)
    _check_throttle(session, keys)
    user = find_user(session, email) if email else None
    ok = security.verify_password(user.password_hash if user else None, password or "")
    if user is None or not ok or not user.is_active:
        _count_failure(session, keys, max_failures=max_failures, window=window)
        raise NotAuthenticated("wrong email or password", field="password")
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == keys[0]))
    token = security.token()
    spaces = user_workspaces(session, user.id)
    cs = ConsoleSession(
        token_hash=security.sha256(token),
        user_id=user.id,
        workspace_id=spaces[0][0].id if spaces else None,
        csrf_token=security.token(24),
        expires_at=clock.now() + timedelta(hours=hours),
        ip=ip,
    )
    session.add(cs)
    session.flush()
    return Login(token=token, session=cs, user=user)


def resolve(session: Session, token: str | None) -> tuple[ConsoleSession, User] | None:
    """The live session and its user for a cookie token; None when missing, unknown or expired."""
    if not token:
        return None
    row = session.execute(
        select(ConsoleSession, User).join(User, User.id == ConsoleSession.user_id)
        .where(ConsoleSession.token_hash == security.sha256(token))
    ).first()
    if row is None:
        return None
    cs, user = row[0], row[1]
    if cs.expires_at <= clock.now() or not user.is_active:
        return None
    return cs, user


def switch_workspace(session: Session, cs: ConsoleSession, workspace_id: int) -> None:
    """Make another of the user's workspaces the current one (404-like refusal for any other)."""
    # Membership of the target workspace is not visible through a session bound to the current one.
    bind_workspace(session, None)
    if membership(session, workspace_id, cs.user_id) is None:
        raise NotAuthenticated("you are not a member of that workspace", field="workspace_id")
    cs.workspace_id = workspace_id


def logout(session: Session, token: str | None) -> None:
    """End the session of this cookie token."""
    if token:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == security.sha256(token)))
