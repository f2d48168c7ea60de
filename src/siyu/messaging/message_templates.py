"""Saved message templates: named contents, checked when saved, previewed for a chosen contact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts import service as contacts
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid, TenancyViolation
from siyu.core.tenancy import bound_workspace, get_scoped
from siyu.messaging import records
from siyu.messaging.content import check_content, render_for
from siyu.messaging.models import MessageTemplate

# The channel kinds a template may say it suits.
CHANNEL_KINDS = ("wechat_oa", "wecom", "wecom_kf", "sms", "email", "webhook")


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("templates are managed through a session bound to a workspace")
    return workspace_id


def list_templates(session: Session, *, channel: str | None = None) -> list[MessageTemplate]:
    """The workspace's templates by name; `channel` keeps those suiting that kind (or any)."""
    stmt = select(MessageTemplate).order_by(MessageTemplate.name, MessageTemplate.id)
    rows = list(session.execute(stmt).scalars())
    return [t for t in rows if channel is None or not t.channels or channel in t.channels]


def get_template(session: Session, template_id: Any) -> MessageTemplate:
    """One template of the bound workspace (404 for any other)."""
    return get_scoped(session, MessageTemplate, template_id, what="template")


def _clean(session: Session, values: Mapping[str, Any], template_id: int | None) -> dict[str, Any]:
    name = values.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 120:
        raise Invalid("a name of 1 to 120 characters", field="name")
    other = session.execute(select(MessageTemplate.id).where(MessageTemplate.name == name)).scalar_one_or_none()
    if other is not None and other != template_id:
        raise Conflict("another template has this name", field="name")
    channels = values.get("channels") or []
    if not isinstance(channels, list) or any(c not in CHANNEL_KINDS for c in channels):
        raise Invalid(f"channels are among {', '.join(CHANNEL_KINDS)}", field="channels")
    return {"name": name, "channels": sorted(set(channels)), "content": check_content(values.get("content"))}


def create_template(session: Session, *, values: Mapping[str, Any], actor: Actor) -> MessageTemplate:
    """A new template (name, channels, content) after its every text was checked."""
    template = MessageTemplate(workspace_id=_workspace(session), **_clean(session, values, None))
    return records.create(session, template, action="message_template.create", actor=actor)


def update_template(session: Session, template: MessageTemplate, *, changes: Mapping[str, Any],
                    actor: Actor) -> MessageTemplate:
    """Change a template's name, channels or content; the whole template is checked again."""
    merged = {"name": template.name, "channels": template.channels, "content": template.content, **changes}
    return records.update(session, template, _clean(session, merged, template.id), action="message_template.update",
                          actor=actor)


def delete_template(session: Session, template: MessageTemplate, *, actor: Actor) -> None:
    """Delete a template; keyword replies that named it send nothing (recorded as skipped) until changed."""
    records.delete(session, template, action="message_template.delete", actor=actor)


def preview(session: Session, content: Mapping[str, Any], *, contact_id: Any, viewer: Any = None) -> dict[str, Any]:
    """The content as a chosen contact would read it (the viewer must be allowed to see that contact)."""
    contact = contacts.get_contact(session, contact_id, viewer=viewer)
    return render_for(session, contact.id, check_content(content, attachments=True))
