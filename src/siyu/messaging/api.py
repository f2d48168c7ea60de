"""REST endpoints of message templates (with a preview for a chosen contact) and welcome messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from siyu.channels import service as channels
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Strict
from siyu.core.tenancy import MAX_ID
from siyu.messaging import message_templates, welcome
from siyu.messaging.content import HELP as CONTENT_HELP
from siyu.messaging.message_templates import CHANNEL_KINDS

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("messaging", "read"))]
Write = Annotated[Auth, Depends(api_auth("messaging", "write"))]



class TemplateIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    channels: list[str] = Field(default_factory=list, max_length=len(CHANNEL_KINDS),
                                description=f"the channel kinds it suits, among {', '.join(CHANNEL_KINDS)}")
    content: dict[str, Any] = Field(description=CONTENT_HELP)


class TemplateUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    channels: list[str] | None = Field(default=None, max_length=len(CHANNEL_KINDS))
    content: dict[str, Any] | None = Field(default=None, description=CONTENT_HELP)


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    channels: list[str]
    content: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PreviewIn(Strict):
    contact_id: int = Field(ge=1, le=MAX_ID, description="the contact to render the template for")


class PreviewOut(BaseModel):
    contact_id: int
    content: dict[str, Any] = Field(description="the content as this contact would read it")


class WelcomeIn(Strict):
    enabled: bool = True
    content: dict[str, Any] = Field(description="{text, attachments: [link | image | miniprogram cards]}")


class WelcomeOut(BaseModel):
    account_id: int
    enabled: bool
    content: dict[str, Any] | None
    updated_at: datetime | None


@router.get("/templates", tags=["templates"])
def list_templates(auth: Read, session: SessionDep,
                   channel: Annotated[str | None, Query(max_length=32)] = None) -> list[TemplateOut]:
    """The workspace's message templates by name; `channel` keeps those suiting a channel kind."""
    return [TemplateOut.model_validate(t) for t in message_templates.list_templates(session, channel=channel)]


@router.post("/templates", status_code=201, tags=["templates"])
def create_template(body: TemplateIn, auth: Write, session: SessionDep) -> TemplateOut:
    """A new template; a name that is not a contact field is refused (422 naming the content field)."""
    template = message_templates.create_template(session, values=body.model_dump(), actor=auth.actor)
    return TemplateOut.model_validate(template)


@router.get("/templates/{template_id}", tags=["templates"])
def read_template(template_id: int, auth: Read, session: SessionDep) -> TemplateOut:
    """One template."""
    return TemplateOut.model_validate(message_templates.get_template(session, template_id))


@router.patch("/templates/{template_id}", tags=["templates"])
def update_template(template_id: int, body: TemplateUpdate, auth: Write, session: SessionDep) -> TemplateOut:
    """Change a template's name, channels or content."""
    template = message_templates.get_template(session, template_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return TemplateOut.model_validate(
        message_templates.update_template(session, template, changes=changes, actor=auth.actor))


@router.delete("/templates/{template_id}", status_code=204, tags=["templates"])
def delete_template(template_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a template."""
    message_templates.delete_template(session, message_templates.get_template(session, template_id),
                                      actor=auth.actor)
    return Response(status_code=204)


@router.post("/templates/{template_id}/preview", tags=["templates"])
def preview_template(template_id: int, body: PreviewIn, auth: Read, session: SessionDep) -> PreviewOut:
    """The template rendered for a chosen contact; a field the contact can't fill is a 422 naming it."""
    template = message_templates.get_template(session, template_id)
    content = message_templates.preview(session, template.content, contact_id=body.contact_id)
    return PreviewOut(contact_id=body.contact_id, content=content)


def _welcome_out(account_id: int, row: Any) -> WelcomeOut:
    if row is None:
        return WelcomeOut(account_id=account_id, enabled=False, content=None, updated_at=None)
    return WelcomeOut(account_id=account_id, enabled=row.enabled, content=row.content, updated_at=row.updated_at)


@router.get("/channel-accounts/{account_id}/welcome", tags=["welcome"])
def read_welcome(account_id: int, auth: Read, session: SessionDep) -> WelcomeOut:
    """The account's default welcome message (enabled false and no content when none was written)."""
    account = channels.get_account(session, account_id)
    return _welcome_out(account.id, welcome.get_welcome(session, account))


@router.put("/channel-accounts/{account_id}/welcome", tags=["welcome"])
def save_welcome(account_id: int, body: WelcomeIn, auth: Write, session: SessionDep) -> WelcomeOut:
    """Write the account's default welcome and switch it on or off; an empty text is refused."""
    account = channels.get_account(session, account_id)
    row = welcome.save_welcome(session, account, content=body.content, enabled=body.enabled, actor=auth.actor)
    return _welcome_out(account.id, row)
