"""An injectable clock, so tests control time. Always timezone-aware UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def _system_now() -> datetime:
    return datetime.now(UTC) + _offset


_now: Callable[[], datetime] = _system_now


def now() -> datetime:
    """The current time in UTC."""
    return _now()


def set_clock(fn: Callable[[], datetime]) -> None:
    """Replace the clock (tests)."""
    global _now
    _now = fn


def set_offset(seconds: float) -> None:
    """Shift the system clock by a number of seconds (crash tests age leases this way)."""
    global _offset
    _offset = timedelta(seconds=seconds)


def reset() -> None:
    """Back to the system clock."""
    global _now, _offset
    _offset = timedelta(0)
    _now = _system_now


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        """Move time forward by a timedelta's keyword arguments."""
        self.current += timedelta(**kwargs)
