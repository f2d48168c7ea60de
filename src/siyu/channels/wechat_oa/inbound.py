"""The Official Account's callback fields, in siyu's words: one `Inbound` per message or event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from siyu.channels.base import Inbound

# Events named in siyu's words; any other event keeps its own name, lowercased.
EVENTS = {
    "subscribe": "joined",
    "unsubscribe": "left",
    "SCAN": "scanned",
    "CLICK": "menu_click",
    "VIEW": "menu_view",
    "LOCATION": "location",
}
# Events after which the platform lets the account send customer-service messages for 48 hours (its
# "customer-service message" page: a message, a follow, a scan, a click on a push-type menu button).
WINDOW_EVENTS = frozenset({"joined", "scanned", "menu_click", "scancode_push", "scancode_waitmsg"})
TEMPLATE_FINISHED = "TEMPLATESENDJOBFINISH"
# The fields every callback carries; the rest are kept as the item's details.
_ENVELOPE = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "MsgID", "Event", "Encrypt")


def _when(fields: dict[str, str]) -> datetime | None:
    raw = fields.get("CreateTime", "")
    return datetime.fromtimestamp(int(raw), UTC) if raw.isdigit() else None


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out.replace("__", "_")


def _details(fields: dict[str, str]) -> dict[str, Any]:
    return {_snake(k): v for k, v in fields.items() if k not in _ENVELOPE and v != ""}


def dedupe_key(fields: dict[str, str]) -> str:
    """MsgId when the platform gave one; else sender + CreateTime + Event (+ EventKey)."""
    msg_id = fields.get("MsgId") or fields.get("MsgID")
    if msg_id:
        return f"msg:{msg_id}"
    parts = [fields.get("FromUserName", ""), fields.get("CreateTime", ""), fields.get("Event", "")]
    if fields.get("EventKey"):
        parts.append(fields["EventKey"])
    return "evt:" + ":".join(parts)


def template_receipt(fields: dict[str, str]) -> tuple[str, str, str | None] | None:
    """(MsgID, status, error) of a TEMPLATESENDJOBFINISH event; None for any other callback."""
    if fields.get("MsgType") != "event" or fields.get("Event") != TEMPLATE_FINISHED:
        return None
    status = fields.get("Status", "")
    if status == "success":
        return fields.get("MsgID", ""), "delivered", None
    return fields.get("MsgID", ""), "failed", status or "failed"


def _message_text(kind: str, fields: dict[str, str]) -> str:
    if kind == "text":
        return fields.get("Content", "")
    if kind == "voice":
        return fields.get("Recognition", "")
    if kind == "link":
        return fields.get("Title", "")
    if kind == "location":
        return fields.get("Label", "")
    return ""


def to_inbound(fields: dict[str, str]) -> Inbound:
    """One callback's item: a message (text, image, voice, video, link, location...) or an event."""
    sender = fields.get("FromUserName", "")
    msg_type = fields.get("MsgType", "")
    common: dict[str, Any] = {"dedupe_key": dedupe_key(fields), "sender": sender, "occurred_at": _when(fields)}
    if msg_type != "event":
        msg_id = fields.get("MsgId") or None
        kind = "video" if msg_type == "shortvideo" else (msg_type or "unknown")
        return Inbound(kind=kind[:16], text=_message_text(kind, fields), details=_details(fields), external_id=msg_id,
                       **common)
    raw_event = fields.get("Event", "")
    event = EVENTS.get(raw_event, raw_event.lower() or "event")
    details = _details(fields)
    key = fields.get("EventKey", "")
    details.pop("event_key", None)
    if event == "joined" and key.startswith("qrscene_"):
        details["scene"] = key[len("qrscene_"):]
    elif event == "scanned":
        details["scene"] = key
    elif event == "menu_view":
        details["url"] = key
    elif key:
        details["key"] = key
    return Inbound(kind="event", event=event, details=details, **common)
