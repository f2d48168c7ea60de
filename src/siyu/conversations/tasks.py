"""Conversations' worker jobs: the sweep that closes idle conversations and indexes stragglers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from siyu.conversations import search, service
from siyu.conversations.threads import SWEEP
from siyu.core import jobs
from siyu.core.tenancy import bind_workspace


@jobs.handler(SWEEP)
def sweep(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Close the workspace's idle conversations (queuing their surveys); index unindexed messages."""
    bind_workspace(session, ctx.workspace_id)
    closed = service.close_idle(session)
    indexed = search.index_missing(session, limit=5000)
    return {"closed": closed, "indexed": indexed}
