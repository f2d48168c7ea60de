"""Conversations' public face: the inbox, replies, closing (by a person or after silence), settings and
the per-staff reports of first-response time and satisfaction.

An inbound message opens a conversation or joins the open one of its contact on its account (the
`conversations` receive hook); outbound messages join it in the flush hook, and the first one a
person wrote (a staff id, or origin `reply:...`) is the first response. A conversation silent for the
workspace's `idle_close_hours` is closed by the sweep job; closing queues the satisfaction survey and
records `conversation.closed`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import Inbound
from siyu.channels.models import ChannelAccount
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.conversations import satisfaction, search
from siyu.conversations.models import Conversation, ConversationSettings, Message
from siyu.conversations.threads import get_settings, join_inbound, schedule_sweep
from siyu.core import audit, clock
from siyu.core.audit import Actor
from siyu.core.errors import Invalid, NotFound
from siyu.core.events import record_event
from siyu.core.pagination import page
from siyu.core.tenancy import parse_id

__all__ = ["close", "close_idle", "first_response_report", "get_conversation", "get_settings", "list_conversations",
           "reply", "satisfaction_report", "schedule_sweep", "update_settings"]

MAX_REPLY = 4000


# --- in ---------------------------------------------------------------------------------------------


def _assignee(session: Session, contact_id: int, staff_userid: str | None) -> int | None:
    if staff_userid:
        for member in staff_service.list_staff(session, active=True):
            if member.wecom_userid == staff_userid:
                return member.id
    return contacts.get_contact(session, contact_id).owner_id


@channels.on_receive("conversations", order=10)
def on_message(session: Session, account: ChannelAccount, item: Inbound, received: channels.Received) -> None:
    """Put an inbound message into its conversation, or take it as the rating of a closed one."""
    if received.message_id is None or received.contact_id is None:
        return None
    message = session.get(Message, received.message_id)
    if message is None:
        return None
    if satisfaction.record_rating(session, message) is not None:
        return None
    join_inbound(session, message, staff_id=_assignee(session, received.contact_id, item.staff_userid))
    session.flush()
    return None


# --- the inbox --------------------------------------------------------------------------------------


def _visible(session: Session, stmt: Any, viewer: Any) -> Any:
    visible = search.visible_contact_ids(session, viewer)
    return stmt if visible is None else stmt.where(Conversation.contact_id.in_(visible))


def list_conversations(
    session: Session, *, status: str | None = "open", staff_id: int | None = None, contact_id: int | None = None,
    account_id: int | None = None, viewer: Any = None, cursor: str | None = None, limit: int = 50,
) -> tuple[Sequence[Conversation], str | None]:
    """Conversations, newest first; staff-role viewers see only their own contacts'."""
    if status not in (None, "", "open", "closed"):
        raise Invalid("status is open or closed", field="status")
    stmt = select(Conversation)
    for column, value in ((Conversation.status, status or None), (Conversation.staff_id, staff_id),
                          (Conversation.contact_id, contact_id), (Conversation.account_id, account_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return page(session, _visible(session, stmt, viewer), Conversation.id, cursor=cursor, limit=limit)


def get_conversation(session: Session, conversation_id: Any, *, viewer: Any = None) -> Conversation:
    """One conversation of the bound workspace that the viewer may see (404 otherwise)."""
    stmt = select(Conversation).where(Conversation.id == parse_id(conversation_id, "conversation"))
    found: Conversation | None = session.execute(_visible(session, stmt, viewer)).scalar_one_or_none()
    if found is None:
        raise NotFound("conversation not found")
    return found


def thread(session: Session, conversation: Conversation, *, limit: int = 200) -> list[Message]:
    """The conversation's messages, oldest first (the last `limit`)."""
    rows = session.execute(select(Message).where(Message.conversation_id == conversation.id)
                           .order_by(Message.id.desc()).limit(limit)).scalars().all()
    return list(reversed(rows))


def reply(
    session: Session, conversation: Conversation, *, text: str, actor: Actor, idempotency_key: str | None = None,
) -> Message:
    """A staff member answers from the inbox: one message queued through the conversation's account."""
    text = (text or "").strip()
    if not text or len(text) > MAX_REPLY:
        raise Invalid(f"a reply of 1 to {MAX_REPLY} characters", field="text")
    if conversation.account_id is None or conversation.contact_id is None:
        raise Invalid("this conversation's account or contact is gone", field="conversation")
    account = channels.get_account(session, conversation.account_id)
    staff = staff_service.staff_for_user(session, int(actor.id)) if actor.type == "user" and actor.id else None
    key = f"reply:{conversation.id}:" + (idempotency_key or f"{clock.now().timestamp()}:{actor.type}:{actor.id}")
    message = channels.queue_send(session, account=account, contact_id=conversation.contact_id,
                                  content={"type": "text", "text": text},
                                  origin=f"reply:{actor.type}:{actor.id or actor.label}"[:64],
                                  idempotency_key=key[:255], staff_id=staff.id if staff else None)
    audit.record(session, actor, workspace_id=conversation.workspace_id, action="conversation.reply",
                 entity_type="conversation", entity_id=conversation.id, before=None,
                 after={"message_id": message.id, "status": message.status})
    return message


def _close(session: Session, conversation: Conversation, *, by: str) -> bool:
    if conversation.status == "closed":
        return False
    conversation.status, conversation.closed_at, conversation.closed_by = "closed", clock.now(), by[:200]
    session.flush()
    record_event(session, type="conversation.closed", contact_id=conversation.contact_id, source="conversations",
                 idempotency_key=f"closed:{conversation.id}",
                 properties={"conversation_id": conversation.id, "account_id": conversation.account_id,
                             "staff_id": conversation.staff_id, "by": by[:200],
                             "first_response_seconds": response_seconds(conversation)})
    satisfaction.queue_survey(session, conversation)
    return True


def close(session: Session, conversation: Conversation, *, actor: Actor) -> Conversation:
    """A person closes a conversation (again: nothing happens); the survey is queued."""
    if _close(session, conversation, by=actor.label):
        audit.record(session, actor, workspace_id=conversation.workspace_id, action="conversation.close",
                     entity_type="conversation", entity_id=conversation.id, before={"status": "open"},
                     after={"status": "closed"})
    return conversation


def close_idle(session: Session, *, limit: int = 1000) -> int:
    """Close (at most `limit` of) the bound workspace's conversations silent for longer than its setting."""
    hours = get_settings(session).idle_close_hours
    cutoff = clock.now().timestamp() - hours * 3600
    stale = session.execute(select(Conversation).where(
        Conversation.status == "open",
        Conversation.last_message_at <= datetime.fromtimestamp(cutoff, clock.now().tzinfo),
    ).order_by(Conversation.id).limit(limit)).scalars().all()
    for conversation in stale:
        _close(session, conversation, by="idle")
    return len(stale)


def update_settings(
    session: Session, *, idle_close_hours: int | None = None, survey_enabled: bool | None = None,
    survey_text: str | None = None, actor: Actor,
) -> ConversationSettings:
    """Change when idle conversations close and what the survey asks."""
    settings = get_settings(session)
    before = audit.snapshot(settings)
    if idle_close_hours is not None:
        if isinstance(idle_close_hours, bool) or not 1 <= int(idle_close_hours) <= 720:
            raise Invalid("idle_close_hours is between 1 and 720", field="idle_close_hours")
        settings.idle_close_hours = int(idle_close_hours)
    if survey_enabled is not None:
        settings.survey_enabled = bool(survey_enabled)
    if survey_text is not None:
        if len(survey_text.strip()) > 500:
            raise Invalid("a survey text of at most 500 characters", field="survey_text")
        settings.survey_text = survey_text.strip()
    if settings not in session:
        session.add(settings)
    session.flush()
    audit.record(session, actor, workspace_id=settings.workspace_id, action="conversation_settings.update",
                 entity_type="conversation_settings", entity_id=settings.id, before=before,
                 after=audit.snapshot(settings))
    return settings


# --- reports ----------------------------------------------------------------------------------------


def response_seconds(conversation: Conversation) -> float | None:
    """Seconds from the contact's first message to the first response, if answered."""
    if conversation.first_response_at is None or conversation.first_inbound_at is None:
        return None
    return max(0.0, (conversation.first_response_at - conversation.first_inbound_at).total_seconds())


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of non-empty values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _in_range(session: Session, since: datetime | None, until: datetime | None, viewer: Any) -> list[Conversation]:
    stmt = select(Conversation)
    if since is not None:
        stmt = stmt.where(Conversation.opened_at >= since)
    if until is not None:
        stmt = stmt.where(Conversation.opened_at < until)
    return list(session.execute(_visible(session, stmt, viewer)).scalars())


def _summary(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "median_seconds": statistics.median(values) if values else None,
            "p90_seconds": percentile(values, 0.9) if values else None}


def first_response_report(
    session: Session, *, since: datetime | None = None, until: datetime | None = None, viewer: Any = None,
) -> dict[str, Any]:
    """First-response time (median, p90) per staff member, per day, per staff member and day, and how many
    conversations are not answered yet (by the day each conversation opened, UTC)."""
    per_staff: dict[int | None, list[float]] = {}
    per_day: dict[date, list[float]] = {}
    per_staff_day: dict[tuple[int | None, date], list[float]] = {}
    unanswered = 0
    for c in _in_range(session, since, until, viewer):
        seconds = response_seconds(c)
        if seconds is None:
            unanswered += c.first_inbound_at is not None
            continue
        per_staff.setdefault(c.responder_id or c.staff_id, []).append(seconds)
        per_day.setdefault(c.opened_at.date(), []).append(seconds)
        per_staff_day.setdefault((c.responder_id or c.staff_id, c.opened_at.date()), []).append(seconds)
    staff = [{"staff_id": s, **_summary(v)} for s, v in per_staff.items()]
    days = [{"day": d.isoformat(), **_summary(v)} for d, v in sorted(per_day.items())]
    staff_days = [{"staff_id": s, "day": d.isoformat(), **_summary(v)}
                  for (s, d), v in sorted(per_staff_day.items(), key=lambda kv: (kv[0][1], kv[0][0] or 0))]
    return {"staff": sorted(staff, key=lambda r: (-r["count"], r["staff_id"] or 0)), "days": days,
            "staff_days": staff_days, "unanswered": unanswered}


def satisfaction_report(
    session: Session, *, since: datetime | None = None, until: datetime | None = None, viewer: Any = None,
) -> list[dict[str, Any]]:
    """Average rating, count and distribution per staff member."""
    return satisfaction.report(session, _in_range(session, since, until, viewer))
