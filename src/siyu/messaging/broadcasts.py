"""Broadcasts (群发): one marketing message to a segment through one account, now or scheduled.

A broadcast is written as a draft, then scheduled (a time in the workspace's timezone, stored UTC) or
sent now. The worker then runs it (`broadcast_sending`): the start job freezes the audience into
`broadcast_recipients` (unique per contact), chunk jobs of 500 recipients each plan every message
(caps, quiet hours, send time, platform rate) and queue it through `channels.service.queue_send` with
the key `broadcast:<id>:<contact>`. Chunk jobs touch only the database, so each commits exactly once
with its work: a crash repeats a chunk whole or not at all, and the key makes a message at most once.

Pausing stops the chunk chain and withdraws the messages that have not left (their deliver jobs are
closed unrun, the recipients `held`); resuming queues exactly those again and continues the chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import adapter_for
from siyu.contacts import segments
from siyu.conversations.models import Message
from siyu.core import audit, clock, jobs
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid
from siyu.core.pagination import page
from siyu.core.tenancy import bound_workspace, get_scoped
from siyu.core.workspaces import get_workspace
from siyu.messaging import content as shapes
from siyu.messaging.broadcast_models import Broadcast, BroadcastRecipient

STATUSES = ("draft", "scheduled", "sending", "paused", "done", "cancelled")
START, CHUNK, FINISH = "broadcasts.start", "broadcasts.chunk", "broadcasts.finish"
MAX_WINDOW_HOURS = 72
EDITABLE = ("draft", "scheduled")


def workspace_tz(session: Session) -> ZoneInfo:
    """The bound workspace's timezone."""
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("broadcasts work through a session bound to a workspace")
    return ZoneInfo(get_workspace(session, workspace_id).timezone)


def list_broadcasts(
    session: Session, *, status: str | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[Broadcast], str | None]:
    """A page of the workspace's broadcasts, newest first."""
    stmt = select(Broadcast)
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"status is one of {', '.join(STATUSES)}", field="status")
        stmt = stmt.where(Broadcast.status == status)
    return page(session, stmt, Broadcast.id, cursor=cursor, limit=limit)


def get_broadcast(session: Session, broadcast_id: Any) -> Broadcast:
    """One broadcast of the bound workspace (404 for any other)."""
    return get_scoped(session, Broadcast, broadcast_id, what="broadcast")


