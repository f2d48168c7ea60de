"""Which keyword rule answers a message: pure functions over rules as data, so they can be checked alone.

Text is compared after NFKC normalisation and case folding (full-width ＡＢＣ１ is abc1). `exact` wants
the whole message (spaces around it ignored), `contains` a part of it, `regex` a search of the pattern
over the first MAX_INPUT characters. The rule with the lowest priority wins, then the newest; `default`
rules answer only when no other rule matched, in the same order. A rule answers only inside one of its
time windows (none: always), in the workspace's local time.

Patterns run on RE2 (`siyu.core.patterns`): linear in the text whatever the pattern, so a hostile
pattern can't stall a callback; backreferences and lookarounds are refused when a rule is saved.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from siyu.core import patterns
from siyu.core.errors import Invalid

MATCH_TYPES = ("exact", "contains", "regex", "default")
MAX_PATTERN = 200
MAX_INPUT = 500
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


@dataclass(frozen=True)
class Window:
    """ISO weekdays (1 Monday … 7 Sunday) and a time range [start, end) in minutes of the day."""

    days: frozenset[int]
    start: int
    end: int

    def holds(self, local: datetime) -> bool:
        """Whether a local time falls inside this window."""
        minute = local.hour * 60 + local.minute
        return local.isoweekday() in self.days and self.start <= minute < self.end


@dataclass(frozen=True)
class Rule:
    """A keyword rule as the matcher sees it."""

    id: int
    match_type: str
    keywords: tuple[str, ...]
    priority: int
    windows: tuple[Window, ...] = ()


def normalise(text: str) -> str:
    """Text as compared: NFKC (full-width to half-width), case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def keyword_in(rule: Rule, text: str) -> str | None:
    """The rule's keyword (or pattern) that the text matches, or None."""
    said = normalise(text)
    for keyword in rule.keywords:
        if rule.match_type == "exact" and said.strip() == normalise(keyword).strip():
            return keyword
        if rule.match_type == "contains" and normalise(keyword) in said:
            return keyword
        if rule.match_type == "regex" and patterns.compiled(keyword, ignore_case=True).search(said[:MAX_INPUT]):
            return keyword
    return None


def in_windows(windows: Sequence[Window], local: datetime) -> bool:
    """Whether a rule with these windows answers at this local time."""
    return not windows or any(w.holds(local) for w in windows)


def choose(rules: Iterable[Rule], text: str, local: datetime) -> tuple[Rule, str] | None:
    """The rule that answers `text` at `local` time and the keyword it matched ("" for a default reply)."""
    ordered = sorted(rules, key=lambda r: (r.priority, -r.id))
    for rule in ordered:
        if rule.match_type != "default" and in_windows(rule.windows, local):
            found = keyword_in(rule, text)
            if found is not None:
                return rule, found
    for rule in ordered:
        if rule.match_type == "default" and in_windows(rule.windows, local):
            return rule, ""
    return None


# --- checking what people write ---------------------------------------------------------------------


def check_pattern(pattern: str, *, field: str) -> None:
    """Refuse a regular expression that is too long, that RE2 can't take, or that matches every message."""
    # Not case-folded (folding would turn \D into \d): the pattern is compiled case-insensitive instead.
    patterns.check(pattern, field=field, ignore_case=True, max_length=MAX_PATTERN)


def parse_window(raw: Any, field: str) -> dict[str, Any]:
    """A window as stored: {"days": [1..7], "start": "HH:MM", "end": "HH:MM"} with start before end."""
    if not isinstance(raw, dict):
        raise Invalid("a window is {days, start, end}", field=field)
    extra = sorted(set(raw) - {"days", "start", "end"})
    if extra:
        raise Invalid(f"unknown field {extra[0]!r}", field=f"{field}.{extra[0]}", code="unknown_field")
    days = raw.get("days")
    if (not isinstance(days, list) or not days
            or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7 for d in days)):
        raise Invalid("days are weekdays 1 (Monday) to 7 (Sunday)", field=f"{field}.days")
    start, end = raw.get("start", "00:00"), raw.get("end", "24:00")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, str) or not _TIME.match(value):
            raise Invalid("a time such as 09:00 (24:00 for the end of the day)", field=f"{field}.{name}")
    if minutes(start) >= minutes(end):
        raise Invalid("the window ends after it starts (split a window across midnight in two)",
                      field=f"{field}.end")
    return {"days": sorted(set(days)), "start": start, "end": end}


def minutes(value: str) -> int:
    """Minutes of the day of an HH:MM time."""
    hours, mins = value.split(":")
    return int(hours) * 60 + int(mins)


def window_of(stored: dict[str, Any]) -> Window:
    """A stored window as the matcher's."""
    return Window(frozenset(stored["days"]), minutes(stored["start"]), minutes(stored["end"]))
