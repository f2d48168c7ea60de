"""What comes back from email: unsubscribes (a signed link, and RFC 8058 one-click POSTs), and the
mail service's events — bounces, complaints, deliveries, opens — POSTed signed to
`/hooks/email/{account}/events`.

A link's token names the workspace, the account and the address, signed with the installation's
secret key, so it can't be forged or pointed at someone else. Hard bounces and complaints withdraw the
contact's email consent: nobody is mailed again at an address that bounces or complained.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels import webhook
from siyu.channels.models import ChannelAccount
from siyu.channels.payloads import json_items
from siyu.contacts import service as contacts
from siyu.core import clock
from siyu.core.errors import Forbidden, Invalid, NotFound
from siyu.core.tenancy import bind_workspace
from siyu.settings import get_settings

EVENT_TYPES = ("bounce", "complaint", "delivered", "open")
MAX_EVENTS = 1000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(purpose: str, payload: str) -> bytes:
    key = hmac.new(get_settings().resolved_secret_key().encode(), f"siyu email {purpose}".encode(),
                   hashlib.sha256).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()[:18]


def _token(purpose: str, workspace_id: int, account_id: int, value: str) -> str:
    payload = _b64(json.dumps([workspace_id, account_id, value], separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(purpose, payload))}"


@dataclass(frozen=True)
class Signed:
    """What a link's token names: a workspace, an account and an address (unsubscribe) or a Message-ID
    (open tracking)."""

    workspace_id: int
    account_id: int
    value: str


def _read(purpose: str, token: str) -> Signed:
    payload, _, mac = (token or "").partition(".")
    try:
        good = hmac.compare_digest(_unb64(mac), _mac(purpose, payload))
        workspace_id, account_id, value = json.loads(_unb64(payload)) if good else (None, None, None)
    except (ValueError, TypeError) as exc:
        raise NotFound("this link is not valid", field="token") from exc
    if not good or not isinstance(workspace_id, int) or not isinstance(account_id, int) or not isinstance(
            value, str):
        raise NotFound("this link is not valid", field="token")
    return Signed(workspace_id, account_id, value)


def unsubscribe_token(workspace_id: int, account_id: int, address: str) -> str:
    """The signed token of one address's unsubscribe link."""
    return _token("unsubscribe", workspace_id, account_id, address)


def read_token(token: str) -> Signed:
    """What an unsubscribe token names; 404 for anything not made by `unsubscribe_token` here."""
    return _read("unsubscribe", token)


def open_token(workspace_id: int, account_id: int, message_id: str) -> str:
    """The signed token of one message's tracking pixel."""
    return _token("open", workspace_id, account_id, message_id)


def record_open(session: Session, token: str) -> bool:
    """The recipient's mail client loaded the pixel: the message is `opened`. False for a bad token."""
    try:
        found = _read("open", token)
    except NotFound:
        return False
    bind_workspace(session, found.workspace_id)
    account = session.get(ChannelAccount, found.account_id)
    if account is None or account.workspace_id != found.workspace_id:
        return False
    return channels.update_delivery(session, account, found.value, "opened") is not None


def _contact_at(session: Session, address: str) -> Any:
    try:
        pair = ("email", contacts.normalize_identity("email", address))
    except Invalid:
        return None
    contact_id = contacts.lookup_identities(session, [pair]).get(pair)
    return contacts.get_contact(session, contact_id) if contact_id is not None else None


def withdraw_address(session: Session, address: str, *, source: str, proof: str | None = None) -> int | None:
    """Withdraw email consent of the contact with this address (bound workspace); their id, or None."""
    contact = _contact_at(session, address)
    if contact is None:
        return None
    permission = contacts.contact_permission(session, contact, "email", "marketing")
    if permission.reason != "withdrawn":
        contacts.withdraw_from_channel(session, contact, "email", source=source, proof=proof)
    return int(contact.id)


def unsubscribe(session: Session, token: str, *, one_click: bool) -> Signed:
    """The recipient asked to stop (the link's page, or their mailbox's one-click POST)."""
    found = read_token(token)
    bind_workspace(session, found.workspace_id)
    source = "email one-click unsubscribe" if one_click else "email unsubscribe link"
    withdraw_address(session, found.value, source=source, proof=f"account {found.account_id}")
    return found


# --- the mail service's events ------------------------------------------------------------------------


def check_signature(account: ChannelAccount, headers: Mapping[str, str], body: bytes) -> None:
    """The events carry X-Siyu-Timestamp and X-Siyu-Signature made with the account's events secret
    (the scheme of siyu's own webhooks); 403 otherwise, and for stale timestamps (replays)."""
    secret = str(account.secrets.get("webhook_secret") or "")
    ok = secret and webhook.verify(secret, headers.get("x-siyu-timestamp", ""), body,
                                   headers.get("x-siyu-signature", ""), now=clock.now().timestamp())
    if not ok:
        raise Forbidden("the events signature does not match", field="signature")


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """A JSON object or an array of them, each with a known type and a message_id or email; else 422."""
    items = json_items(body, limit=MAX_EVENTS, what="events")
    for n, item in enumerate(items):
        if item.get("type") not in EVENT_TYPES:
            raise Invalid(f"type is one of {', '.join(EVENT_TYPES)}", field=f"{n}.type")
        if not isinstance(item.get("message_id") or "", str) or not isinstance(item.get("email") or "", str):
            raise Invalid("message_id and email are text", field=f"{n}.message_id")
        if not item.get("message_id") and not item.get("email"):
            raise Invalid("name the message_id or the email", field=f"{n}.message_id")
    return items


@dataclass
class EventsResult:
    processed: int = 0
    unknown: int = 0
    withdrawn: int = 0


def _bracketed(message_id: str) -> str:
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


# A complaint comes from a mailbox the message reached: it was delivered.
STATUS_OF = {"bounce": "failed", "complaint": "delivered", "delivered": "delivered", "open": "opened"}


def record_events(session: Session, account: ChannelAccount, items: list[dict[str, Any]]) -> EventsResult:
    """Move the named messages on; hard bounces and complaints withdraw the address's email consent."""
    result = EventsResult()
    for item in items:
        kind, reason = item["type"], str(item.get("reason") or "")[:500]
        message = None
        if item.get("message_id"):
            error = f"bounce: {reason}" if kind == "bounce" else None
            message = channels.update_delivery(session, account, _bracketed(item["message_id"]), STATUS_OF[kind],
                                               error=error)
        address = str(item.get("email") or (message.address if message is not None else "") or "")
        hard = kind == "complaint" or (kind == "bounce" and item.get("bounce_type", "hard") != "soft")
        if hard and address:
            source = "email complaint" if kind == "complaint" else "email hard bounce"
            if withdraw_address(session, address, source=source, proof=reason or None) is not None:
                result.withdrawn += 1
        if message is None and not (hard and address):
            result.unknown += 1
        else:
            result.processed += 1
    return result
