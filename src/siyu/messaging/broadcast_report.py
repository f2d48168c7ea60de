"""A broadcast's delivery report: counts by status (from the archive rows), reasons, sends and clicks
over time, and its recipients page by page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from siyu.conversations.models import Message
from siyu.core.db import is_postgres
from siyu.core.errors import Invalid
from siyu.core.pagination import page
from siyu.messaging.broadcast_models import Broadcast, BroadcastLink, BroadcastRecipient

# A recipient's status: its message's once it has one (queued ... clicked, failed, skipped), else its own;
# a held message stays `queued` in the archive, but the report says it is held.
REPORT_STATUSES = ("pending", "held", "queued", "sending", "sent", "delivered", "opened", "clicked", "failed",
                   "skipped")
_EFFECTIVE = case((BroadcastRecipient.status == "held", "held"),
                  else_=func.coalesce(Message.status, BroadcastRecipient.status))


def _joined(b: Broadcast) -> Any:
    return (select(BroadcastRecipient).outerjoin(Message, Message.id == BroadcastRecipient.message_id)
            .where(BroadcastRecipient.broadcast_id == b.id))


def status_counts(session: Session, b: Broadcast) -> dict[str, int]:
    """How many recipients are in each status now."""
    counts = dict.fromkeys(REPORT_STATUSES, 0)
    stmt = _joined(b).with_only_columns(_EFFECTIVE, func.count()).group_by(_EFFECTIVE)
    for status, n in session.execute(stmt):
        counts[str(status)] = counts.get(str(status), 0) + int(n)
    return counts


def reasons(session: Session, b: Broadcast, *, limit: int = 10) -> list[tuple[str, str, int]]:
    """The most frequent reasons for skipped and failed recipients: (status, reason, count)."""
    reason = func.coalesce(BroadcastRecipient.reason, Message.error, "")
    stmt = (_joined(b).with_only_columns(_EFFECTIVE, reason, func.count())
            .where(_EFFECTIVE.in_(("skipped", "failed"))).group_by(_EFFECTIVE, reason)
            .order_by(func.count().desc()).limit(limit))
    return [(str(s), str(r), int(n)) for s, r, n in session.execute(stmt)]


def _minute(session: Session, column: Any) -> ColumnElement[str]:
    if is_postgres(session):
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")
    return func.strftime("%Y-%m-%d %H:%M", column)


@dataclass(frozen=True)
class Series:
    """Sends and clicks per time bucket (local time), as the console's bar charts take them."""

    labels: list[str]
    sent: list[int]
    clicked: list[int]


def over_time(session: Session, b: Broadcast, tz: ZoneInfo, *, max_bars: int = 48) -> Series:
    """Messages sent and first clicks per minute, grouped into hours when the broadcast spans longer."""
    per: dict[str, dict[str, int]] = {"sent": {}, "clicked": {}}
    for name, column in (("sent", Message.sent_at), ("clicked", Message.clicked_at)):
        minute = _minute(session, column)
        stmt = (select(minute, func.count()).select_from(BroadcastRecipient)
                .join(Message, Message.id == BroadcastRecipient.message_id)
                .where(BroadcastRecipient.broadcast_id == b.id, column.is_not(None)).group_by(minute))
        per[name] = {str(m): int(n) for m, n in session.execute(stmt)}
    minutes = sorted(set(per["sent"]) | set(per["clicked"]))
    if not minutes:
        return Series([], [], [])
    hourly = len(minutes) > max_bars
    keyed: dict[str, list[int]] = {}
    for m in minutes:
        local = datetime.strptime(m, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).astimezone(tz)
        label = local.strftime("%m-%d %H:00") if hourly else local.strftime("%H:%M")
        row = keyed.setdefault(label, [0, 0])
        row[0] += per["sent"].get(m, 0)
        row[1] += per["clicked"].get(m, 0)
    labels = list(keyed)[-max_bars:]
    return Series(labels, [keyed[x][0] for x in labels], [keyed[x][1] for x in labels])


def link_clicks(session: Session, b: Broadcast) -> list[tuple[str, int, int]]:
    """Each tracked URL with its clicks and the recipients who clicked it."""
    stmt = (select(BroadcastLink.url, func.sum(BroadcastLink.clicks),
                   func.count(BroadcastLink.first_clicked_at))
            .where(BroadcastLink.broadcast_id == b.id).group_by(BroadcastLink.url).order_by(BroadcastLink.url))
    return [(str(u), int(c or 0), int(n)) for u, c, n in session.execute(stmt)]


def list_recipients(
    session: Session, b: Broadcast, *, status: str | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[list[tuple[BroadcastRecipient, Message | None]], str | None]:
    """A page of the broadcast's recipients (newest first) with their messages, optionally of one status."""
    stmt = _joined(b)
    if status is not None:
        if status not in REPORT_STATUSES:
            raise Invalid(f"status is one of {', '.join(REPORT_STATUSES)}", field="status")
        stmt = stmt.where(status == _EFFECTIVE)
    rows, nxt = page(session, stmt, BroadcastRecipient.id, cursor=cursor, limit=limit)
    return _with_messages(session, rows), nxt


def _with_messages(
    session: Session, rows: Sequence[BroadcastRecipient]
) -> list[tuple[BroadcastRecipient, Message | None]]:
    ids = [r.message_id for r in rows if r.message_id is not None]
    found = {m.id: m for m in session.execute(select(Message).where(Message.id.in_(ids))).scalars()} if ids else {}
    return [(r, found.get(r.message_id) if r.message_id else None) for r in rows]


def effective(r: BroadcastRecipient, m: Message | None) -> str:
    """A recipient's status as the report counts it."""
    if r.status == "held" or m is None:
        return r.status
    return m.status
