"""The Official Account's own features for the REST API and the console: parameterised QR codes, the
custom menu and template messages. Platform calls run through `channels.service.run_async` and record
the account's sync health; a platform refusal becomes a 502 naming the platform's reason."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from siyu.channels import service
from siyu.channels.base import ChannelError
from siyu.channels.models import ChannelAccount
from siyu.channels.wechat_oa import client
from siyu.channels.wechat_oa.adapter import KIND
from siyu.channels.wechat_oa.menus import clean_menu
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core import audit
from siyu.core.audit import Actor
from siyu.core.errors import Invalid, NotFound, SiyuError

T = TypeVar("T")
MAX_EXPIRE_SECONDS = 30 * 24 * 3600


class PlatformError(SiyuError):
    """The Official Account refused or failed a call made for a person."""

    status = 502
    code = "platform_error"


def oa_account(session: Session, account_id: Any) -> ChannelAccount:
    """An Official Account of the bound workspace (404 for any other account or kind)."""
    account = service.get_account(session, account_id)
    if account.kind != KIND:
        raise NotFound("no such Official Account", field="account_id")
    return account


def _run(session: Session, account: ChannelAccount, call: Coroutine[Any, Any, T]) -> T:
    try:
        result = service.run_async(call)
    except ChannelError as exc:
        service.record_health(session, account, error=f"{exc.code}: {exc}")
        raise PlatformError(f"{exc.code}: {exc}") from exc
    service.record_health(session, account)
    return result


def _audit(session: Session, account: ChannelAccount, actor: Actor, action: str, after: dict[str, Any] | None,
           before: dict[str, Any] | None = None) -> None:
    audit.record(session, actor, workspace_id=account.workspace_id, action=action, entity_type="channel_account",
                 entity_id=account.id, before=before, after=after)


def create_qrcode(session: Session, account: ChannelAccount, *, scene: str, permanent: bool = False,
                  expire_seconds: int = MAX_EXPIRE_SECONDS, actor: Actor) -> dict[str, Any]:
    """A parameterised QR code: a scan or a follow through it arrives with this scene."""
    scene = (scene or "").strip()
    if not 1 <= len(scene) <= 64:
        raise Invalid("a scene of 1 to 64 characters", field="scene")
    if not permanent and not 60 <= expire_seconds <= MAX_EXPIRE_SECONDS:
        raise Invalid(f"60 to {MAX_EXPIRE_SECONDS} seconds", field="expire_seconds")
    code = _run(session, account, client.create_qrcode(account, scene, permanent=permanent,
                                                        expire_seconds=expire_seconds))
    _audit(session, account, actor, "wechat_oa.qrcode.create", {"scene": scene, "permanent": permanent})
    return code


def get_menu(session: Session, account: ChannelAccount) -> dict[str, Any]:
    """The account's custom menu as the platform has it."""
    return _run(session, account, client.get_menu(account))


def set_menu(session: Session, account: ChannelAccount, menu: Mapping[str, Any], *, actor: Actor) -> dict[str, Any]:
    """Replace the custom menu after checking it against the platform's rules."""
    cleaned = clean_menu(menu)
    _run(session, account, client.create_menu(account, cleaned))
    _audit(session, account, actor, "wechat_oa.menu.update", cleaned)
    return cleaned


def delete_menu(session: Session, account: ChannelAccount, *, actor: Actor) -> None:
    """Remove the custom menu."""
    _run(session, account, client.delete_menu(account))
    _audit(session, account, actor, "wechat_oa.menu.delete", None, before={"menu": "deleted"})


def send_template(
    session: Session, account: ChannelAccount, *, contact_id: int, template_id: str,
    data: Mapping[str, Any], url: str | None = None, miniprogram: Mapping[str, str] | None = None,
    idempotency_key: str, actor: Actor,
) -> Message:
    """Queue a template message to a contact (consent checked, sent by the worker, delivery by callback)."""
    if not data:
        raise Invalid("a template message fills at least one of the template's fields", field="data")
    contact = contacts.get_contact(session, contact_id)
    content: dict[str, Any] = {"type": "template", "template_id": template_id, "data": dict(data)}
    if url:
        content["url"] = url
    if miniprogram:
        content["miniprogram"] = dict(miniprogram)
    message = service.queue_send(session, account=account, contact_id=contact.id, content=content,
                                 origin=f"api:{actor.type}", idempotency_key=idempotency_key)
    audit.record(session, actor, workspace_id=account.workspace_id, action="wechat_oa.template.send",
                 entity_type="message", entity_id=message.id, before=None,
                 after={"contact_id": contact.id, "template_id": template_id, "status": message.status})
    return message
