"""Staff rotation as pure functions: who of a code's members may take the next contact, and who does.

(A minimal copy written to test the acquisition core against the agreed interface; the rotation
engine written alongside replaces this file at merge.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from siyu.core.errors import Invalid

STRATEGIES = ("round_robin", "random", "weighted")


@dataclass(frozen=True)
class Member:
    staff_id: int
    weight: int = 1
    daily_cap: int | None = None
    hours: tuple[Mapping[str, Any], ...] = ()
    backup: bool = False
    position: int = 0


def _minutes(value: Any, field: str) -> int:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise Invalid("a time is HH:MM", field=field)
    hours, minutes = value[:2], value[3:]
    if not (hours.isdigit() and minutes.isdigit()) or int(minutes) > 59 or int(hours) > 24:
        raise Invalid("a time is HH:MM", field=field)
    total = int(hours) * 60 + int(minutes)
    if total > 24 * 60:
        raise Invalid("a time is HH:MM", field=field)
    return total


def validate_hours(value: Any, field: str = "hours") -> list[dict[str, Any]]:
    """Working hours cleaned: `[{"days": [1..7], "start": "HH:MM", "end": "HH:MM"}]` (empty: always)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 14:
        raise Invalid("hours is a list of at most 14 shifts", field=field)
    out: list[dict[str, Any]] = []
    for i, shift in enumerate(value):
        where = f"{field}.{i}"
        if not isinstance(shift, Mapping):
            raise Invalid("a shift is {days, start, end}", field=where)
        days = shift.get("days")
        if (not isinstance(days, list) or not days
                or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7 for d in days)):
            raise Invalid("days are ISO weekdays, 1 (Monday) to 7 (Sunday)", field=f"{where}.days")
        start, end = shift.get("start", "00:00"), shift.get("end", "24:00")
        if _minutes(start, f"{where}.start") >= _minutes(end, f"{where}.end"):
            raise Invalid("a shift ends after it starts", field=f"{where}.end")
        out.append({"days": sorted(set(days)), "start": start, "end": end})
    return out


def validate_members(members: Sequence[Member]) -> None:
    """Refuse a cap below zero or a weight below one, naming the member."""
    for i, m in enumerate(members):
        if m.daily_cap is not None and m.daily_cap < 0:
            raise Invalid("a daily cap is 0 or more", field=f"members.{i}.daily_cap")
        if m.weight < 1:
            raise Invalid("a weight is 1 or more", field=f"members.{i}.weight")


def on_duty(member: Member, at_local: datetime) -> bool:
    """Whether the member works at this local time (no hours: always)."""
    if not member.hours:
        return True
    day, minute = at_local.isoweekday(), at_local.hour * 60 + at_local.minute
    for shift in member.hours:
        start, end = _minutes(shift.get("start", "00:00"), "start"), _minutes(shift.get("end", "24:00"), "end")
        if day in shift.get("days", ()) and start <= minute < end:
            return True
    return False


def _room(member: Member, counts: Mapping[int, int]) -> bool:
    return member.daily_cap is None or counts.get(member.staff_id, 0) < member.daily_cap


def eligible(members: Sequence[Member], counts: Mapping[int, int], at_local: datetime) -> list[Member]:
    """Regular members with room and on duty; else backups with room and on duty; else none."""
    ordered = sorted(members, key=lambda m: (m.position, m.staff_id))
    for backup in (False, True):
        found = [m for m in ordered if m.backup is backup and _room(m, counts) and on_duty(m, at_local)]
        if found:
            return found
    return []


def choose(strategy: str, members: Sequence[Member], counts: Mapping[int, int], at_local: datetime, *,
           cursor: int, draw: float) -> tuple[Member | None, int]:
    """The member who takes the next contact and the new round-robin cursor."""
    pool = eligible(members, counts, at_local)
    if not pool:
        return None, cursor
    if strategy == "random":
        return pool[min(int(draw * len(pool)), len(pool) - 1)], cursor
    if strategy == "weighted":
        total = sum(m.weight for m in pool)
        point = draw * total
        for m in pool:
            point -= m.weight
            if point < 0:
                return m, cursor
        return pool[-1], cursor
    after = [m for m in pool if m.position > cursor]
    chosen = after[0] if after else pool[0]
    return chosen, chosen.position
