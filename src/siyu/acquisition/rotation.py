"""Which staff member a channel code hands the next new contact to: pure functions over members as data.

A code's members are *regulars* and *backups*. A member is *eligible* when they are on duty (inside one
of their working-hours windows, in the workspace's local time; no windows: always) and have room today
(fewer of the code's arrivals today than their `daily_cap`; no cap: always room). The eligible set is
the eligible regulars in position order; only when there is none, the eligible backups; else nobody.

Strategies pick one of the eligible set:

- `round_robin`: the next eligible member after the last one chosen, by position, wrapping round. The
  cursor is the last chosen *position* (not an index), so adding or removing a member does not shift
  who comes next; positions must be distinct (number them 1, 2, … so a fresh cursor of 0 starts at the
  first member).
- `random`: uniform over the eligible set, using a draw in [0, 1) the caller makes.
- `weighted`: deterministic and smooth: the member with the lowest (count + 1) / weight among those
  still within their upper quota, ceil((N + 1) × weight / W) over the eligible set's N arrivals today
  and W total weight; ties by position, starting after the cursor. That is Balinski and Young's quota
  method: when no cap binds and everyone is on duty, after N adds each member's count stays strictly
  within 1 of N × weight / W. Without the quota guard (plain D'Hondt, lowest (count + 1) / weight
  alone) a heavy member can run more than 2 ahead of its share (weights 16, 4, 2, 2, 1). It balances
  the day's counts: a member coming on duty mid-day takes most arrivals until level with the others.

The caller passes the clock (`at_local`, the workspace's local time) and the draw; today's counts come
from the code's arrivals on the workspace's local day, so caps reset at local midnight.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from siyu.core.errors import Invalid

STRATEGIES = ("round_robin", "random", "weighted")
MAX_MEMBERS = 100
MAX_WEIGHT = 100
MAX_DAILY_CAP = 100_000
MAX_WINDOWS = 14
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")  # ASCII digits only: \d takes ١
_MEMBER_KEYS = ("staff_id", "weight", "daily_cap", "hours", "backup")
_WINDOW_KEYS = ("days", "start", "end")


@dataclass(frozen=True)
class Member:
    """A staff member of a code as the rotation sees them (hours as validated by `validate_hours`)."""

    staff_id: int
    weight: int = 1
    daily_cap: int | None = None
    hours: tuple[Mapping[str, Any], ...] = ()
    backup: bool = False
    position: int = 0


# --- checking what people write ---------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_hours(value: Any, field: str = "hours") -> list[dict[str, Any]]:
    """Working hours as stored: `[{"days": [1..7], "start": "HH:MM", "end": "HH:MM"}]`; empty: always.

    Days are ISO weekdays (1 Monday … 7 Sunday) on which a shift *starts*; an end before the start
    crosses midnight into the next day ("22:00"–"06:00"); "00:00"–"24:00" is the whole day."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise Invalid("working hours are a list of {days, start, end}", field=field)
    if len(value) > MAX_WINDOWS:
        raise Invalid(f"at most {MAX_WINDOWS} working-hours windows", field=field)
    return [_window(raw, f"{field}.{i}") for i, raw in enumerate(value)]


