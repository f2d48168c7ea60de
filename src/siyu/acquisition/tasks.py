"""Acquisition's background work: rewriting a WeCom code's member list when its eligible members
change, and the periodic tick that expires codes and follows shifts.

WeCom picks among a contact way's members itself, so rotation is applied by rewriting the same
config's member list — only when the eligible set changed (a cap reached, a shift started or ended),
never on every add: one job per code and change of set, so WeCom's API limits hold.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.acquisition import codes, rotation
from siyu.acquisition.arrivals import day_counts, local_now
from siyu.acquisition.models import ChannelCode
from siyu.channels.wecom.client import RetryLater
from siyu.channels.wecom.service import PlatformRefused
from siyu.core import clock, jobs
from siyu.core.tenancy import bind_workspace, bound_workspace, parse_id

SYNC = "acquisition.sync_members"
TICK = "acquisition.tick"
TICK_SECONDS = 300


def _digest(userids: list[str]) -> str:
    return hashlib.sha256(",".join(sorted(userids)).encode()).hexdigest()[:16]


def eligible_userids(session: Session, code: ChannelCode, at_local: datetime) -> list[str]:
    """The userids of the members eligible now (empty: nobody is)."""
    rows = codes.members_of(session, code)
    ids = codes.userids(session, [r.staff_id for r in rows])
    chosen = rotation.eligible(codes.rotation_members(rows), day_counts(session, code, at_local.date()), at_local)
    return sorted(ids[m.staff_id] for m in chosen if m.staff_id in ids)


def queue_member_sync(session: Session, code: ChannelCode, at_local: datetime, *, why: str = "add") -> bool:
    """Queue a rewrite of the code's WeCom member list when the eligible set differs from the one written;
    True when a job was queued. Nobody eligible: the list is left as it is."""
    wanted = eligible_userids(session, code, at_local)
    current = sorted(code.synced_userids or [])
    if not wanted or wanted == current:
        return False
    key = f"{code.id}:{at_local.date().isoformat()}:{_digest(current)}:{_digest(wanted)}:{why}"
    return jobs.enqueue(session, SYNC, key, {"code_id": code.id}, workspace_id=code.workspace_id)


@jobs.handler(SYNC, external=True, accepts_idempotency_key=True)
def sync_members(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Write the code's eligible members to its contact way (WeCom's update is idempotent)."""
    bind_workspace(session, ctx.workspace_id)
    code = session.execute(select(ChannelCode).where(
        ChannelCode.id == parse_id(ctx.payload["code_id"], "code"))).scalar_one_or_none()
    if code is None:
        return {"skipped": "code_deleted"}
    try:
        called = codes.sync_wecom_members(session, code)
    except PlatformRefused as exc:
        if exc.status == 503:
            from siyu.channels.base import ChannelError

            raise RetryLater(ChannelError(exc.code, exc.message, retryable=True)) from exc
        code.sync_error = exc.message[:2000]
        return {"failed": exc.message}
    return {"updated": called, "users": list(code.synced_userids or [])}


def schedule_tick(session: Session) -> bool:
    """Make sure the workspace's tick runs at the start of the next period (one job a period)."""
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        return False
    slot = int(clock.now().timestamp() // TICK_SECONDS) + 1
    return jobs.enqueue(session, TICK, f"{workspace_id}:{slot}", {}, workspace_id=workspace_id,
                        run_at=datetime.fromtimestamp(slot * TICK_SECONDS, UTC))


def expire_due(session: Session) -> int:
    """Mark the bound workspace's active codes whose expiry passed as expired; how many."""
    now = clock.now()
    due = session.execute(select(ChannelCode).where(ChannelCode.status == "active",
                                                    ChannelCode.expires_at.is_not(None),
                                                    ChannelCode.expires_at <= now)).scalars().all()
    for code in due:
        codes.set_status(session, code, "expired", actor=None)
    return len(due)


def follow_shifts(session: Session) -> int:
    """Queue a member-list rewrite for every WeCom code whose eligible members changed; how many."""
    at_local = local_now(session)
    slot = int(clock.now().timestamp() // TICK_SECONDS)
    wecom_codes = session.execute(select(ChannelCode).where(ChannelCode.kind == "wecom",
                                                            ChannelCode.config_id.is_not(None))).scalars().all()
    return sum(queue_member_sync(session, code, at_local, why=f"tick{slot}") for code in wecom_codes)


@jobs.handler(TICK)
def tick(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Expire due codes, follow shifts and caps on WeCom codes, then schedule the next tick."""
    bind_workspace(session, ctx.workspace_id)
    expired = expire_due(session)
    queued = follow_shifts(session)
    live = session.execute(select(ChannelCode.id).where(ChannelCode.status != "expired").limit(1)).first()
    if live is not None:
        schedule_tick(session)
    return {"expired": expired, "queued": queued, "next": live is not None}
