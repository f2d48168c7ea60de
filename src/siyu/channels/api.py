"""REST endpoints of channel accounts and channel kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from siyu.channels import accounts
from siyu.channels import service as channels
from siyu.channels.models import ChannelAccount
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page, Strict

router = APIRouter(tags=["channels"])
Read = Annotated[Auth, Depends(api_auth("channels", "read"))]
Write = Annotated[Auth, Depends(api_auth("channels", "write"))]
Setting = str | int | float | bool
SecretValues = dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=8000)]]


class AccountIn(Strict):
    kind: str = Field(min_length=1, max_length=32, description="one of GET /channel-kinds")
    name: str = Field(min_length=1, max_length=120)
    config: dict[Annotated[str, Field(max_length=64)], Setting] = Field(
        default_factory=dict, description="settings shown back (AppID, URL...)")
    secrets: SecretValues = Field(default_factory=dict, description="settings never shown again once saved")


class AccountPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    status: Literal["active", "paused"] | None = None
    config: dict[Annotated[str, Field(max_length=64)], Setting | None] | None = Field(
        default=None, description="merged over the saved settings; null removes one")
    secrets: SecretValues | None = Field(default=None, description="merged over the saved ones; empty keeps one")


class Health(BaseModel):
    state: Literal["ok", "error", "unknown"]
    last_ok_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None


class AccountOut(BaseModel):
    id: int
    kind: str
    name: str
    status: str
    config: dict[str, Any]
    secrets: dict[str, bool] = Field(description="which secret settings are set (never their values)")
    callback_url: str | None = Field(description="paste into the platform's admin; null for outbound-only kinds")
    health: Health
    created_at: datetime
    updated_at: datetime


class TestOut(BaseModel):
    ok: bool
    message: str = Field(description="the platform's answer, or its error")
    checked_at: datetime
    health: Health


class KindOut(BaseModel):
    kind: str
    label: str
    fields: list[dict[str, Any]]
    rules: dict[str, Any]


def _health(account: ChannelAccount) -> Health:
    return Health(state=accounts.health(account), last_ok_at=account.last_ok_at,
                  last_error_at=account.last_error_at, last_error=account.last_error)


def _out(request: Request, account: ChannelAccount) -> AccountOut:
    return AccountOut(
        id=account.id, kind=account.kind, name=account.name, status=account.status, config=dict(account.config),
        secrets=accounts.secret_state(account),
        callback_url=accounts.callback_url(str(request.base_url), account, request.app.routes),
        health=_health(account), created_at=account.created_at, updated_at=account.updated_at,
    )


@router.get("/channel-kinds")
def list_kinds(auth: Read) -> list[KindOut]:
    """The channel kinds siyu can connect, with their settings and platform rules."""
    return [KindOut(**accounts.describe_kind(a)) for a in accounts.kinds()]


@router.get("/channel-accounts")
def list_accounts(
    request: Request, auth: Read, session: SessionDep, kind: Annotated[str | None, Query(max_length=32)] = None,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AccountOut]:
    """Channel accounts, newest first, with their sync health."""
    rows, nxt = accounts.list_page(session, kind=kind, cursor=cursor, limit=limit)
    return Page[AccountOut](items=[_out(request, a) for a in rows], next_cursor=nxt)


@router.post("/channel-accounts", status_code=201)
def create_account(request: Request, body: AccountIn, auth: Write, session: SessionDep) -> AccountOut:
    """Connect an account; its adapter checks the settings first."""
    account = accounts.create(session, kind=body.kind, name=body.name, config=body.config, secrets=body.secrets,
                              actor=auth.actor)
    return _out(request, account)


@router.get("/channel-accounts/{account_id}")
def read_account(request: Request, account_id: int, auth: Read, session: SessionDep) -> AccountOut:
    """One account: settings, which secrets are set, its callback URL and health."""
    return _out(request, channels.get_account(session, account_id))


@router.patch("/channel-accounts/{account_id}")
def update_account(
    request: Request, account_id: int, body: AccountPatch, auth: Write, session: SessionDep,
) -> AccountOut:
    """Rename, pause or resume an account, or change its settings (merged over the saved ones)."""
    account = channels.get_account(session, account_id)
    accounts.update(session, account, name=body.name, status=body.status, config=body.config,
                    secrets=body.secrets, actor=auth.actor)
    return _out(request, account)


@router.delete("/channel-accounts/{account_id}", status_code=204)
def delete_account(account_id: int, auth: Write, session: SessionDep) -> Response:
    """Remove an account; messages archived through it stay."""
    accounts.delete(session, channels.get_account(session, account_id), actor=auth.actor)
    return Response(status_code=204)


@router.post("/channel-accounts/{account_id}/test")
def test_account(account_id: int, auth: Write, session: SessionDep) -> TestOut:
    """Make one harmless real call to the platform now; the answer and the account's health."""
    account = channels.get_account(session, account_id)
    outcome = accounts.check_connection(session, account)
    return TestOut(ok=outcome.ok, message=outcome.message, checked_at=outcome.checked_at, health=_health(account))
