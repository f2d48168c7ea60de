"""Conversations' worker jobs: the sweep that closes idle conversations and indexes stragglers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from siyu.conversations import search, service
from siyu.conversations.threads import SWEEP
from siyu.core import jobs
from siyu.core.tenancy import bind_workspace

BATCH = 1000


@jobs.handler(SWEEP)
def sweep(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Close the workspace's idle conversations (queuing their surveys); index unindexed messages."""
    bind_workspace(session, ctx.workspace_id)
    closed = service.close_idle(session, limit=BATCH)
    indexed = search.index_missing(session, limit=BATCH)
    if ctx.workspace_id is not None and (closed >= BATCH or indexed >= BATCH):
        # More than one batch waits: go on right away rather than at the next message's slot.
        jobs.enqueue(session, SWEEP, f"{ctx.workspace_id}:more:{ctx.job_id}", {}, workspace_id=ctx.workspace_id)
    return {"closed": closed, "indexed": indexed}
