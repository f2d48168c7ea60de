"""Workspaces, users and their roles, API keys: the platform's own writes, each one audited."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

from babel.numbers import list_currencies
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from siyu.core import audit, clock, security
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Forbidden, Invalid, NotFound
from siyu.core.i18n import LOCALES
from siyu.core.models import ApiKey, Membership, User, Workspace
from siyu.core.permissions import Role, valid_scope
from siyu.core.tenancy import bind_workspace, bound_workspace, get_scoped, parse_id

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCIES = frozenset(list_currencies())
_TIMEZONES = frozenset(available_timezones())
KEY_PREFIX = "sy"


# --- workspaces -----------------------------------------------------------------------------------

def _check_settings(*, name: str | None, timezone: str | None, currency: str | None, locale: str | None) -> None:
    if name is not None and not name.strip():
        raise Invalid("a workspace needs a name", field="name")
    if name is not None and len(name) > 120:
        raise Invalid("name is longer than 120 characters", field="name")
    if timezone is not None and timezone not in _TIMEZONES:
        raise Invalid(f"unknown timezone {timezone!r} (use an IANA name such as Asia/Shanghai)", field="timezone")
    if currency is not None and currency not in _CURRENCIES:
        raise Invalid(f"unknown currency {currency!r} (use an ISO 4217 code such as CNY)", field="currency")
    if locale is not None and locale not in LOCALES:
        raise Invalid(f"unsupported locale {locale!r} (one of {', '.join(LOCALES)})", field="locale")


def create_workspace(
    session: Session,
    actor: Actor,
    *,
    name: str,
    owner: User | None = None,
    timezone: str = "Asia/Shanghai",
    currency: str = "CNY",
    locale: str = "zh_Hans",
) -> Workspace:
    """A new workspace; its creator (if a user) becomes its owner."""
    _check_settings(name=name, timezone=timezone, currency=currency, locale=locale)
    ws = Workspace(name=name.strip(), timezone=timezone, currency=currency, locale=locale)
    session.add(ws)
    session.flush()
    audit.record(session, actor, workspace_id=ws.id, action="workspace.create", entity_type="workspace",
                 entity_id=ws.id, after=audit.snapshot(ws))
    if owner is not None:
        _add_membership(session, actor, ws.id, owner, Role.OWNER)
    return ws


def list_workspaces(session: Session) -> list[Workspace]:
    """Every workspace (platform view: the CLI)."""
    return list(session.execute(select(Workspace).order_by(Workspace.id)).scalars())


def get_workspace(session: Session, workspace_id: int) -> Workspace:
    """One workspace by id."""
    ws = session.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound("workspace not found", field="workspace")
    return ws


def update_workspace(session: Session, actor: Actor, ws: Workspace, changes: dict[str, Any]) -> Workspace:
    """Change the workspace's name, timezone, currency or locale."""
    allowed = {"name", "timezone", "currency", "locale"}
    for key, value in changes.items():
        if key not in allowed:
            raise Invalid(f"unknown field {key!r}", field=key)
        if value is None:
            raise Invalid(f"{key} may not be empty", field=key)
    _check_settings(**{k: changes.get(k) for k in allowed})
    before = audit.snapshot(ws)
    for key, value in changes.items():
        setattr(ws, key, value.strip() if key == "name" else value)
    session.flush()
    audit.record(session, actor, workspace_id=ws.id, action="workspace.update", entity_type="workspace",
                 entity_id=ws.id, before=before, after=audit.snapshot(ws))
    return ws


# --- users and memberships ------------------------------------------------------------------------

