"""Setting channel accounts up: kinds and their settings, saving with secrets kept apart, testing the
connection, and the callback URL each account is configured with on its platform.

The API and the console both come here; `service` keeps the account rows and the audit.
"""

from __future__ import annotations

import secrets as random_secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Match

from siyu.channels import service
from siyu.channels.base import Adapter, ChannelError, ConfigField, adapter_for, adapter_kinds
from siyu.channels.models import ChannelAccount
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.errors import Invalid
from siyu.core.pagination import page

# Callback routes are mounted at /hooks/<kind with - for _>/{account}; these settings are ones a person
# copies into the platform's admin page along with the URL, so the form suggests random values for them.
SUGGESTED = {"token": 32, "encoding_aes_key": 43}


def adapter_of(kind: str) -> Adapter:
    """The adapter of a kind, or a 422 on `kind` naming the kinds there are."""
    adapter = adapter_for(kind)
    if adapter is None:
        raise Invalid(f"kind is one of {', '.join(adapter_kinds())}", field="kind")
    return adapter


def kinds() -> list[Adapter]:
    """Every channel kind's adapter, in kind order."""
    return [adapter_of(kind) for kind in adapter_kinds()]


def kind_path(kind: str) -> str:
    """The path segment of a kind's callbacks (`wechat_oa` → `wechat-oa`)."""
    return kind.replace("_", "-")


def has_callbacks(kind: str, routes: Iterable[Any]) -> bool:
    """True when the app serves `/hooks/<kind-path>/{account}` (outbound-only kinds have no callback)."""
    scope = {"type": "http", "method": "POST", "path": f"/hooks/{kind_path(kind)}/1", "root_path": "",
             "headers": [], "query_string": b""}
    return any(route.matches(scope)[0] != Match.NONE for route in routes if hasattr(route, "matches"))


def callback_url(base_url: str, account: ChannelAccount, routes: Iterable[Any]) -> str | None:
    """The absolute URL to paste into the platform's admin for this account, None for outbound-only kinds."""
    if not has_callbacks(account.kind, routes):
        return None
    return f"{base_url.rstrip('/')}/hooks/{kind_path(account.kind)}/{account.id}"


def suggestion(name: str) -> str:
    """A fresh random value for a setting the platform's admin wants the same on both sides, else ""."""
    length = SUGGESTED.get(name)
    if length is None:
        return ""
    alphabet = string.ascii_letters + string.digits
    return "".join(random_secrets.choice(alphabet) for _ in range(length))


def describe_kind(adapter: Adapter) -> dict[str, Any]:
    """A kind as the API lists it: label, settings and platform rules."""
    return {"kind": adapter.kind, "label": adapter.label, "fields": [asdict(f) for f in adapter.fields],
            "rules": asdict(adapter.rules)}


def secret_fields(adapter: Adapter) -> dict[str, ConfigField]:
    """The adapter's secret settings by name."""
    return {f.name: f for f in adapter.fields if f.secret}


def _check_sides(adapter: Adapter, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
    """Secret settings travel in `secrets` only (config is shown back), and values are text."""
    hidden = secret_fields(adapter)
    for name, value in config.items():
        if name in hidden:
            raise Invalid(f"{name} is a secret: send it in secrets", field=f"config.{name}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise Invalid("settings are text, numbers or true/false", field=f"config.{name}")
    for name, value in secrets.items():
        if not isinstance(value, str):
            raise Invalid("secrets are text", field=f"secrets.{name}")


def secret_state(account: ChannelAccount) -> dict[str, bool]:
    """Which secret settings are set; never their values."""
    adapter = adapter_of(account.kind)
    names = [*secret_fields(adapter), *sorted(set(account.secrets or {}) - set(secret_fields(adapter)))]
    return {name: bool((account.secrets or {}).get(name)) for name in names}


def list_page(session: Session, *, kind: str | None, cursor: str | None, limit: int) -> tuple[Any, str | None]:
    """The workspace's accounts, newest first, one page at a time."""
    stmt = select(ChannelAccount)
    if kind is not None:
        stmt = stmt.where(ChannelAccount.kind == kind)
    return page(session, stmt, ChannelAccount.id, cursor=cursor, limit=limit)


def create(
    session: Session, *, kind: str, name: str, config: Mapping[str, Any], secrets: Mapping[str, Any], actor: Actor,
) -> ChannelAccount:
    """A new account; the adapter checks its settings (errors name `config.x` / `secrets.x`)."""
    adapter = adapter_of(kind)
    clean = {k: v for k, v in secrets.items() if v not in (None, "")}
    _check_sides(adapter, config, clean)
    account = service.create_account(session, kind=kind, name=name, config=config, secrets=clean, actor=actor)
    _after_save(session, account)
    return account


def update(
    session: Session, account: ChannelAccount, *, name: str | None = None, status: str | None = None,
    config: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None, actor: Actor,
) -> ChannelAccount:
    """Change an account. Config and secrets given are merged over the saved ones: a null config value
    removes a setting, an empty secret keeps the saved one."""
    adapter = adapter_of(account.kind)
    _check_sides(adapter, config or {}, {k: v for k, v in (secrets or {}).items() if v is not None})
    merged = None
    if config is not None:
        merged = {**account.config, **config}
        merged = {k: v for k, v in merged.items() if v is not None}
    service.update_account(session, account, name=name, status=status, config=merged, secrets=secrets,
                           actor=actor)
    _after_save(session, account)
    return account


def _after_save(session: Session, account: ChannelAccount) -> None:
    # The chat-archive pull runs on a schedule for the accounts that have it configured.
    from siyu.channels import chat_archive

    chat_archive.schedule(session, account)


def delete(session: Session, account: ChannelAccount, *, actor: Actor) -> None:
    """Remove an account (its archived messages stay)."""
    service.delete_account(session, account, actor=actor)


@dataclass(frozen=True)
class ConnectionCheck:
    """What a connection test found: ok, and the platform's own words."""

    ok: bool
    message: str
    checked_at: datetime


def check_connection(session: Session, account: ChannelAccount) -> ConnectionCheck:
    """Make the adapter's one harmless real call now and record the account's health from it."""
    adapter = adapter_of(account.kind)
    try:
        message = service.run_async(adapter.check_connection(account))
    except ChannelError as exc:
        outcome = ConnectionCheck(ok=False, message=f"{exc.code}: {exc}", checked_at=clock.now())
        service.record_health(session, account, error=outcome.message)
    except Exception as exc:  # an adapter's bug or a setting it didn't foresee: shown, not a crash
        outcome = ConnectionCheck(ok=False, message=f"{type(exc).__name__}: {exc}", checked_at=clock.now())
        service.record_health(session, account, error=outcome.message)
    else:
        outcome = ConnectionCheck(ok=True, message=message, checked_at=clock.now())
        service.record_health(session, account)
    session.flush()
    return outcome


def health(account: ChannelAccount) -> str:
    """`ok`, `error` (the last call failed) or `unknown` (nothing called yet)."""
    if account.last_error_at is not None and (account.last_ok_at is None or account.last_error_at > account.last_ok_at):
        return "error"
    return "ok" if account.last_ok_at is not None else "unknown"
