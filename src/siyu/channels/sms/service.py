"""What siyu does with an SMS provider's pushes: receipts move messages on, replies enter the archive,
and an unsubscribe reply ("TD", "退订", "STOP"...) withdraws the contact's SMS consent."""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.models import ChannelAccount
from siyu.channels.payloads import json_items
from siyu.channels.sms import provider_of
from siyu.contacts import service as contacts
from siyu.core.errors import Forbidden, NotFound

# Replies that mean "no more messages", compared after NFKC (full-width → half-width), trimming and
# case folding, with trailing punctuation dropped.
UNSUBSCRIBE_WORDS = frozenset({"td", "t", "退订", "n", "unsubscribe", "stop"})
_TRAILING = " \t\r\n.。!！?？~～,，;；"
MAX_ITEMS = 1000


def is_unsubscribe(text: str) -> bool:
    """True when a reply asks to stop messages."""
    return unicodedata.normalize("NFKC", text).strip(_TRAILING).casefold() in UNSUBSCRIBE_WORDS


def check_push_token(account: ChannelAccount, token: str | None) -> None:
    """The push carries the account's token (providers don't sign their pushes); 403 otherwise."""
    expected = str(account.secrets.get("push_token") or "")
    if not expected or not hmac.compare_digest(expected.encode(), (token or "").encode()):
        raise Forbidden("this push does not carry the account's token", field="token")


def push_items(body: bytes) -> list[dict[str, Any]]:
    """A push's JSON body as a list of objects; 422 when it is not one."""
    return json_items(body, limit=MAX_ITEMS, what="push items")


@dataclass
class PushResult:
    processed: int = 0
    unknown: int = 0
    duplicates: int = 0
    unsubscribed: int = 0
    skipped: int = 0
    # Receipts of our messages whose send is still being recorded: the push is refused so the provider
    # pushes again later, rather than the receipt being lost.
    early: int = 0


def _still_sending(session: Session, account: ChannelAccount, out_id: str | None) -> bool:
    """True when OutId names a message of this account whose BizId the worker has not recorded yet."""
    prefix, _, number = (out_id or "").partition(":")
    if prefix != "msg" or not number.isdigit():
        return False
    try:
        message = channels.get_message(session, number)
    except NotFound:
        return False
    return message.account_id == account.id and message.external_id is None and message.status in (
        "queued", "sending")


def record_receipts(session: Session, account: ChannelAccount, items: list[Mapping[str, Any]]) -> PushResult:
    """Delivery receipts: the message with that provider id becomes delivered, or failed with the code."""
    receipts = provider_of(account).receipts(items)
    result = PushResult(skipped=len(items) - len(receipts))
    for r in receipts:
        status = "delivered" if r.delivered else "failed"
        error = None if r.delivered else f"{r.code}: {r.reason}".strip(": ")
        message = channels.update_delivery(session, account, r.biz_id, status, error=error, at=r.at)
        if message is None and _still_sending(session, account, r.out_id):
            result.early += 1
        elif message is None:
            result.unknown += 1
        else:
            result.processed += 1
    return result


def record_replies(session: Session, account: ChannelAccount, items: list[Mapping[str, Any]]) -> PushResult:
    """Replies enter the one inbound pipeline; an unsubscribe reply withdraws SMS consent."""
    replies = provider_of(account).replies(items)
    result = PushResult(skipped=len(items) - len(replies))
    for item in replies:
        received = channels.receive(session, account, item)
        if received.duplicate:
            result.duplicates += 1
            continue
        result.processed += 1
        if received.contact_id is not None and is_unsubscribe(item.text):
            contact = contacts.get_contact(session, received.contact_id)
            contacts.withdraw_from_channel(session, contact, "sms", source="sms reply TD",
                                           proof=f"{item.sender}: {item.text}"[:500])
            result.unsubscribed += 1
    return result
