"""What a code brought: its arrivals, and scans, adds and conversions per local day.

A code's scans are all its arrivals (every scan, add or click), its adds the arrivals that joined a
person (a WeCom add, an Official Account follow), its conversions the contacts who arrived through
it and then paid for the first time (their first `order.paid` event at or after that arrival),
counted on the day of that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.acquisition.arrivals import local_now, zone
from siyu.acquisition.models import Arrival, ChannelCode
from siyu.core.errors import Invalid
from siyu.core.models import Event
from siyu.core.pagination import page

MAX_DAYS = 366


def list_arrivals(session: Session, code: ChannelCode, *, cursor: str | None, limit: int,
                  ) -> tuple[list[Arrival], str | None]:
    """A code's arrivals, newest first, a page at a time."""
    rows, next_cursor = page(session, select(Arrival).where(Arrival.code_id == code.id), Arrival.id,
                             cursor=cursor, limit=limit)
    return list(rows), next_cursor


@dataclass(frozen=True)
class Series:
    """Scans, adds and conversions per local day, oldest first."""

    days: list[str]
    scans: list[int]
    adds: list[int]
    conversions: list[int]

    def as_dict(self) -> dict[str, Any]:
        """The series as the API answers it."""
        return {"days": self.days, "scans": self.scans, "adds": self.adds, "conversions": self.conversions}


def daily_series(session: Session, code: ChannelCode, *, days: int = 30, end: date | None = None) -> Series:
    """The code's last `days` local days up to `end` (today by default)."""
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"days is 1 to {MAX_DAYS}", field="days")
    last = end or local_now(session).date()
    first = last - timedelta(days=days - 1)
    labels = [(first + timedelta(days=i)) for i in range(days)]
    index = {d: i for i, d in enumerate(labels)}
    scans, adds, conversions = [0] * days, [0] * days, [0] * days
    rows = session.execute(select(Arrival.local_day, Arrival.kind, func.count()).where(
        Arrival.code_id == code.id, Arrival.local_day >= first, Arrival.local_day <= last,
    ).group_by(Arrival.local_day, Arrival.kind)).all()
    for day, kind, n in rows:
        i = index.get(day)
        if i is None:
            continue
        scans[i] += int(n)
        if kind == "add":
            adds[i] += int(n)
    arrived = (select(Arrival.contact_id, func.min(Arrival.occurred_at).label("at"))
               .where(Arrival.code_id == code.id, Arrival.contact_id.is_not(None))
               .group_by(Arrival.contact_id).subquery())
    firsts = select(Event.contact_id, func.min(Event.occurred_at).label("paid")).where(
        Event.type == "order.paid", Event.contact_id.in_(select(arrived.c.contact_id)),
    ).group_by(Event.contact_id).subquery()
    tz = zone(session)
    for paid, at in session.execute(select(firsts.c.paid, arrived.c.at).join(
            arrived, arrived.c.contact_id == firsts.c.contact_id)).all():
        if paid is None or paid < at:
            continue
        i = index.get(paid.astimezone(tz).date())
        if i is not None:
            conversions[i] += 1
    return Series([d.isoformat() for d in labels], scans, adds, conversions)


def totals(session: Session, code_ids: list[int], *, day: date | None = None) -> dict[int, dict[str, int]]:
    """Scans and adds of each code, all time (or on one local day)."""
    out = {code_id: {"scans": 0, "adds": 0} for code_id in code_ids}
    if not code_ids:
        return out
    stmt = select(Arrival.code_id, Arrival.kind, func.count()).where(Arrival.code_id.in_(code_ids))
    if day is not None:
        stmt = stmt.where(Arrival.local_day == day)
    rows = session.execute(stmt.group_by(Arrival.code_id, Arrival.kind)).all()
    for code_id, kind, n in rows:
        out[int(code_id)]["scans"] += int(n)
        if kind == "add":
            out[int(code_id)]["adds"] += int(n)
    return out
