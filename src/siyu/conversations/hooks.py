"""The archive's flush hook: every new `Message`, whoever wrote it through the ORM, is indexed for
search, checked against the sensitive-word rules and (outbound) put into its conversation, in the
writer's own transaction. Rows written around the ORM are indexed by the sweep (`index_missing`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from siyu.conversations import search, sensitive, threads
from siyu.conversations.models import Message

_PENDING = "conversations.new_messages"


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, Message)]
    if new:
        session.info.setdefault(_PENDING, []).extend(new)


@event.listens_for(Session, "after_flush_postexec")
def _process(session: Session, _context: Any) -> None:
    new: list[Message] | None = session.info.pop(_PENDING, None)
    if not new:
        return
    search.index_rows(session, [(m.id, m.workspace_id, m.text) for m in new])
    sensitive.scan(session, new)
    threads.attach_outbound(session, [m for m in new if m.direction == "out"])


@event.listens_for(Session, "after_transaction_end")
def _forget_sweeps(session: Session, _transaction: Any) -> None:
    # What this transaction asked for may have been rolled back: the next one asks again (idempotently).
    session.info.pop(threads.SWEEPS_ASKED, None)
