"""Broadcasts through the real worker: audience frozen once, one message per contact, consent, caps,
quiet hours, pause and resume without a second message, cancel, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from siyu.channels import service as channels
from siyu.contacts import segments
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core import clock, worker
from siyu.core.errors import Conflict, Invalid
from siyu.core.models import Event, Job
from siyu.messaging import broadcast_report, broadcast_sending, broadcasts, caps
from tests.messaging.broadcasts.conftest import ACTOR

# 2026-12-01 10:00 in Shanghai (UTC+8), the workspace's default timezone.
MORNING = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def at_morning():
    c = clock.FrozenClock(MORNING)
    clock.set_clock(c)
    return c


def _new(db, account, segment, text="{{ nickname }}，新茶上市", **kw):
    return broadcasts.create_broadcast(db, name=kw.pop("name", "New tea"), account_id=account.id,
                                       segment_id=segment.id, content={"type": "text", "text": text},
                                       actor=ACTOR, **kw)


def _step(db, scope, n=1):
    """Run the n next due jobs one at a time (a worker with a batch of one)."""
    db.flush()
    for _ in range(n):
        worker.run_batch(worker_id="t", sessions=scope, batch_size=1, lease_seconds=60, draw=lambda: 0.0)
    db.expire_all()


def test_send_now_gives_each_contact_one_personal_message_and_finishes(db, account, adapter, audience, run_jobs,
                                                                       at_morning):
    segment, ids = audience(3)
    b = broadcasts.schedule(db, _new(db, account, segment), at=None, actor=ACTOR)
    assert b.status == "scheduled"
    run_jobs()
    run_jobs()

    assert adapter.sent_to() == sorted(ids)
    assert sorted(c["text"] for _a, c in adapter.sent) == ["N0，新茶上市", "N1，新茶上市", "N2，新茶上市"]
    b = broadcasts.get_broadcast(db, b.id)
    assert (b.status, b.audience_count, b.processed_count) == ("done", 3, 3)
    counts = broadcast_report.status_counts(db, b)
    assert counts["sent"] == 3
    assert sum(counts.values()) == 3
    series = broadcast_report.over_time(db, b, broadcasts.workspace_tz(db))
    assert (series.labels, series.sent, series.clicked) == (["10:00"], [3], [0])  # local time, Shanghai
    types = db.execute(select(Event.type).where(Event.type.like("broadcast.%")).order_by(Event.id)).scalars().all()
    assert types == ["broadcast.started", "broadcast.finished"]
    keys = db.execute(select(Message.idempotency_key).where(Message.origin == f"broadcast:{b.id}")).scalars()
    assert sorted(keys) == sorted(f"broadcast:{b.id}:{i}" for i in ids)


def test_the_audience_is_frozen_when_sending_starts(db, account, adapter, audience, run_jobs, at_morning):
    segment, ids = audience(2)
    b = broadcasts.schedule(db, _new(db, account, segment), at="2026-12-01T11:00", actor=ACTOR)
    assert b.scheduled_at == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 11:00 Shanghai
    late = contacts.create_contact(db, fields={"name": "late"}, actor=ACTOR)
    contacts.set_consent(db, late, channel="sms", status="granted", source="t", actor=None)
    segments.add_members(db, segment, contact_ids=[late.id], actor=ACTOR)
    run_jobs()
    assert adapter.sent == []  # not due yet
    at_morning.advance(hours=1)
    run_jobs()
    after = contacts.create_contact(db, fields={"name": "after"}, actor=ACTOR)
    segments.add_members(db, segment, contact_ids=[after.id], actor=ACTOR)
    run_jobs()
    assert adapter.sent_to() == sorted([*ids, late.id])


def test_without_consent_a_recipient_is_skipped_with_the_reason(db, account, adapter, audience, run_jobs, at_morning):
    segment, ids = audience(2, consent=False)
    b = broadcasts.schedule(db, _new(db, account, segment), at=None, actor=ACTOR)
    run_jobs()
    rows, _ = broadcast_report.list_recipients(db, b, status="skipped")
    assert sorted((r.contact_id, r.reason) for r, _m in rows) == [(i, "consent:no_opt_in") for i in ids]
    assert adapter.sent == []


def test_a_cap_skips_with_the_period_and_quiet_hours_defer_to_their_end(db, account, adapter, audience, run_jobs,
                                                                        at_morning):
    segment, _ids = audience(2)
    caps.update_settings(db, caps={"bcast": {"day": 1}}, quiet_start="21:00", quiet_end="09:00", actor=ACTOR)
    first = broadcasts.schedule(db, _new(db, account, segment, name="one"), at=None, actor=ACTOR)
    run_jobs()
    second = broadcasts.schedule(db, _new(db, account, segment, name="two"), at=None, actor=ACTOR)
    run_jobs()
    assert broadcast_report.status_counts(db, second)["skipped"] == 2
    assert {r.reason for r, _m in broadcast_report.list_recipients(db, second)[0]} == {"cap:day"}

    at_morning.advance(hours=12)  # 22:00 in Shanghai: quiet, and a new day tomorrow
    third = broadcasts.schedule(db, _new(db, account, segment, name="three"), at=None, actor=ACTOR)
    run_jobs()
    rows, _ = broadcast_report.list_recipients(db, third)
    nine = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    assert {(r.status, r.planned_at) for r, _m in rows} == {("queued", nine)}
    assert len(adapter.sent) == 2
    at_morning.advance(hours=11)
    run_jobs()
    assert len(adapter.sent) == 4
    assert first.id != third.id


def test_pause_holds_what_has_not_left_and_resume_sends_nobody_twice(db, account, adapter, audience, scope,
                                                                       run_jobs, at_morning, monkeypatch):
    monkeypatch.setattr(broadcast_sending, "CHUNK_SIZE", 2)
    segment, ids = audience(5)
    b = broadcasts.schedule(db, _new(db, account, segment), at=None, actor=ACTOR)
    _step(db, scope, 2)  # start, then the first chunk of two
    _step(db, scope, 1)  # one deliver job: one message has left
    assert len(adapter.sent) == 1
    broadcasts.pause(db, broadcasts.get_broadcast(db, b.id), actor=ACTOR)
    run_jobs()
    assert len(adapter.sent) == 1
    counts = broadcast_report.status_counts(db, b)
    assert (counts["sent"], counts["held"], counts["pending"]) == (1, 1, 3)

    with pytest.raises(Conflict):
        broadcasts.pause(db, broadcasts.get_broadcast(db, b.id), actor=ACTOR)
    broadcasts.resume(db, broadcasts.get_broadcast(db, b.id), actor=ACTOR)
    run_jobs()
    run_jobs()
    assert adapter.sent_to() == sorted(ids)
    assert broadcasts.get_broadcast(db, b.id).status == "done"
    per_contact = db.execute(select(Message.contact_id, func.count()).where(Message.origin == f"broadcast:{b.id}")
                             .group_by(Message.contact_id)).all()
    assert sorted(per_contact) == [(i, 1) for i in ids]


def test_cancel_stops_everything_not_yet_sent(db, account, adapter, audience, scope, run_jobs, at_morning,
                                              monkeypatch):
    monkeypatch.setattr(broadcast_sending, "CHUNK_SIZE", 2)
    segment, _ids = audience(4)
    b = broadcasts.schedule(db, _new(db, account, segment), at=None, actor=ACTOR)
    _step(db, scope, 2)
    broadcasts.cancel(db, broadcasts.get_broadcast(db, b.id), actor=ACTOR)
    run_jobs()
    assert adapter.sent == []
    counts = broadcast_report.status_counts(db, b)
    assert counts["skipped"] == 4
    waiting = select(func.count()).select_from(Job).where(Job.status == "pending", Job.kind.like("channels.%"))
    assert db.execute(waiting).scalar_one() == 0


def test_a_failed_send_is_reported_with_its_reason(db, account, adapter, audience, run_jobs, at_morning):
    from siyu.channels.base import ChannelError

    segment, _ids = audience(1)
    adapter.fail_with = [ChannelError("40003", "invalid address")]
    b = broadcasts.schedule(db, _new(db, account, segment), at=None, actor=ACTOR)
    run_jobs()
    assert broadcast_report.status_counts(db, b)["failed"] == 1
    assert broadcast_report.reasons(db, b) == [("failed", "40003: invalid address", 1)]


def test_bad_input_is_refused_by_field(db, account, audience, at_morning):
    segment, _ = audience(1)
    with pytest.raises(Invalid) as bad_field:
        _new(db, account, segment, text="{{ secret_sauce }}")
    assert bad_field.value.field == "content.text"
    with pytest.raises(Invalid) as empty:
        _new(db, account, segment, text="  ")
    assert empty.value.field == "content.text"
    b = _new(db, account, segment)
    with pytest.raises(Invalid) as past:
        broadcasts.schedule(db, b, at="2026-11-30T10:00", actor=ACTOR)
    assert past.value.field == "scheduled_at"
    with pytest.raises(Invalid):
        broadcasts.schedule(db, b, at="tomorrow", actor=ACTOR)
    assert broadcasts.get_broadcast(db, b.id).status == "draft"


def test_send_time_optimisation_sends_at_the_contacts_own_hour(db, ws, account, adapter, audience, run_jobs,
                                                              at_morning):
    from siyu.core.events import record_event

    segment, (evening, quiet) = audience(2)
    for day in range(1, 4):  # 20:00 Shanghai on three evenings
        record_event(db, type="message.opened", contact_id=evening,
                     occurred_at=MORNING - timedelta(days=day, hours=-10), idempotency_key=f"o{day}")
    b = broadcasts.schedule(db, _new(db, account, segment, optimise_send_time=True), at=None, actor=ACTOR)
    run_jobs()
    rows = {r.contact_id: r for r, _m in broadcast_report.list_recipients(db, b)[0]}
    assert rows[evening].planned_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 20:00 today
    assert rows[evening].note == {"source": "own", "bucket": "evening", "hour": 20, "engaged": 3, "of": 3}
    # No history of their own: the workspace's best hour, learned from everyone's engagement.
    assert (rows[quiet].note["source"], rows[quiet].note["bucket"]) == ("workspace", "evening")
    assert rows[quiet].planned_at == rows[evening].planned_at


def test_an_account_deleted_while_sending_stops_the_broadcast_with_the_reason(db, account, adapter, audience, scope,
                                                                             run_jobs, at_morning):
    segment, _ids = audience(2)
    b = broadcasts.schedule(db, _new(db, account, segment), at=None, actor=ACTOR)
    _step(db, scope, 1)  # the start: the audience is frozen
    channels.delete_account(db, channels.get_account(db, account.id), actor=ACTOR)
    run_jobs()
    b = broadcasts.get_broadcast(db, b.id)
    assert (b.status, b.plan["error"]) == ("cancelled", "account_deleted")
    assert adapter.sent == []


def test_the_platforms_monthly_limit_and_rate_are_respected(db, account, adapter, audience, run_jobs, at_morning):
    from siyu.channels.base import PlatformRules

    adapter.rules = PlatformRules(identity_type="contact_id", consent_channel="sms", per_minute=30,
                                  marketing_per_month=1, content_types=("text",))
    segment, _ids = audience(3)
    first = broadcasts.schedule(db, _new(db, account, segment, name="one"), at=None, actor=ACTOR)
    run_jobs()
    planned = sorted(r.planned_at for r, _m in broadcast_report.list_recipients(db, first)[0])
    assert [(t - MORNING).total_seconds() for t in planned] == [0, 2, 4]  # 30 a minute: one every 2 s
    at_morning.advance(days=1)
    second = broadcasts.schedule(db, _new(db, account, segment, name="two"), at=None, actor=ACTOR)
    run_jobs()
    assert {r.reason for r, _m in broadcast_report.list_recipients(db, second)[0]} == {"platform:month"}
