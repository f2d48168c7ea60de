"""Tenancy: every workspace-owned row carries workspace_id and every ORM query is scoped to one workspace.

A session bound to a workspace (`bind_workspace`) gets a WHERE workspace_id = :ws added to every
SELECT/UPDATE/DELETE on any `WorkspaceScoped` table, and refuses to flush a row of another workspace.
Code that must see across workspaces (the worker claiming jobs, a platform admin listing workspaces)
uses a session that is not bound, which is explicit at the call site.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ForeignKey, event
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

from siyu.core.db import Id
from siyu.core.errors import NotFound, TenancyViolation

_KEY = "workspace_id"
T = TypeVar("T")


class WorkspaceScoped:
    """Mixin for every table whose rows belong to one workspace."""

    @declared_attr
    def workspace_id(cls) -> Mapped[int]:
        return mapped_column(Id, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True, nullable=False)


def bind_workspace(session: Session, workspace_id: int | None) -> Session:
    """Scope every later query of this session to one workspace (None lifts the scope)."""
    if workspace_id is None:
        session.info.pop(_KEY, None)
    else:
        session.info[_KEY] = int(workspace_id)
    return session


def bound_workspace(session: Session) -> int | None:
    """The workspace this session is scoped to, if any."""
    value = session.info.get(_KEY)
    return int(value) if value is not None else None


MAX_ID = 2**63 - 1


def parse_id(value: Any, what: str) -> int:
    """A row id from outside, or NotFound: not a number, or outside bigint (PostgreSQL would error)."""
    try:
        key = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"{what} not found") from None
    if not 0 < key <= MAX_ID:
        raise NotFound(f"{what} not found")
    return key


def get_scoped(session: Session, model: type[T], object_id: Any, *, what: str | None = None) -> T:
    """Load one row of the bound workspace by id, or raise NotFound (also for other workspaces' ids)."""
    if bound_workspace(session) is None:
        raise TenancyViolation("get_scoped needs a session bound to a workspace")
    key = parse_id(object_id, what or model.__name__)
    # The identity map first (no query for a row this session holds), the workspace checked by hand
    # then; otherwise the SELECT carries the workspace criteria like every other.
    row = session.get(model, key)
    if row is None or getattr(row, "workspace_id", None) not in (None, bound_workspace(session)):
        raise NotFound(f"{what or model.__name__} not found")
    return row


@event.listens_for(Session, "do_orm_execute")
def _add_workspace_criteria(state: ORMExecuteState) -> None:
    workspace_id = state.session.info.get(_KEY)
    if workspace_id is None or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(
                WorkspaceScoped,
                lambda cls: cls.workspace_id == workspace_id,
                include_aliases=True,
            )
        )


@event.listens_for(Session, "before_flush")
def _check_new_rows(session: Session, _ctx: Any, _instances: Any) -> None:
    workspace_id = session.info.get(_KEY)
    if workspace_id is None:
        return
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, WorkspaceScoped):
            continue
        if obj.workspace_id is None:
            obj.workspace_id = workspace_id
        elif obj.workspace_id != workspace_id:
            raise TenancyViolation(
                f"{type(obj).__name__} of workspace {obj.workspace_id} written through workspace {workspace_id}"
            )