def _window(raw: Any, field: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise Invalid("a working-hours window is {days, start, end}", field=field)
    extra = sorted(str(k) for k in raw if k not in _WINDOW_KEYS)
    if extra:
        raise Invalid(f"unknown field {extra[0]!r}", field=f"{field}.{extra[0]}", code="unknown_field")
    days = raw.get("days")
    if (not isinstance(days, list | tuple) or not days
            or any(not _is_int(d) or not 1 <= d <= 7 for d in days)):
        raise Invalid("days are weekdays 1 (Monday) to 7 (Sunday), at least one", field=f"{field}.days")
    for name in ("start", "end"):
        if name not in raw:
            raise Invalid("a time such as 09:00", field=f"{field}.{name}")
        text = raw[name]
        if not isinstance(text, str) or not _TIME.match(text):
            raise Invalid("a time such as 09:00 (24:00 for the end of the day)", field=f"{field}.{name}")
    start, end = raw["start"], raw["end"]
    if start == "24:00":
        raise Invalid("a shift starts at 23:59 at the latest", field=f"{field}.start")
    if start == end:
        raise Invalid("a shift ends at another time than it starts (00:00 to 24:00 for the whole day)",
                      field=f"{field}.end")
    return {"days": sorted(set(days)), "start": start, "end": end}


def validate_members(value: Any, field: str = "members", *, at_least_one: bool = False) -> list[dict[str, Any]]:
    """A code's members as stored, in the order given: each `{staff_id, weight, daily_cap, hours, backup}`.

    `weight` defaults to 1 (1 to MAX_WEIGHT), `daily_cap` to None (no cap; 0 takes nobody today),
    `hours` to always, `backup` to False. A staff member appears once."""
    if value is None:
        value = []
    if not isinstance(value, list | tuple):
        raise Invalid("members are a list of {staff_id, weight, daily_cap, hours, backup}", field=field)
    if at_least_one and not value:
        raise Invalid("choose at least one staff member", field=field)
    if len(value) > MAX_MEMBERS:
        raise Invalid(f"at most {MAX_MEMBERS} staff members on a code", field=field)
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, raw in enumerate(value):
        here = f"{field}.{i}"
        if not isinstance(raw, Mapping):
            raise Invalid("a member is {staff_id, weight, daily_cap, hours, backup}", field=here)
        extra = sorted(str(k) for k in raw if k not in _MEMBER_KEYS)
        if extra:
            raise Invalid(f"unknown field {extra[0]!r}", field=f"{here}.{extra[0]}", code="unknown_field")
        staff_id = raw.get("staff_id")
        if not isinstance(staff_id, int) or isinstance(staff_id, bool) or staff_id < 1:
            raise Invalid("choose a staff member", field=f"{here}.staff_id")
        if staff_id in seen:
            raise Invalid("this staff member is already on the code", field=f"{here}.staff_id", code="duplicate")
        seen.add(staff_id)
        weight = raw.get("weight", 1)
        if not _is_int(weight) or not 1 <= weight <= MAX_WEIGHT:
            raise Invalid(f"a weight is a whole number from 1 to {MAX_WEIGHT}", field=f"{here}.weight")
        cap = raw.get("daily_cap")
        if cap is not None and (not _is_int(cap) or not 0 <= cap <= MAX_DAILY_CAP):
            raise Invalid(f"a daily cap is a whole number from 0 to {MAX_DAILY_CAP:,} (empty: no cap)",
                          field=f"{here}.daily_cap")
        backup = raw.get("backup", False)
        if not isinstance(backup, bool):
            raise Invalid("backup is true or false", field=f"{here}.backup")
        hours = validate_hours(raw.get("hours"), f"{here}.hours")
        out.append({"staff_id": staff_id, "weight": weight, "daily_cap": cap, "hours": hours, "backup": backup})
    return out


def members_of(validated: Sequence[Mapping[str, Any]]) -> list[Member]:
    """Members from `validate_members` output (or stored rows as dicts), positioned 1, 2, … in order."""
    return [Member(staff_id=m["staff_id"], weight=m.get("weight", 1), daily_cap=m.get("daily_cap"),
                   hours=tuple(m.get("hours") or ()), backup=bool(m.get("backup", False)), position=i)
            for i, m in enumerate(validated, start=1)]


# --- who is on duty and who has room -----------------------------------------------------------------


def _minutes(value: str) -> int:
    hours, mins = value.split(":")
    return int(hours) * 60 + int(mins)


@lru_cache(maxsize=4096)
def _span(start: str, end: str) -> tuple[int, int]:
    return _minutes(start), _minutes(end)


def on_duty(member: Member, at_local: datetime) -> bool:
    """Whether the member works at this workspace-local time (no hours: always)."""
    if not member.hours:
        return True
    minute = at_local.hour * 60 + at_local.minute
    today = at_local.isoweekday()
    yesterday = 7 if today == 1 else today - 1
    for window in member.hours:
        start, end = _span(window["start"], window["end"])
        days = window["days"]
        if start < end:
            if today in days and start <= minute < end:
                return True
        elif (today in days and minute >= start) or (yesterday in days and minute < end):
            # crosses midnight: from start on a listed day until end on the next
            return True
    return False


def has_room(member: Member, counts: Mapping[int, int]) -> bool:
    """Whether the member can take another contact today (no cap: always)."""
    return member.daily_cap is None or counts.get(member.staff_id, 0) < member.daily_cap


def eligible(members: Sequence[Member], counts: Mapping[int, int], at_local: datetime) -> list[Member]:
    """Regulars on duty with room, by position; if none, backups on duty with room; else nobody."""
    ordered = sorted(members, key=lambda m: (m.position, m.staff_id))
    for backup in (False, True):
        found = [m for m in ordered if m.backup is backup and on_duty(m, at_local) and has_room(m, counts)]
        if found:
            return found
    return []


# --- choosing ----------------------------------------------------------------------------------------


def _round_robin(pool: list[Member], cursor: int) -> Member:
    for member in pool:
        if member.position > cursor:
            return member
    return pool[0]


def _random(pool: list[Member], draw: float) -> Member:
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"draw must be in [0, 1), got {draw!r}")
    return pool[min(int(draw * len(pool)), len(pool) - 1)]


