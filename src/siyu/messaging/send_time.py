"""Send-time optimisation: each contact's message at the local hour they engage most, within a window.

Engagement is a contact's own events (messages opened, clicked or answered, orders) in the last 90
days, by local hour, bucketed as morning (05-12), afternoon (12-18) and evening (18-05). The best
bucket wins and, inside it, the hour with most engagement. A contact with no history gets the
workspace's best bucket, learned the same way over everyone; with none at all, mornings and evenings
beat afternoons. The choice is kept on the recipient row so the report can say why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.db import any_of
from siyu.core.models import Event

BUCKETS = ("morning", "afternoon", "evening")
# When nobody has a history: mornings and evenings beat afternoons (seed 000 of the product).
DEFAULT_ORDER = ("morning", "evening", "afternoon")
DEFAULT_HOUR = {"morning": 9, "afternoon": 14, "evening": 19}
ENGAGEMENT = ("message.opened", "message.clicked", "message.received", "order.paid", "order.created")
LOOKBACK_DAYS = 90
WORKSPACE_SAMPLE = 50_000


def bucket_of(hour: int) -> str:
    """The bucket of a local hour 0-23."""
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    return "evening"


@dataclass(frozen=True)
class Preference:
    """A learned best time: the bucket, the hour in it, and how many engagements chose it."""

    bucket: str
    hour: int
    engaged: int
    total: int


def learn(times: Iterable[datetime], tz: ZoneInfo) -> Preference | None:
    """The best bucket and hour of these engagement times, None without any."""
    hours = Counter(t.astimezone(tz).hour for t in times)
    total = sum(hours.values())
    if not total:
        return None
    per_bucket = Counter[str]()
    for hour, n in hours.items():
        per_bucket[bucket_of(hour)] += n
    bucket = max(DEFAULT_ORDER, key=lambda b: (per_bucket[b], -DEFAULT_ORDER.index(b)))
    hour = max((h for h in hours if bucket_of(h) == bucket), key=lambda h: (hours[h], -h))
    return Preference(bucket, hour, per_bucket[bucket], total)


def default_preference() -> Preference:
    """The fallback when nobody in the workspace has engaged yet."""
    bucket = DEFAULT_ORDER[0]
    return Preference(bucket, DEFAULT_HOUR[bucket], 0, 0)


def next_time(start: datetime, window_hours: int, hour: int, tz: ZoneInfo) -> datetime | None:
    """The first instant from `start` whose local hour is `hour` (start itself inside that hour), or None
    when it falls after the window."""
    local = start.astimezone(tz)
    if local.hour == hour:
        return start
    for days in range(0, 3):
        candidate = datetime.combine(local.date() + timedelta(days=days), time(hour), tzinfo=tz).astimezone(UTC)
        if candidate > start:
            return candidate if candidate <= start + timedelta(hours=window_hours) else None
    return None


def plan(
    start: datetime, window_hours: int, own: Preference | None, fallback: Preference, tz: ZoneInfo
) -> tuple[datetime, dict[str, Any]]:
    """When one contact's message goes, and why (kept on the recipient row)."""
    chosen, source = (own, "own") if own is not None else (fallback, "workspace")
    note: dict[str, Any] = {"source": source, "bucket": chosen.bucket, "hour": chosen.hour,
                            "engaged": chosen.engaged, "of": chosen.total}
    at = next_time(start, window_hours, chosen.hour, tz)
    if at is None:
        note["outside_window"] = True
        return start, note
    return at, note


def histories(session: Session, contact_ids: Sequence[int], since: datetime) -> dict[int, list[datetime]]:
    """Each contact's engagement times since `since` (one query for a chunk of contacts)."""
    if not contact_ids:
        return {}
    rows = session.execute(select(Event.contact_id, Event.occurred_at).where(
        any_of(session, Event.contact_id, list(contact_ids)), Event.type.in_(ENGAGEMENT), Event.occurred_at >= since))
    found: dict[int, list[datetime]] = {}
    for contact_id, occurred_at in rows:
        if contact_id is not None:
            found.setdefault(int(contact_id), []).append(occurred_at)
    return found


def workspace_preference(session: Session, tz: ZoneInfo, now: datetime) -> Preference:
    """The workspace's best bucket over its most recent engagements, or the default."""
    stmt = (select(Event.occurred_at)
            .where(Event.type.in_(ENGAGEMENT), Event.occurred_at >= now - timedelta(days=LOOKBACK_DAYS))
            .order_by(Event.occurred_at.desc()).limit(WORKSPACE_SAMPLE))
    return learn(session.execute(stmt).scalars(), tz) or default_preference()


def preference_from(data: Mapping[str, Any] | None) -> Preference:
    """A preference kept as JSON on the broadcast's plan."""
    if not data:
        return default_preference()
    return Preference(str(data["bucket"]), int(data["hour"]), int(data["engaged"]), int(data["total"]))