def normalise_email(email: str) -> str:
    """Lower-cased, trimmed, or a 422 on the `email` field."""
    email = (email or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise Invalid(f"{email!r} is not an email address", field="email")
    return email


def check_password(password: str) -> None:
    """Refuse passwords too short to be safe."""
    if len(password or "") < security.MIN_PASSWORD_LENGTH:
        raise Invalid(f"a password needs at least {security.MIN_PASSWORD_LENGTH} characters", field="password")


def find_user(session: Session, email: str) -> User | None:
    """The user with this email, if any."""
    return session.execute(select(User).where(User.email == email.strip().lower())).scalar_one_or_none()


def create_user(session: Session, *, email: str, name: str, password: str, locale: str | None = None) -> User:
    """A new console user (not yet in any workspace: callers add a membership and audit it there)."""
    email = normalise_email(email)
    check_password(password)
    if not (name or "").strip():
        raise Invalid("a user needs a name", field="name")
    if locale is not None and locale not in LOCALES:
        raise Invalid(f"unsupported locale {locale!r}", field="locale")
    if find_user(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists", field="email")
    user = User(email=email, name=name.strip(), password_hash=security.hash_password(password), locale=locale)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[tuple[User, list[tuple[str, str]]]]:
    """Every user with (workspace name, role) pairs (platform view: the CLI)."""
    users = session.execute(select(User).order_by(User.id)).scalars().all()
    rows = session.execute(
        select(Membership.user_id, Workspace.name, Membership.role)
        .join(Workspace, Workspace.id == Membership.workspace_id)
    ).all()
    by_user: dict[int, list[tuple[str, str]]] = {}
    for user_id, ws_name, role in rows:
        by_user.setdefault(user_id, []).append((ws_name, role))
    return [(u, by_user.get(u.id, [])) for u in users]


def reset_password(session: Session, actor: Actor, user: User, password: str) -> None:
    """Set a new password and end the user's console sessions; audited in each of the user's workspaces."""
    from siyu.core.models import ConsoleSession

    check_password(password)
    user.password_hash = security.hash_password(password)
    session.query(ConsoleSession).filter(ConsoleSession.user_id == user.id).delete()
    for (workspace_id,) in session.execute(select(Membership.workspace_id).where(Membership.user_id == user.id)):
        audit.record(session, actor, workspace_id=workspace_id, action="user.reset_password", entity_type="user",
                     entity_id=user.id)


def set_user_locale(session: Session, user: User, locale: str | None) -> None:
    """The console language a user chose (a personal preference, not a workspace write)."""
    if locale is not None and locale not in LOCALES:
        raise Invalid(f"unsupported locale {locale!r}", field="locale")
    user.locale = locale


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise Invalid(f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})", field="role") from None


def _add_membership(session: Session, actor: Actor, workspace_id: int, user: User, role: Role) -> Membership:
    m = Membership(workspace_id=workspace_id, user_id=user.id, role=role.value)
    session.add(m)
    session.flush()
    audit.record(session, actor, workspace_id=workspace_id, action="member.add", entity_type="member",
                 entity_id=user.id, after={"email": user.email, "role": role.value})
    return m


def membership(session: Session, workspace_id: int, user_id: int) -> Membership | None:
    """A user's membership of a workspace, if any."""
    return session.execute(
        select(Membership).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
    ).scalar_one_or_none()


def user_workspaces(session: Session, user_id: int) -> list[tuple[Workspace, str]]:
    """The workspaces a user belongs to, with the role in each."""
    rows = session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name)
    ).all()
    return [(ws, role) for ws, role in rows]


def _guard_owner_change(actor_role: str | None, old: str | None, new: str | None) -> None:
    if Role.OWNER.value in (old, new) and actor_role not in (None, Role.OWNER.value):
        raise Forbidden("only an owner may grant or take away the owner role", field="role")


def add_member(
    session: Session, actor: Actor, *, workspace_id: int, email: str, role: str, name: str | None = None,
    password: str | None = None, actor_role: str | None = None,
) -> tuple[User, Membership]:
    """Add a user to the workspace with a role; creates the user when a password is given for a new email."""
    r = _check_role(role)
    _guard_owner_change(actor_role, None, r.value)
    email = normalise_email(email)
    user = find_user(session, email)
    if user is None:
        if not password:
            raise Invalid("no user has this email yet: give a name and a password to create one", field="password")
        user = create_user(session, email=email, name=name or email.split("@")[0], password=password)
    elif membership(session, workspace_id, user.id) is not None:
        raise Conflict(f"{email} is already a member of this workspace", field="email")
    return user, _add_membership(session, actor, workspace_id, user, r)


def list_members(session: Session) -> list[tuple[Membership, User]]:
    """The bound workspace's members with their users."""
    ws = bound_workspace(session)
    rows = session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == ws).order_by(User.name)
    ).all()
    return [(m, u) for m, u in rows]


def get_member(session: Session, user_id: Any) -> tuple[Membership, User]:
    """One member of the bound workspace by user id (404 for anyone else)."""
    uid = parse_id(user_id, "member")
    row = session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id).where(Membership.user_id == uid)
    ).first()
    if row is None:
        raise NotFound("member not found")
    return row[0], row[1]


