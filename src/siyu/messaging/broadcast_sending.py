"""The worker's side of broadcasts: start (freeze the audience), chunks (plan and queue each message),
finish (done once every message has left). All three are database-only jobs: each commits exactly
once together with its work, and the chain of chunk jobs is named by `Broadcast.chunk_seq`, which a
pause, a resume or a cancel moves on, so a chunk job of an older chain stops at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import adapter_for
from siyu.contacts import segments
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core import clock, faults, jobs
from siyu.core.db import any_of
from siyu.core.errors import Invalid
from siyu.core.events import record_event
from siyu.core.models import Job
from siyu.core.tenancy import parse_id
from siyu.messaging import caps as caps_service
from siyu.messaging import content as shapes
from siyu.messaging import links, send_time, templates
from siyu.messaging.broadcast_models import Broadcast, BroadcastLink, BroadcastRecipient
from siyu.messaging.broadcasts import CHUNK, FINISH, START, workspace_tz

CHUNK_SIZE = 500
FINISH_CHECK_SECONDS = 60
COUNTED = ("queued", "sending", "sent", "delivered", "opened", "clicked")


def enqueue_chunk(session: Session, b: Broadcast, n: int) -> None:
    """Queue the n-th chunk job of the broadcast's live chain."""
    jobs.enqueue(session, CHUNK, f"broadcast:{b.id}:chunk:{b.chunk_seq}:{n}",
                 {"broadcast_id": b.id, "seq": b.chunk_seq, "n": n})


def _enqueue_finish(session: Session, b: Broadcast, n: int, at: datetime) -> None:
    jobs.enqueue(session, FINISH, f"broadcast:{b.id}:finish:{b.chunk_seq}:{n}",
                 {"broadcast_id": b.id, "seq": b.chunk_seq, "n": n}, run_at=at)


def _live(session: Session, ctx: jobs.JobContext, status: str) -> Broadcast | None:
    """The job's broadcast if it is in `status` and the job belongs to its live chain."""
    # Locked: a pause or cancel committing meanwhile waits for this job's messages, then withdraws them.
    b = session.get(Broadcast, parse_id(ctx.payload["broadcast_id"], "broadcast"), with_for_update=True)
    if b is None or b.status != status or b.chunk_seq != ctx.payload.get("seq"):
        return None
    return b


def _stop(session: Session, b: Broadcast, error: str) -> dict[str, Any]:
    b.status, b.finished_at = "cancelled", clock.now()
    b.plan = {**b.plan, "error": error}
    session.flush()
    return {"cancelled": error}


def start_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Freeze the audience and start the chunk chain."""
    b = _live(session, ctx, "scheduled")
    if b is None:
        return {"skipped": "not scheduled"}
    if b.account_id is None or b.segment_id is None:
        return _stop(session, b, "account_deleted" if b.account_id is None else "segment_deleted")
    account = channels.get_account(session, b.account_id)
    adapter = adapter_for(account.kind)
    if adapter is None:
        return _stop(session, b, "channel_unavailable")
    segment = segments.get_segment(session, b.segment_id)
    if segment.kind == "dynamic":
        segments.refresh_segment(session, segment)
    now = clock.now()
    members = segments.segment_contact_ids(session, segment).order_by(None).subquery()
    session.execute(insert(BroadcastRecipient).from_select(
        ["workspace_id", "broadcast_id", "contact_id", "status"],
        select(literal(b.workspace_id), literal(b.id), members.c.contact_id, literal("pending"))))
    b.audience_count = int(session.execute(select(func.count()).where(
        BroadcastRecipient.broadcast_id == b.id)).scalar_one())
    tz = workspace_tz(session)
    rules = adapter.rules
    interval = max(60 / rules.per_minute if rules.per_minute else 0.0, 3600 / rules.per_hour if rules.per_hour else 0.0)
    preference = send_time.workspace_preference(session, tz, now) if b.optimise_send_time else None
    b.plan = {"interval": interval, "slots": 0, "platform_month": rules.marketing_per_month,
              "preference": preference.__dict__ if preference else None}
    b.status, b.started_at = "sending", now
    record_event(session, type="broadcast.started", occurred_at=now, idempotency_key=f"broadcast:{b.id}:started",
                 properties={"broadcast_id": b.id, "audience": b.audience_count, "account_id": b.account_id,
                             "segment_id": b.segment_id}, source="messaging")
    enqueue_chunk(session, b, 0)
    session.flush()
    return {"audience": b.audience_count}


def _history(session: Session, contact_ids: list[int], kind: str, since: datetime) -> dict[int, list[datetime]]:
    """Each contact's marketing messages on this channel kind since `since` (their send or queue time)."""
    when = func.coalesce(Message.sent_at, Message.created_at)
    rows = session.execute(select(Message.contact_id, when).where(
        any_of(session, Message.contact_id, contact_ids), Message.direction == "out", Message.purpose == "marketing",
        Message.channel == kind, Message.status.in_(COUNTED), when >= since))
    found: dict[int, list[datetime]] = {}
    for contact_id, at in rows:
        if contact_id is not None:
            found.setdefault(int(contact_id), []).append(at)
    return found


