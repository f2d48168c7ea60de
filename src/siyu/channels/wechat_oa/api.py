"""REST endpoints of the Official Account's own features: QR codes, the custom menu, template messages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from siyu.channels.wechat_oa import service as oa
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Strict
from siyu.core.tenancy import MAX_ID

router = APIRouter(prefix="/channel-accounts/{account_id}/wechat-oa", tags=["wechat-oa"])
Read = Annotated[Auth, Depends(api_auth("channels", "read"))]
Write = Annotated[Auth, Depends(api_auth("channels", "write"))]


@contextmanager
def _health_kept(session: Session) -> Iterator[None]:
    """The account's sync health outlives a platform refusal: committed before the 502 rolls back."""
    try:
        yield
    except oa.PlatformError:
        session.commit()
        raise


class QrCodeIn(Strict):
    scene: str = Field(min_length=1, max_length=64, description="scene_str: arrives with the scan or follow")
    permanent: bool = Field(default=False, description="permanent codes are limited to 100,000 per account")
    expire_seconds: int = Field(default=oa.MAX_EXPIRE_SECONDS, ge=60, le=oa.MAX_EXPIRE_SECONDS)


class QrCodeOut(BaseModel):
    scene: str
    ticket: str
    url: str = Field(description="the URL the QR code encodes")
    image_url: str = Field(description="the platform's showqrcode image of the ticket")
    expire_seconds: int | None


class Menu(BaseModel):
    button: list[dict[str, Any]] = Field(description="the platform's menu buttons (name, type, key/url, sub_button)")


class MiniProgram(Strict):
    appid: str = Field(min_length=1, max_length=32)
    pagepath: str = Field(min_length=1, max_length=1024)


class TemplateMessageIn(Strict):
    contact_id: int = Field(ge=1, le=MAX_ID)
    template_id: str = Field(min_length=1, max_length=128)
    data: dict[str, str | dict[str, str]] = Field(
        max_length=50, description='{"keyword1": "value"} or {"keyword1": {"value", "color"}}')
    url: str | None = Field(default=None, max_length=1024, pattern=r"^https?://")
    miniprogram: MiniProgram | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128,
                                        description="the same key queues the message once")


class MessageOut(BaseModel):
    id: int
    status: str
    error: str | None


@router.post("/qrcodes", status_code=201)
def create_qrcode(account_id: int, body: QrCodeIn, auth: Write, session: SessionDep) -> QrCodeOut:
    """A parameterised QR code (temporary, or permanent) for a scene."""
    account = oa.oa_account(session, account_id)
    with _health_kept(session):
        return QrCodeOut(**oa.create_qrcode(session, account, actor=auth.actor, **body.model_dump()))


@router.get("/menu")
def read_menu(account_id: int, auth: Read, session: SessionDep) -> Menu:
    """The account's custom menu as the platform has it (no buttons when it has none)."""
    account = oa.oa_account(session, account_id)
    with _health_kept(session):
        return Menu(**oa.get_menu(session, account))


@router.put("/menu")
def replace_menu(account_id: int, body: Menu, auth: Write, session: SessionDep) -> Menu:
    """Replace the custom menu (3 buttons, 5 sub-buttons each, the platform's name lengths)."""
    account = oa.oa_account(session, account_id)
    with _health_kept(session):
        return Menu(**oa.set_menu(session, account, body.model_dump(), actor=auth.actor))


@router.delete("/menu", status_code=204)
def remove_menu(account_id: int, auth: Write, session: SessionDep) -> None:
    """Remove the custom menu."""
    account = oa.oa_account(session, account_id)
    with _health_kept(session):
        oa.delete_menu(session, account, actor=auth.actor)


@router.post("/template-messages", status_code=202)
def send_template_message(account_id: int, body: TemplateMessageIn, auth: Write, session: SessionDep) -> MessageOut:
    """Queue a template message to a contact; its status moves to sent, then delivered or failed."""
    account = oa.oa_account(session, account_id)
    key = f"api:template:{body.idempotency_key or uuid.uuid4().hex}"
    message = oa.send_template(
        session, account, contact_id=body.contact_id, template_id=body.template_id, data=body.data, url=body.url,
        miniprogram=body.miniprogram.model_dump() if body.miniprogram else None, idempotency_key=key,
        actor=auth.actor,
    )
    return MessageOut(id=message.id, status=message.status, error=message.error)
