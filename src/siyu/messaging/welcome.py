"""Welcome messages: what a person receives when they follow an Official Account or add a WeCom member.

`welcome_for(session, account, details)` asks the registered lookups first (the acquisition module adds
one that finds the welcome of the channel code in `details["state"]` / `details["scene"]`), then falls
back to the account's default. The receive hook renders it for the new contact and queues it urgent,
so the callback route sends it right after its commit: a WeCom `welcome_code` lives 20 seconds.

On WeCom the text and its cards go out as one `send_welcome_msg` (content with `welcome_code`); an add
without a code (a welcome set up in WeCom's own admin took it) is archived as skipped. Elsewhere (the
Official Account: a customer-service message, inside the 48-hour window the follow opens) the text is
one message and each card its own message after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import Inbound
from siyu.channels.models import ChannelAccount
from siyu.core import audit
from siyu.core.audit import Actor
from siyu.core.errors import Invalid
from siyu.messaging.content import CARD_TYPES, check_content, render_for, reply_key
from siyu.messaging.models import WelcomeMessage

# The kinds whose people join (follow an OA, add a WeCom member): the event a welcome answers.
WELCOME_KINDS = ("wechat_oa", "wecom")


@dataclass(frozen=True)
class Welcome:
    """The welcome chosen for one new contact; `content` None means none is sent."""

    origin: str  # welcome:<id>, channel_code:<id>
    content: Mapping[str, Any] | None


WelcomeLookup = Callable[[Session, ChannelAccount, Mapping[str, Any]], "Welcome | None"]
_lookups: dict[str, WelcomeLookup] = {}


def welcome_lookup(name: str) -> Callable[[WelcomeLookup], WelcomeLookup]:
    """Register a lookup asked, in registration order, before the account's default welcome."""

    def register(fn: WelcomeLookup) -> WelcomeLookup:
        _lookups[name] = fn
        return fn

    return register


def remove_welcome_lookup(name: str) -> None:
    """Forget a lookup (tests, plugins unloading)."""
    _lookups.pop(name, None)


def get_welcome(session: Session, account: ChannelAccount) -> WelcomeMessage | None:
    """The account's default welcome, if one was written."""
    return session.execute(
        select(WelcomeMessage).where(WelcomeMessage.account_id == account.id)
    ).scalar_one_or_none()


def check_welcome(content: Any) -> dict[str, Any]:
    """A welcome's content cleaned: a text (never empty) and at most nine cards."""
    if isinstance(content, Mapping) and "type" not in content:
        content = {"type": "text", **content}
    clean = check_content(content, types=("text",), attachments=True)
    return clean


def save_welcome(session: Session, account: ChannelAccount, *, content: Any, enabled: bool,
                 actor: Actor) -> WelcomeMessage:
    """Write (or replace) the account's default welcome and switch it on or off."""
    if account.kind not in WELCOME_KINDS:
        raise Invalid("welcome messages are sent on Official Accounts and WeCom, where people follow or add",
                      field="account_id", code="no_welcome")
    if not isinstance(enabled, bool):
        raise Invalid("enabled is true or false", field="enabled")
    clean = check_welcome(content)
    row = get_welcome(session, account)
    before = audit.snapshot(row) if row is not None else None
    if row is None:
        row = WelcomeMessage(workspace_id=account.workspace_id, account_id=account.id)
        session.add(row)
    row.content, row.enabled = clean, enabled
    session.flush()
    audit.record(session, actor, workspace_id=account.workspace_id, action="welcome_message.save",
                 entity_type="welcome_message", entity_id=row.id, before=before, after=audit.snapshot(row))
    return row


def welcome_for(session: Session, account: ChannelAccount, details: Mapping[str, Any]) -> Welcome | None:
    """The welcome for a person who just joined `account` (details: state, scene, welcome_code...)."""
    for lookup in list(_lookups.values()):
        found = lookup(session, account, details)
        if found is not None:
            return found
    row = get_welcome(session, account)
    if row is None or not row.enabled:
        return None
    return Welcome(origin=f"welcome:{row.id}", content=row.content)


def send_welcome(session: Session, account: ChannelAccount, item: Inbound, received: channels.Received,
                 welcome: Welcome) -> list[int]:
    """Queue the welcome to the contact `received` names (urgent); the archive ids of its messages."""
    if welcome.content is None or received.contact_id is None:
        return []
    contact_id, key = received.contact_id, reply_key("welcome", account.id, item.dedupe_key)
    code = item.details.get("welcome_code")

    def queue(content: Mapping[str, Any], suffix: str = "", skip: str | None = None) -> int:
        message = channels.queue_send(session, account=account, contact_id=contact_id, content=content,
                                      origin=welcome.origin, idempotency_key=key + suffix, urgent=True,
                                      received=received, skip_reason=skip)
        return message.id

    try:
        rendered = render_for(session, contact_id, welcome.content)
    except Invalid as exc:
        return [queue(welcome.content, skip=f"render_failed: {exc.field}: {exc.message}")]
    if account.kind == "wecom":
        if not code:
            return [queue(rendered, skip="no_welcome_code")]
        expires = item.details.get("welcome_code_expires_at")
        coded = {**rendered, "welcome_code": str(code), **({"welcome_code_expires_at": expires} if expires else {})}
        return [queue(coded)]
    cards = [c for c in rendered.pop("attachments", []) if c.get("type") in CARD_TYPES]
    return [queue(rendered), *(queue(card, f":{i + 1}") for i, card in enumerate(cards))]


@channels.on_receive("welcome")
def _welcome_on_join(session: Session, account: ChannelAccount, item: Inbound,
                     received: channels.Received) -> dict[str, Any] | None:
    if item.event == "joined":
        found = welcome_for(session, account, item.details)
        if found is not None:
            send_welcome(session, account, item, received, found)
    return None