def process_chunk(session: Session, b: Broadcast, *, limit: int | None = None) -> int:
    """Plan and queue the next `limit` pending recipients; how many were processed."""
    rows = session.execute(select(BroadcastRecipient).where(
        BroadcastRecipient.broadcast_id == b.id, BroadcastRecipient.status == "pending",
    ).order_by(BroadcastRecipient.id).limit(limit or CHUNK_SIZE)).scalars().all()
    if not rows:
        return 0
    account = channels.get_account(session, b.account_id)
    tz = workspace_tz(session)
    settings = caps_service.get_settings(session)
    limits: dict[str, int | None] = {**caps_service.caps_for(settings, account.kind),
                                     "platform_month": b.plan.get("platform_month")}
    quiet = (caps_service.parse_clock(settings.quiet_start, "quiet_start"),
             caps_service.parse_clock(settings.quiet_end, "quiet_end"))
    now = clock.now()
    start = max(now, b.started_at or now)
    ids = [r.contact_id for r in rows]
    horizon = start + timedelta(hours=b.window_hours + 24)
    history = _history(session, ids, account.kind, caps_service.earliest_window_start((start, horizon), tz))
    learned = send_time.histories(session, ids, now - timedelta(days=send_time.LOOKBACK_DAYS)) \
        if b.optimise_send_time else {}
    fallback = send_time.preference_from(b.plan.get("preference"))
    interval, slots = float(b.plan.get("interval") or 0), int(b.plan.get("slots") or 0)
    planned: list[tuple[BroadcastRecipient, datetime | None]] = []
    for r in rows:
        at = start
        if interval:
            at = max(at, (b.started_at or now) + timedelta(seconds=slots * interval))
        if b.optimise_send_time:
            own = send_time.learn(learned.get(r.contact_id, ()), tz)
            at, r.note = send_time.plan(at, b.window_hours, own, fallback, tz)
        at = caps_service.after_quiet_hours(at, quiet[0], quiet[1], tz)
        r.planned_at = at
        verdict = caps_service.cap_verdict(history.get(r.contact_id, ()), at, limits, tz)
        if verdict is not None:
            r.status, r.reason = "skipped", verdict
            continue
        planned.append((r, at if at > now else None))
        slots += 1
    _queue(session, b, account, planned)
    b.processed_count += len(rows)
    b.plan = {**b.plan, "slots": slots}
    session.flush()
    return len(rows)


def _queue(
    session: Session, b: Broadcast, account: Any, planned: list[tuple[BroadcastRecipient, datetime | None]],
) -> None:
    """Render each planned recipient's message and queue them all at once (`channels.queue_sends`)."""
    people = contacts.get_contacts(session, [r.contact_id for r, _at in planned])
    items: list[channels.Outgoing] = []
    sending: list[tuple[BroadcastRecipient, dict[str, str]]] = []
    for i, (r, at) in enumerate(planned):
        if i == len(planned) // 2:
            faults.fault("broadcasts.mid_chunk")
        contact = people.get(r.contact_id)
        if contact is None:
            r.status, r.reason = "skipped", "contact_deleted"
            continue
        try:
            content = shapes.render(b.content, templates.contact_context(session, contact))
        except Invalid as exc:
            r.status, r.reason = "skipped", f"template: {exc.message}"[:200]
            continue
        codes = {url: links.new_code() for url in links.links_in(content)}
        items.append(channels.Outgoing(
            contact_id=r.contact_id, content=links.rewrite(content, codes), origin=f"broadcast:{b.id}",
            idempotency_key=f"broadcast:{b.id}:{r.contact_id}", purpose="marketing", run_at=at))
        sending.append((r, codes))
    messages = channels.queue_sends(session, account=account, items=items)
    for (r, codes), message in zip(sending, messages, strict=True):
        if message is None:  # deleted since we read it
            r.status, r.reason = "skipped", "contact_deleted"
            continue
        if codes and message.status == "queued":
            session.add_all([BroadcastLink(code=code, broadcast_id=b.id, contact_id=r.contact_id,
                                           message_id=message.id, url=url) for url, code in codes.items()])
        r.message_id = message.id
        if message.status == "skipped":
            r.status, r.reason = "skipped", message.error
        else:
            r.status = "queued"


