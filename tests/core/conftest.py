"""Fixtures of the core tests: a frozen clock and a table the unit job kinds write their effects to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, text

from siyu.core import clock

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# The idempotency keys of the external calls the unit job kinds made.
CALLS: list[str] = []


@pytest.fixture
def frozen() -> clock.FrozenClock:
    c = clock.FrozenClock(START)
    clock.set_clock(c)
    CALLS.clear()
    return c


@pytest.fixture
def effects(connection: Connection) -> Callable[[], list[Any]]:
    connection.execute(text("CREATE TABLE unit_effects (job_id INTEGER NOT NULL, workspace_id INTEGER)"))
    query = text("SELECT job_id, workspace_id FROM unit_effects ORDER BY job_id")
    return lambda: connection.execute(query).all()
