"""The audit log: every write by a person or an API key, with who, when, through what, before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from siyu.core.models import AuditEntry

# Columns never copied into the log.
_SECRET_COLUMNS = frozenset({"password_hash", "secret_hash", "token_hash", "csrf_token"})


@dataclass(frozen=True)
class Actor:
    """Who did it: a console user, an API key, or someone at the command line; `via` says through what."""

    type: str  # "user" | "api_key" | "cli" | "system"
    id: str | None
    label: str
    via: str  # "console" | "api" | "cli" | "worker"
    ip: str | None = None

    @classmethod
    def cli(cls, label: str) -> Actor:
        """A person at the command line (the OS user)."""
        return cls(type="cli", id=None, label=label, via="cli")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def snapshot(obj: Any) -> dict[str, Any]:
    """A row's columns as JSON-able values, secrets left out."""
    mapper = inspect(type(obj))
    return {
        col.key: _plain(getattr(obj, col.key))
        for col in mapper.column_attrs
        if col.key not in _SECRET_COLUMNS
    }


def record(
    session: Session,
    actor: Actor,
    *,
    workspace_id: int,
    action: str,
    entity_type: str,
    entity_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry; called by every service function that writes on a person's behalf."""
    if before is not None and after is not None:
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: before.get(k) for k in sorted(changed)}
        after = {k: after.get(k) for k in sorted(changed)}
    entry = AuditEntry(
        workspace_id=workspace_id,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        via=actor.via,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
        ip=actor.ip,
    )
    session.add(entry)
    return entry