def chunk_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """One chunk of a sending broadcast, then the next chunk (or the finish check)."""
    b = _live(session, ctx, "sending")
    if b is None:
        return {"skipped": "not sending"}
    if b.account_id is None:
        return _stop(session, b, "account_deleted")
    done = process_chunk(session, b)
    n = int(ctx.payload.get("n", 0))
    if done:
        enqueue_chunk(session, b, n + 1)
    else:
        _enqueue_finish(session, b, 0, clock.now())
    return {"processed": done}


def _unsent(session: Session, b: Broadcast) -> int:
    """Messages of the broadcast still waiting for a worker (or in one's hands)."""
    return int(session.execute(select(func.count()).select_from(BroadcastRecipient)
                               .join(Message, Message.id == BroadcastRecipient.message_id)
                               .join(Job, Job.id == Message.job_id)
                               .where(BroadcastRecipient.broadcast_id == b.id,
                                      Message.status.in_(("queued", "sending")),
                                      Job.status.in_((jobs.PENDING, jobs.RUNNING)))).scalar_one())


def finish_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Mark the broadcast done once no message is left to send; else look again a minute later."""
    b = _live(session, ctx, "sending")
    if b is None:
        return {"skipped": "not sending"}
    waiting = _unsent(session, b)
    if waiting:
        _enqueue_finish(session, b, int(ctx.payload.get("n", 0)) + 1,
                        clock.now() + timedelta(seconds=FINISH_CHECK_SECONDS))
        return {"waiting": waiting}
    from siyu.messaging.broadcast_report import status_counts

    counts = status_counts(session, b)
    b.status, b.finished_at = "done", clock.now()
    record_event(session, type="broadcast.finished", occurred_at=b.finished_at, source="messaging",
                 idempotency_key=f"broadcast:{b.id}:finished", properties={"broadcast_id": b.id, **counts})
    session.flush()
    return {"done": counts}


def requeue_held(session: Session, b: Broadcast) -> int:
    """Queue the held messages of a resumed broadcast again (the same rows: nobody gets a second one)."""
    held = session.execute(select(BroadcastRecipient, Message).join(
        Message, Message.id == BroadcastRecipient.message_id).where(
        BroadcastRecipient.broadcast_id == b.id, BroadcastRecipient.status == "held")).all()
    if not held:
        return 0
    account = channels.get_account(session, b.account_id)
    adapter = adapter_for(account.kind)
    kind = channels.DELIVER_IDEMPOTENT if adapter is not None and adapter.accepts_idempotency_key else channels.DELIVER
    settings = caps_service.get_settings(session)
    quiet = (caps_service.parse_clock(settings.quiet_start, "quiet_start"),
             caps_service.parse_clock(settings.quiet_end, "quiet_end"))
    tz, now = workspace_tz(session), clock.now()
    for r, message in held:
        at = caps_service.after_quiet_hours(max(now, r.planned_at or now), quiet[0], quiet[1], tz)
        key = f"msg:{message.id}:resume:{b.chunk_seq}"
        jobs.enqueue(session, kind, key, {"message_id": message.id}, run_at=at)
        job = jobs.get_job(session, kind, key)
        message.job_id = job.id if job is not None else None
        r.status, r.planned_at = "queued", at
    session.flush()
    return len(held)


jobs.handler(START)(start_job)
jobs.handler(CHUNK)(chunk_job)
jobs.handler(FINISH)(finish_job)