def _owners(session: Session) -> int:
    stmt = select(func.count()).select_from(Membership).where(Membership.role == Role.OWNER.value)
    return int(session.execute(stmt).scalar_one())


def change_role(session: Session, actor: Actor, m: Membership, role: str, *, actor_role: str | None) -> Membership:
    """Give a member another role; the last owner keeps theirs."""
    r = _check_role(role)
    _guard_owner_change(actor_role, m.role, r.value)
    if m.role == Role.OWNER.value and r != Role.OWNER and _owners(session) <= 1:
        raise Conflict("the workspace must keep at least one owner", field="role")
    before = {"role": m.role}
    m.role = r.value
    audit.record(session, actor, workspace_id=m.workspace_id, action="member.change_role", entity_type="member",
                 entity_id=m.user_id, before=before, after={"role": m.role})
    return m


def remove_member(session: Session, actor: Actor, m: Membership, *, actor_role: str | None) -> None:
    """Take a user out of the workspace; the last owner stays."""
    _guard_owner_change(actor_role, m.role, None)
    if m.role == Role.OWNER.value and _owners(session) <= 1:
        raise Conflict("the workspace must keep at least one owner", field="user_id")
    audit.record(session, actor, workspace_id=m.workspace_id, action="member.remove", entity_type="member",
                 entity_id=m.user_id, before={"role": m.role})
    session.delete(m)


# --- API keys -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewKey:
    """A key just made: `secret` is shown once and never again."""

    key: ApiKey
    secret: str


def create_api_key(session: Session, actor: Actor, *, name: str, scopes: list[str]) -> NewKey:
    """A new API key for the bound workspace; the full secret is returned once and only its hash kept."""
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise Forbidden("no workspace")
    if not (name or "").strip():
        raise Invalid("an API key needs a name", field="name")
    if not scopes:
        raise Invalid("an API key needs at least one scope", field="scopes")
    for scope in scopes:
        if not valid_scope(scope):
            raise Invalid(f"unknown scope {scope!r} (use <module>:read|write or all:read|write)", field="scopes")
    prefix = f"{KEY_PREFIX}_{security.token(9)}"[:16]
    secret = f"{prefix}.{security.token(32)}"
    key = ApiKey(workspace_id=workspace_id, name=name.strip(), prefix=prefix, secret_hash=security.sha256(secret),
                 scopes=sorted(set(scopes)), created_by=actor.label)
    session.add(key)
    session.flush()
    audit.record(session, actor, workspace_id=workspace_id, action="api_key.create", entity_type="api_key",
                 entity_id=key.id, after=audit.snapshot(key))
    return NewKey(key=key, secret=secret)


def list_api_keys(session: Session) -> list[ApiKey]:
    """The bound workspace's keys, newest first."""
    return list(session.execute(select(ApiKey).order_by(ApiKey.id.desc())).scalars())


def get_api_key(session: Session, key_id: Any) -> ApiKey:
    """One key of the bound workspace."""
    return get_scoped(session, ApiKey, key_id, what="API key")


def revoke_api_key(session: Session, actor: Actor, key: ApiKey) -> ApiKey:
    """Revoke a key: it stops working at once."""
    if key.revoked_at is not None:
        raise Conflict("this API key is already revoked", field="key_id")
    before = audit.snapshot(key)
    key.revoked_at = clock.now()
    audit.record(session, actor, workspace_id=key.workspace_id, action="api_key.revoke", entity_type="api_key",
                 entity_id=key.id, before=before, after=audit.snapshot(key))
    return key


# Built once: every API request runs it, and building the statement costs more than running it.
_KEY_BY_PREFIX = select(ApiKey).where(ApiKey.prefix == bindparam("prefix"))


def authenticate_api_key(session: Session, secret: str) -> ApiKey | None:
    """The live key matching a presented secret, or None. Binds nothing: the caller scopes the session."""
    prefix, dot, _ = secret.partition(".")
    if not dot or not prefix.startswith(KEY_PREFIX + "_"):
        return None
    unbound = bound_workspace(session)
    bind_workspace(session, None)
    try:
        key = session.execute(_KEY_BY_PREFIX, {"prefix": prefix}).scalar_one_or_none()
    finally:
        bind_workspace(session, unbound)
    if key is None or key.revoked_at is not None or not security.same(key.secret_hash, security.sha256(secret)):
        return None
    return key
