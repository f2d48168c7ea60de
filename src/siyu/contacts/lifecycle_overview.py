"""What the lifecycle page shows: contacts per stage, the RFM distribution, when stages were refreshed;
and a person's request to refresh now.

The figures come from the contacts table (the worker keeps it up to date, see contacts.lifecycle), so
the page costs three grouped queries whatever the size of the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.contacts.lifecycle import REFRESH, ensure_daily_refresh, request_refresh, stage_counts
from siyu.contacts.models import Contact
from siyu.core import clock
from siyu.core.audit import Actor, record
from siyu.core.errors import TenancyViolation
from siyu.core.models import Job
from siyu.core.tenancy import bound_workspace

SCORES = (1, 2, 3, 4, 5)
RFM_COLUMNS = {"recency": Contact.rfm_recency, "frequency": Contact.rfm_frequency, "monetary": Contact.rfm_monetary}


def rfm_distribution(session: Session) -> dict[str, dict[int, int]]:
    """How many contacts have each score 1..5, per dimension (recency, frequency, monetary)."""
    out: dict[str, dict[int, int]] = {}
    for name, column in RFM_COLUMNS.items():
        counts = dict.fromkeys(SCORES, 0)
        for score, n in session.execute(
            select(column, func.count()).where(column.is_not(None)).group_by(column)
        ):
            if score in counts:
                counts[score] = int(n)
        out[name] = counts
    return out


@dataclass(frozen=True)
class RefreshState:
    """Where the workspace's lifecycle refresh stands."""

    last_finished_at: datetime | None
    queued_now: bool
    next_daily_at: datetime | None


def refresh_state(session: Session) -> RefreshState:
    """When stages were last refreshed, whether a refresh waits for the worker, when the next daily one runs."""
    last = session.execute(
        select(func.max(Job.finished_at)).where(Job.kind == REFRESH, Job.status == "done")
    ).scalar_one()
    pending = session.execute(
        select(Job.run_at, Job.payload).where(Job.kind == REFRESH, Job.status.in_(("pending", "running")))
    ).all()
    daily = [run_at for run_at, payload in pending if (payload or {}).get("daily")]
    queued = any(not (payload or {}).get("daily") for _, payload in pending)
    return RefreshState(last, queued, min(daily) if daily else None)


def refresh_now(session: Session, *, actor: Actor) -> bool:
    """Queue a refresh of every contact's stage and RFM scores; False if one is already waiting."""
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("lifecycle is refreshed through a session bound to a workspace")
    if refresh_state(session).queued_now:
        ensure_daily_refresh(session)
        return False
    request_refresh(session)
    record(session, actor, workspace_id=workspace_id, action="contacts.lifecycle_refresh",
           entity_type="contact_settings", entity_id=None, after={"requested_at": clock.now().isoformat()})
    return True


__all__ = ["SCORES", "RefreshState", "refresh_now", "refresh_state", "rfm_distribution", "stage_counts"]
