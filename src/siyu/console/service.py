"""What the console's platform pages read in the bound workspace: dashboard numbers and the audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from siyu.core import clock, jobs
from siyu.core.models import ApiKey, AuditEntry, Event, Membership
from siyu.core.pagination import page

CHART_DAYS = 14
AUDIT_PAGE = 50


@dataclass(frozen=True)
class DayCount:
    """Events on one calendar day of the workspace's timezone."""

    day: date
    count: int


def events_per_day(session: Session, *, timezone: str, days: int = CHART_DAYS) -> list[DayCount]:
    """Events of the bound workspace per local day over the last `days` days, today included, oldest first."""
    zone = ZoneInfo(timezone)
    today = clock.now().astimezone(zone).date()
    dates = [today - timedelta(days=days - 1 - i) for i in range(days)]
    # Day edges are computed in the workspace's zone then compared in UTC: one portable query, DST-correct.
    edges = [datetime.combine(d, time(), tzinfo=zone) for d in [*dates, today + timedelta(days=1)]]
    buckets = [
        func.sum(case((and_(Event.occurred_at >= edges[i], Event.occurred_at < edges[i + 1]), 1), else_=0))
        for i in range(days)
    ]
    row = session.execute(
        select(*buckets).where(Event.occurred_at >= edges[0], Event.occurred_at < edges[-1])
    ).one()
    return [DayCount(day=d, count=int(n or 0)) for d, n in zip(dates, row, strict=True)]


@dataclass(frozen=True)
class Summary:
    """The dashboard's headline numbers for the bound workspace."""

    members: int
    active_keys: int
    audit_entries: int
    jobs: dict[str, int] | None


def summary(session: Session, *, with_jobs: bool) -> Summary:
    """Members, live API keys, audit entries and (when the jobs module can count them) jobs by status."""
    members = session.execute(select(func.count()).select_from(Membership)).scalar_one()
    active = session.execute(
        select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
    ).scalar_one()
    audited = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    counts: dict[str, int] | None = None
    # job_counts arrives with the worker; until then the dashboard simply leaves the card out.
    if with_jobs:
        counts = {str(k): int(v) for k, v in dict(jobs.job_counts(session)).items()}
    return Summary(members=members, active_keys=active, audit_entries=audited, jobs=counts)


def audit_page(
    session: Session, *, cursor: str | None, action: str | None, limit: int = AUDIT_PAGE
) -> tuple[Sequence[AuditEntry], str | None]:
    """One page of the bound workspace's audit log, newest first, optionally one action only."""
    stmt = select(AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return page(session, stmt, AuditEntry.id, cursor=cursor, limit=limit)


def audit_actions(session: Session) -> list[str]:
    """The actions that appear in the bound workspace's log, for the filter."""
    return list(session.execute(select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars())


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def diff(entry: AuditEntry) -> list[tuple[str, str | None, str | None]]:
    """(field, before, after) as text for every field an entry mentions with a value on either side."""
    before, after = entry.before or {}, entry.after or {}
    rows = [(k, _shown(before.get(k)), _shown(after.get(k))) for k in sorted(set(before) | set(after))]
    return [row for row in rows if row[1] is not None or row[2] is not None]
