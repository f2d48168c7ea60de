"""REST endpoints of the platform: the workspace, its members, API keys and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from siyu.core import workspaces
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.models import AuditEntry
from siyu.core.pagination import page
from siyu.core.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    AuditOut,
    MemberCreate,
    MemberOut,
    MemberUpdate,
    Page,
    WorkspaceOut,
    WorkspaceUpdate,
)

router = APIRouter()


def _member_out(m: object, u: object) -> MemberOut:
    return MemberOut(user_id=u.id, email=u.email, name=u.name, role=m.role, joined_at=m.created_at)  # type: ignore[attr-defined]


@router.get("/workspace", tags=["workspace"])
def read_workspace(auth: Annotated[Auth, Depends(api_auth("workspace", "read"))], session: SessionDep) -> WorkspaceOut:
    """The workspace this key belongs to."""
    return WorkspaceOut.model_validate(workspaces.get_workspace(session, auth.workspace_id))


@router.patch("/workspace", tags=["workspace"])
def update_workspace(
    body: WorkspaceUpdate, auth: Annotated[Auth, Depends(api_auth("workspace", "write"))], session: SessionDep
) -> WorkspaceOut:
    """Change the workspace's name, timezone, currency or locale."""
    ws = workspaces.get_workspace(session, auth.workspace_id)
    return WorkspaceOut.model_validate(
        workspaces.update_workspace(session, auth.actor, ws, body.model_dump(exclude_unset=True))
    )


@router.get("/members", tags=["members"])
def list_members(auth: Annotated[Auth, Depends(api_auth("members", "read"))], session: SessionDep) -> list[MemberOut]:
    """The workspace's users and their roles."""
    return [_member_out(m, u) for m, u in workspaces.list_members(session)]


@router.post("/members", status_code=201, tags=["members"])
def add_member(
    body: MemberCreate, auth: Annotated[Auth, Depends(api_auth("members", "write"))], session: SessionDep
) -> MemberOut:
    """Add a user (existing, or new with a password) to the workspace with a role."""
    user, m = workspaces.add_member(session, auth.actor, workspace_id=auth.workspace_id, actor_role=auth.role,
                                    **body.model_dump())
    return _member_out(m, user)


@router.patch("/members/{user_id}", tags=["members"])
def change_member_role(
    user_id: int, body: MemberUpdate, auth: Annotated[Auth, Depends(api_auth("members", "write"))],
    session: SessionDep,
) -> MemberOut:
    """Give a member another role."""
    m, u = workspaces.get_member(session, user_id)
    workspaces.change_role(session, auth.actor, m, body.role, actor_role=auth.role)
    return _member_out(m, u)


@router.delete("/members/{user_id}", status_code=204, tags=["members"])
def remove_member(
    user_id: int, auth: Annotated[Auth, Depends(api_auth("members", "write"))], session: SessionDep
) -> None:
    """Take a user out of the workspace."""
    m, _ = workspaces.get_member(session, user_id)
    workspaces.remove_member(session, auth.actor, m, actor_role=auth.role)


@router.get("/api-keys", tags=["api keys"])
def list_api_keys(auth: Annotated[Auth, Depends(api_auth("api_keys", "read"))], session: SessionDep) -> list[ApiKeyOut]:
    """The workspace's API keys (never their secrets)."""
    return [ApiKeyOut.model_validate(k) for k in workspaces.list_api_keys(session)]


@router.post("/api-keys", status_code=201, tags=["api keys"])
def create_api_key(
    body: ApiKeyCreate, auth: Annotated[Auth, Depends(api_auth("api_keys", "write"))], session: SessionDep
) -> ApiKeyCreated:
    """Create a key; the response carries its secret, shown this once."""
    new = workspaces.create_api_key(session, auth.actor, name=body.name, scopes=body.scopes)
    return ApiKeyCreated(**ApiKeyOut.model_validate(new.key).model_dump(), secret=new.secret)


@router.get("/api-keys/{key_id}", tags=["api keys"])
def read_api_key(
    key_id: int, auth: Annotated[Auth, Depends(api_auth("api_keys", "read"))], session: SessionDep
) -> ApiKeyOut:
    """One API key."""
    return ApiKeyOut.model_validate(workspaces.get_api_key(session, key_id))


@router.delete("/api-keys/{key_id}", tags=["api keys"])
def revoke_api_key(
    key_id: int, auth: Annotated[Auth, Depends(api_auth("api_keys", "write"))], session: SessionDep
) -> ApiKeyOut:
    """Revoke a key; it stops working at once."""
    return ApiKeyOut.model_validate(
        workspaces.revoke_api_key(session, auth.actor, workspaces.get_api_key(session, key_id))
    )


@router.get("/audit-log", tags=["audit"])
def list_audit_log(
    auth: Annotated[Auth, Depends(api_auth("audit", "read"))],
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    action: str | None = None,
) -> Page[AuditOut]:
    """Every write by a person or a key, newest first."""
    stmt = select(AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    rows, nxt = page(session, stmt, AuditEntry.id, cursor=cursor, limit=limit)
    return Page[AuditOut](items=[AuditOut.model_validate(r) for r in rows], next_cursor=nxt)
