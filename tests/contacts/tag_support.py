"""Helpers of the tags, staff and lifecycle tests: a workspace with contacts written straight to the table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact
from siyu.core.audit import Actor
from siyu.core.models import AuditEntry, Event
from siyu.core.tenancy import bind_workspace

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


def add_contacts(db: Session, workspace_id: int, n: int, **fields: Any) -> list[int]:
    """`n` contacts in a workspace (the session stays bound to it); their ids."""
    db.flush()
    bind_workspace(db, workspace_id)
    contacts = [Contact(workspace_id=workspace_id, name=f"Contact {i}", **fields) for i in range(n)]
    db.add_all(contacts)
    db.flush()
    return [c.id for c in contacts]


def events_of(db: Session, type_: str) -> list[Event]:
    """The bound workspace's events of one type, oldest first."""
    return list(db.execute(select(Event).where(Event.type == type_).order_by(Event.id)).scalars())


def audit_actions(db: Session) -> list[str]:
    """The bound workspace's audit actions, oldest first."""
    rows = db.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars()
    return [a for a in rows if a != "workspace.create"]