def _clean_name(session: Session, name: str, broadcast_id: int | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("a name of 1 to 120 characters", field="name")
    other = session.execute(select(Broadcast.id).where(Broadcast.name == name)).scalar_one_or_none()
    if other is not None and other != broadcast_id:
        raise Conflict("another broadcast has this name", field="name")
    return name


def check_content(raw: Mapping[str, Any], kind: str | None = None) -> dict[str, Any]:
    """A broadcast's content: one of `content.TYPES` that the account's channel carries (text, link,
    image and mini-program cards on WeChat, WeCom and webhooks; `email` with a subject and text; `sms`
    with the provider's template code and parameters), every string a valid template."""
    types: tuple[str, ...] = shapes.TYPES
    adapter = None
    if kind is not None:
        adapter = adapter_for(kind)
        if adapter is None:
            raise Invalid("this account's channel is not available", field="account_id")
        types = tuple(t for t in shapes.TYPES if t in adapter.rules.content_types)
        if not types:
            raise Invalid("this account's channel can't send broadcasts", field="account_id")
    out = shapes.check_content(raw, types=types)
    if adapter is not None and adapter.rules.max_text and len(out.get("text", "")) > adapter.rules.max_text:
        raise Invalid(f"this channel carries at most {adapter.rules.max_text} characters", field="content.text")
    return out


def _shown(b: Broadcast) -> dict[str, Any]:
    return audit.snapshot(b)


def _check_refs(session: Session, account_id: Any, segment_id: Any) -> tuple[int, int]:
    if account_id in (None, ""):
        raise Invalid("choose the account to send through", field="account_id")
    if segment_id in (None, ""):
        raise Invalid("choose the segment to send to", field="segment_id")
    account = channels.get_account(session, account_id)
    segment = segments.get_segment(session, segment_id)
    return account.id, segment.id


def _check_window(hours: Any) -> int:
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_WINDOW_HOURS:
        raise Invalid(f"a window of 1 to {MAX_WINDOW_HOURS} hours", field="window_hours")
    return hours


def create_broadcast(
    session: Session, *, name: str, account_id: Any, segment_id: Any, content: Mapping[str, Any],
    optimise_send_time: bool = False, window_hours: int = 24, actor: Actor,
) -> Broadcast:
    """A draft broadcast."""
    account, segment = _check_refs(session, account_id, segment_id)
    b = Broadcast(name=_clean_name(session, name, None), account_id=account, segment_id=segment,
                  content=check_content(content, channels.get_account(session, account).kind),
                  optimise_send_time=bool(optimise_send_time), window_hours=_check_window(window_hours),
                  status="draft", created_by=actor.label, plan={}, created_at=clock.now())
    session.add(b)
    session.flush()
    audit.record(session, actor, workspace_id=b.workspace_id, action="broadcast.create", entity_type="broadcast",
                 entity_id=b.id, after=_shown(b))
    return b


def update_broadcast(session: Session, b: Broadcast, *, changes: Mapping[str, Any], actor: Actor) -> Broadcast:
    """Change a draft or scheduled broadcast (its schedule stays)."""
    if b.status not in EDITABLE:
        raise Conflict(f"a {b.status} broadcast can't be changed", field="status")
    before = _shown(b)
    if "name" in changes:
        b.name = _clean_name(session, changes["name"], b.id)
    if "account_id" in changes or "segment_id" in changes:
        b.account_id, b.segment_id = _check_refs(session, changes.get("account_id", b.account_id),
                                                 changes.get("segment_id", b.segment_id))
    if "content" in changes or "account_id" in changes:
        kind = channels.get_account(session, b.account_id).kind
        b.content = check_content(changes.get("content", b.content), kind)
    if "optimise_send_time" in changes:
        b.optimise_send_time = bool(changes["optimise_send_time"])
    if "window_hours" in changes:
        b.window_hours = _check_window(changes["window_hours"])
    session.flush()
    audit.record(session, actor, workspace_id=b.workspace_id, action="broadcast.update", entity_type="broadcast",
                 entity_id=b.id, before=before, after=_shown(b))
    return b


def delete_broadcast(session: Session, b: Broadcast, *, actor: Actor) -> None:
    """Remove a broadcast that is not running (its sent messages stay in the archive)."""
    if b.status in ("sending", "paused"):
        raise Conflict("cancel the broadcast before deleting it", field="status")
    audit.record(session, actor, workspace_id=b.workspace_id, action="broadcast.delete", entity_type="broadcast",
                 entity_id=b.id, before=_shown(b))
    session.delete(b)
    session.flush()


def local_to_utc(value: str | datetime, tz: ZoneInfo, *, field: str = "scheduled_at") -> datetime:
    """A wall-clock time in the workspace's timezone ("2026-12-01T10:00") as UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise Invalid("a date and time such as 2026-12-01T10:00", field=field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(ZoneInfo("UTC"))


def _transition(b: Broadcast, allowed: Sequence[str], to: str, action: str) -> dict[str, Any]:
    if b.status not in allowed:
        raise Conflict(f"a {b.status} broadcast can't be {action}d", field="status")
    before = _shown(b)
    b.status = to
    b.chunk_seq += 1
    return before


def schedule(session: Session, b: Broadcast, *, at: str | datetime | None, actor: Actor) -> Broadcast:
    """Send at a time in the workspace's timezone (None: now); the start job is due then."""
    now = clock.now()
    when = now if at in (None, "") else local_to_utc(at, workspace_tz(session))
    if when < now - timedelta(minutes=1):
        raise Invalid("choose a time in the future", field="scheduled_at")
    _check_refs(session, b.account_id, b.segment_id)
    before = _transition(b, EDITABLE, "scheduled", "schedule")
    b.scheduled_at = max(when, now)
    jobs.enqueue(session, START, f"broadcast:{b.id}:start:{b.chunk_seq}", {"broadcast_id": b.id, "seq": b.chunk_seq},
                 run_at=b.scheduled_at)
    session.flush()
    audit.record(session, actor, workspace_id=b.workspace_id, action="broadcast.schedule",
                 entity_type="broadcast", entity_id=b.id, before=before, after=_shown(b))
    return b


def _open_messages(session: Session, b: Broadcast, status: str) -> list[tuple[BroadcastRecipient, int | None]]:
    rows = session.execute(
        select(BroadcastRecipient, Message.job_id).join(Message, Message.id == BroadcastRecipient.message_id)
        .where(BroadcastRecipient.broadcast_id == b.id, BroadcastRecipient.status == status,
               Message.status == "queued")).all()
    return [(r, job_id) for r, job_id in rows]


def _withdraw(session: Session, b: Broadcast, reason: str) -> list[BroadcastRecipient]:
    """Close the deliver jobs of queued messages no worker took yet; their recipients."""
    rows = _open_messages(session, b, "queued")
    withdrawn = set(jobs.withdraw_pending(session, [j for _r, j in rows if j is not None], reason))
    return [r for r, j in rows if j in withdrawn]


def pause(session: Session, b: Broadcast, *, actor: Actor) -> Broadcast:
    """Stop sending: no further chunk runs, and queued messages that have not left are held."""
    before = _transition(b, ("sending",), "paused", "pause")
    held = _withdraw(session, b, f"broadcast {b.id} paused")
    for r in held:
        r.status = "held"
    session.flush()
    audit.record(session, actor, workspace_id=b.workspace_id, action="broadcast.pause", entity_type="broadcast",
                 entity_id=b.id, before=before, after={**_shown(b), "held": len(held)})
    return b


def resume(session: Session, b: Broadcast, *, actor: Actor) -> Broadcast:
    """Continue: held messages go again (the same messages, so nobody gets two) and the chunks go on."""
    from siyu.messaging import broadcast_sending

    before = _transition(b, ("paused",), "sending", "resume")
    requeued = broadcast_sending.requeue_held(session, b)
    broadcast_sending.enqueue_chunk(session, b, 0)
    session.flush()
    audit.record(session, actor, workspace_id=b.workspace_id, action="broadcast.resume", entity_type="broadcast",
                 entity_id=b.id, before=before, after={**_shown(b), "requeued": requeued})
    return b


def cancel(session: Session, b: Broadcast, *, actor: Actor) -> Broadcast:
    """Stop for good: nothing more is sent; messages that have not left are skipped as cancelled."""
    before = _transition(b, ("scheduled", "sending", "paused"), "cancelled", "cancel")
    b.finished_at = clock.now()
    stopped = _withdraw(session, b, f"broadcast {b.id} cancelled") + [r for r, _j in _open_messages(session, b, "held")]
    for r in stopped:
        message = channels.get_message(session, r.message_id)
        channels.set_status(session, message, "skipped")
        message.error = "cancelled"
        r.status, r.reason = "skipped", "cancelled"
    session.execute(update(BroadcastRecipient).where(
        BroadcastRecipient.broadcast_id == b.id, BroadcastRecipient.status == "pending",
    ).values(status="skipped", reason="cancelled").execution_options(synchronize_session=False))
    session.flush()
    audit.record(session, actor, workspace_id=b.workspace_id, action="broadcast.cancel", entity_type="broadcast",
                 entity_id=b.id, before=before, after=_shown(b))
    return b
