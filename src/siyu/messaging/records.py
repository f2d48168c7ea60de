"""Writing a messaging row on a person's behalf: the row changed, flushed, and the change audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from siyu.core import audit
from siyu.core.audit import Actor

T = TypeVar("T")


def _entity(action: str) -> str:
    return action.split(".", 1)[0]


def create(session: Session, row: T, *, action: str, actor: Actor) -> T:
    """Add a new row and audit it (`action` such as keyword_rule.create)."""
    session.add(row)
    session.flush()
    audit.record(session, actor, workspace_id=row.workspace_id, action=action,  # type: ignore[attr-defined]
                 entity_type=_entity(action), entity_id=row.id, after=audit.snapshot(row))  # type: ignore[attr-defined]
    return row


def update(session: Session, row: T, clean: Mapping[str, Any], *, action: str, actor: Actor) -> T:
    """Set a row's checked values and audit what changed."""
    before = audit.snapshot(row)
    for key, value in clean.items():
        setattr(row, key, value)
    session.flush()
    audit.record(session, actor, workspace_id=row.workspace_id, action=action,  # type: ignore[attr-defined]
                 entity_type=_entity(action), entity_id=row.id, before=before,  # type: ignore[attr-defined]
                 after=audit.snapshot(row))
    return row


def delete(session: Session, row: Any, *, action: str, actor: Actor) -> None:
    """Audit a row's deletion, then delete it."""
    audit.record(session, actor, workspace_id=row.workspace_id, action=action, entity_type=_entity(action),
                 entity_id=row.id, before=audit.snapshot(row))
    session.delete(row)
    session.flush()