def _weighted(pool: list[Member], counts: Mapping[int, int], cursor: int) -> Member:
    total_weight = sum(m.weight for m in pool)
    after = sum(counts.get(m.staff_id, 0) for m in pool) + 1
    best: Member | None = None
    best_count = 0
    # Ties go by position starting after the last chosen (a strict < keeps the first), so a day's
    # remainder does not fall to the same members every day.
    for member in [m for m in pool if m.position > cursor] + [m for m in pool if m.position <= cursor]:
        count = counts.get(member.staff_id, 0)
        # upper quota: count + 1 <= ceil(after × weight / W). Someone always passes: a member with
        # count <= (after - 1) × weight / W exists, since the counts sum to after - 1.
        if count + 1 > -(-after * member.weight // total_weight):
            continue
        # (count + 1) / weight < (best_count + 1) / best.weight, in integers
        if best is None or (count + 1) * best.weight < (best_count + 1) * member.weight:
            best, best_count = member, count
    assert best is not None
    return best


def choose(strategy: str, members: Sequence[Member], counts: Mapping[int, int], at_local: datetime, *,
           cursor: int, draw: float) -> tuple[Member | None, int]:
    """The member the next contact goes to (None: nobody eligible) and the new cursor (the chosen
    member's position; unchanged when nobody is chosen)."""
    if strategy not in STRATEGIES:
        raise Invalid(f"rotation is one of {', '.join(STRATEGIES)}", field="rotation")
    pool = eligible(members, counts, at_local)
    if not pool:
        return None, cursor
    if strategy == "round_robin":
        chosen = _round_robin(pool, cursor)
    elif strategy == "random":
        chosen = _random(pool, draw)
    else:
        chosen = _weighted(pool, counts, cursor)
    return chosen, chosen.position


def eligible_userids(members: Sequence[Member], counts: Mapping[int, int], at_local: datetime,
                     userid_of: Mapping[int, str]) -> list[str]:
    """The WeCom member list for a contact-way config: the eligible set's userids in position order
    (members without a WeCom userid left out)."""
    return [userid_of[m.staff_id] for m in eligible(members, counts, at_local) if userid_of.get(m.staff_id)]
