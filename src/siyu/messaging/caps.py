"""Frequency caps and quiet hours: the arithmetic (pure, in the workspace's timezone) and the settings.

A cap counts a contact's marketing messages on one channel kind within the calendar day, week (Monday
first) or month, in local time, that holds the planned send time. Quiet hours ("21:00"-"09:00") defer
a send to the first instant after them, local time; a window across midnight is the usual case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.base import adapter_kinds
from siyu.core import audit
from siyu.core.audit import Actor
from siyu.core.errors import Invalid
from siyu.core.tenancy import bound_workspace
from siyu.messaging.broadcast_models import BroadcastSettings

PERIODS = ("day", "week", "month")
ANY_CHANNEL = "*"
# The channel kinds of issue 5; an adapter registered under another kind may be capped too.
CHANNEL_KINDS = (ANY_CHANNEL, "wechat_oa", "wecom", "wecom_kf", "sms", "email", "webhook")
MAX_CAP = 1000
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# --- arithmetic ----------------------------------------------------------------------------------


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # Round-trip through UTC so a midnight that does not exist (a DST gap) becomes the real instant.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_window(at: datetime, period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) in UTC of the local calendar day, week or month holding `at`."""
    local = at.astimezone(tz).date()
    if period == "day":
        first, last = local, local + timedelta(days=1)
    elif period == "week":
        first = local - timedelta(days=local.weekday())
        last = first + timedelta(days=7)
    elif period == "month":
        first = local.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"period is one of {', '.join(PERIODS)}")
    return _local_midnight(first, tz), _local_midnight(last, tz)


def earliest_window_start(times: Iterable[datetime], tz: ZoneInfo) -> datetime:
    """The earliest start of any period holding one of `times`: history before it never counts."""
    return min(period_window(t, p, tz)[0] for t in times for p in PERIODS)


def cap_verdict(history: Iterable[datetime], at: datetime, caps: Mapping[str, int | None], tz: ZoneInfo) -> str | None:
    """`cap:<period>` when the contact already had `caps[period]` messages in that period of `at`, else None.

    `caps` may also carry `platform_month` (the channel's own monthly limit, counted like `month`)."""
    times = list(history)
    for period, key in (("day", "day"), ("week", "week"), ("month", "month"), ("month", "platform_month")):
        limit = caps.get(key)
        if limit is None:
            continue
        start, end = period_window(at, period, tz)
        if sum(1 for t in times if start <= t < end) >= limit:
            return "platform:month" if key == "platform_month" else f"cap:{period}"
    return None


def parse_clock(value: str | None, field: str) -> time | None:
    """"HH:MM" as a time; None for an empty value."""
    if value in (None, ""):
        return None
    match = _CLOCK.match(str(value))
    if match is None:
        raise Invalid("a time of day as HH:MM, such as 21:00", field=field)
    return time(int(match.group(1)), int(match.group(2)))


def is_quiet(at: datetime, start: time | None, end: time | None, tz: ZoneInfo) -> bool:
    """True when `at` falls inside the quiet hours [start, end) local time."""
    if start is None or end is None or start == end:
        return False
    now = at.astimezone(tz).time().replace(tzinfo=None)
    if start < end:
        return start <= now < end
    return now >= start or now < end


def after_quiet_hours(at: datetime, start: time | None, end: time | None, tz: ZoneInfo) -> datetime:
    """`at` itself outside quiet hours, else the first instant (UTC) at which they end."""
    if not is_quiet(at, start, end, tz):
        return at
    assert end is not None
    local = at.astimezone(tz)
    day = local.date()
    ends_today = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
    candidate = ends_today if ends_today > at else datetime.combine(day + timedelta(days=1), end, tzinfo=tz)
    return candidate.astimezone(UTC)


# --- settings ------------------------------------------------------------------------------------


def get_settings(session: Session) -> BroadcastSettings:
    """The workspace's caps and quiet hours (defaults, unsaved, until someone sets them)."""
    found = session.execute(select(BroadcastSettings)).scalar_one_or_none()
    if found is not None:
        return found
    workspace_id = bound_workspace(session)
    return BroadcastSettings(workspace_id=workspace_id, caps={}, quiet_start=None, quiet_end=None)


def clean_caps(caps: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Caps per channel kind, each period a whole number from 0 to MAX_CAP (missing: no cap)."""
    cleaned: dict[str, dict[str, int]] = {}
    for kind, limits in caps.items():
        if kind not in CHANNEL_KINDS and kind not in adapter_kinds():
            raise Invalid(f"caps are per channel: one of {', '.join(CHANNEL_KINDS)}", field=f"caps.{kind}")
        if not isinstance(limits, Mapping):
            raise Invalid("limits per day, week and month", field=f"caps.{kind}")
        row: dict[str, int] = {}
        for period, value in limits.items():
            if period not in PERIODS:
                raise Invalid(f"a period is one of {', '.join(PERIODS)}", field=f"caps.{kind}.{period}")
            if value is None or value == "":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAP:
                raise Invalid(f"a whole number from 0 to {MAX_CAP}", field=f"caps.{kind}.{period}")
            row[period] = value
        if row:
            cleaned[kind] = row
    return cleaned


def caps_for(settings: BroadcastSettings, kind: str) -> dict[str, int]:
    """The caps that apply to a channel kind: the tightest of its own and those for every channel."""
    merged: dict[str, int] = {}
    for source in (settings.caps.get(ANY_CHANNEL) or {}, settings.caps.get(kind) or {}):
        for period, value in source.items():
            merged[period] = min(value, merged.get(period, value))
    return merged


def update_settings(
    session: Session, *, caps: Mapping[str, Any], quiet_start: str | None, quiet_end: str | None, actor: Actor
) -> BroadcastSettings:
    """Replace the caps and quiet hours (both ends or neither)."""
    settings = get_settings(session)
    before = audit.snapshot(settings) if settings.id else None
    cleaned = clean_caps(caps)
    start, end = parse_clock(quiet_start, "quiet_start"), parse_clock(quiet_end, "quiet_end")
    if (start is None) != (end is None):
        raise Invalid("give both ends of the quiet hours, or neither", field="quiet_end" if start else "quiet_start")
    if start is not None and start == end:
        raise Invalid("quiet hours end at another time than they start", field="quiet_end")
    settings.caps = cleaned
    settings.quiet_start = start.strftime("%H:%M") if start else None
    settings.quiet_end = end.strftime("%H:%M") if end else None
    if settings not in session:
        session.add(settings)
    session.flush()
    audit.record(session, actor, workspace_id=settings.workspace_id, action="broadcast_settings.update",
                 entity_type="broadcast_settings", entity_id=settings.id, before=before,
                 after=audit.snapshot(settings))
    return settings
