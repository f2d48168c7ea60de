"""Segments: membership refreshed set-wise with entered/exited events, static lists, the worker's two paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts import segments
from siyu.contacts import service as contacts_service
from siyu.contacts.models import Contact, ContactSettings, ContactTag, Identity, Segment, StaffMember, Tag, TagGroup
from siyu.core import clock, worker
from siyu.core.audit import Actor
from siyu.core.auth import Auth
from siyu.core.errors import Conflict, Invalid
from siyu.core.events import record_events
from siyu.core.models import AuditEntry, Event, Job
from siyu.core.tenancy import bind_workspace

START = datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC)
ACTOR = Actor.cli("pytest")
SHANGHAI = {"all": [{"field": "city", "op": "eq", "value": "Shanghai"}]}
BUYERS = {"all": [{"event": "order.paid", "op": "at_least", "count": 1, "within_days": 30}]}


@pytest.fixture
def frozen() -> clock.FrozenClock:
    c = clock.FrozenClock(START)
    clock.set_clock(c)
    return c


@pytest.fixture
def ws(db: Session, make_workspace, frozen) -> int:
    workspace = make_workspace("Segments")
    bind_workspace(db, workspace.id)
    return workspace.id


def _contacts(db: Session, *cities: str | None) -> list[Contact]:
    rows = [Contact(name=f"c{i}", city=city) for i, city in enumerate(cities)]
    db.add_all(rows)
    db.flush()
    return rows


def _segment_events(db: Session, segment_id: int) -> list[tuple[str, int]]:
    rows = db.execute(
        select(Event.type, Event.contact_id, Event.properties).where(Event.type.like("segment.%")).order_by(Event.id)
    ).all()
    return [(t, c) for t, c, p in rows if p["segment_id"] == segment_id]


def _jobs(db: Session, kind: str) -> list[Job]:
    return list(db.execute(select(Job).where(Job.kind == kind).order_by(Job.id)).scalars())


def test_a_refresh_moves_people_in_and_out_with_one_event_each(db, ws):
    a, b, c = _contacts(db, "Shanghai", "Beijing", "Shanghai")
    segment = segments.create_segment(db, name="Shanghai", kind="dynamic", rule=SHANGHAI, actor=ACTOR)
    result = segments.refresh_segment(db, segment)
    assert (result.entered, result.exited, segment.member_count) == (2, 0, 2)
    assert segment.refreshed_at == START
    assert set(db.execute(segments.segment_contact_ids(db, segment)).scalars()) == {a.id, c.id}

    a.city, b.city = "Hangzhou", "Shanghai"
    db.flush()
    result = segments.refresh_segment(db, segment)
    assert (result.entered, result.exited, segment.member_count) == (1, 1, 2)
    assert _segment_events(db, segment.id) == [
        ("segment.entered", a.id), ("segment.entered", c.id), ("segment.entered", b.id), ("segment.exited", a.id),
    ]
    # Nothing changed: nothing recorded.
    assert segments.refresh_segment(db, segment).entered == 0
    assert len(_segment_events(db, segment.id)) == 4


def test_count_and_preview_answer_for_a_rule_without_saving_it(db, ws):
    _contacts(db, "Shanghai", "Beijing", "Shanghai", None)
    total, sample = segments.preview(db, SHANGHAI, limit=1)
    assert total == 2 == segments.count_matching(db, SHANGHAI)
    assert [c.city for c in sample] == ["Shanghai"]
    with pytest.raises(Invalid) as caught:
        segments.count_matching(db, {"all": [{"field": "colour", "op": "eq", "value": "red"}]})
    assert caught.value.field == "rule.all[0].field"


def test_names_are_unique_and_writes_are_audited(db, ws):
    segment = segments.create_segment(db, name="VIP", kind="dynamic", rule=SHANGHAI, actor=ACTOR)
    with pytest.raises(Conflict):
        segments.create_segment(db, name="VIP", kind="static", actor=ACTOR)
    with pytest.raises(Invalid) as caught:
        segments.create_segment(db, name="x", kind="dynamic", actor=ACTOR)
    assert caught.value.field == "rule"
    segments.update_segment(db, segment, name="Very important", actor=ACTOR)
    actions = db.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[-2:] == ["segment.create", "segment.update"]


def test_a_segment_in_use_by_another_rule_cannot_be_deleted(db, ws):
    inner = segments.create_segment(db, name="inner", kind="dynamic", rule=SHANGHAI, actor=ACTOR)
    outer = segments.create_segment(db, name="outer", kind="dynamic",
                                    rule={"all": [{"segment": inner.id, "op": "in"}]}, actor=ACTOR)
    with pytest.raises(Conflict, match="outer"):
        segments.delete_segment(db, inner, actor=ACTOR)
    segments.delete_segment(db, outer, actor=ACTOR)
    segments.delete_segment(db, inner, actor=ACTOR)
    assert db.execute(select(Segment)).first() is None


def test_a_static_snapshot_stays_put_and_changes_by_hand(db, ws):
    a, b, c = _contacts(db, "Shanghai", "Beijing", "Shanghai")
    db.add(Identity(contact_id=b.id, type="phone", value="+8613800000001"))
    db.add(Identity(contact_id=c.id, type="email", value="c@example.com"))
    db.flush()
    snapshot = segments.create_segment(db, name="Snapshot", kind="static", rule=SHANGHAI, actor=ACTOR)
    assert snapshot.member_count == 2
    with pytest.raises(Conflict):
        segments.refresh_segment(db, snapshot)

    upload = b"phone,email\n138 0000 0001,\n,C@Example.com\n+8613999999999,nobody@example.com\n"
    ids, identities = segments.parse_upload(upload)
    listed = segments.create_segment(db, name="Uploaded", kind="static", actor=ACTOR)
    change = segments.add_members(db, listed, contact_ids=[*ids, a.id, 99999999], identities=identities, actor=ACTOR)
    assert change.added == 3
    assert sorted(change.unknown) == ["99999999", "email:nobody@example.com", "phone:+8613999999999"]
    assert listed.member_count == 3
    removed = segments.remove_members(db, listed, contact_ids=[a.id, b.id], actor=ACTOR)
    assert (removed.removed, listed.member_count) == (2, 1)
    assert _segment_events(db, listed.id)[-2:] == [("segment.exited", a.id), ("segment.exited", b.id)]
    dynamic = segments.create_segment(db, name="Dyn", kind="dynamic", rule=SHANGHAI, actor=ACTOR)
    with pytest.raises(Conflict):
        segments.add_members(db, dynamic, contact_ids=[a.id], actor=ACTOR)


@pytest.mark.parametrize("content", [b"", b"colour\nred\n", b"\xff\xfe"])
def test_an_upload_without_known_columns_is_refused(content):
    with pytest.raises(Invalid) as caught:
        segments.parse_upload(content)
    assert caught.value.field == "file"


def test_a_staff_member_sees_only_their_own_contacts(db, ws, make_user):
    staff_user = make_user(None)
    bind_workspace(db, ws)
    mine = StaffMember(name="Mei", user_id=staff_user.id)
    db.add(mine)
    db.flush()
    own, _other = _contacts(db, "Shanghai", "Shanghai")
    own.owner_id = mine.id
    db.flush()
    auth = Auth(workspace_id=ws, actor=ACTOR, role="staff", user_id=staff_user.id)
    visible = contacts_service.visible_contacts(db, auth)
    assert segments.count_matching(db, SHANGHAI, visible=visible) == 1
    segment = segments.create_segment(db, name="s", kind="dynamic", rule=SHANGHAI, actor=ACTOR)
    segments.refresh_segment(db, segment)
    rows, _ = segments.list_members(db, segment, visible=visible)
    assert [r.id for r in rows] == [own.id]
    assert segments.visible_member_count(db, segment, visible) == 1
    assert contacts_service.visible_contacts(db, Auth(workspace_id=ws, actor=ACTOR, role="operator")) is None


# --- the worker ------------------------------------------------------------------------------------



def _run_due(scope: Any) -> int:
    ran = 0
    while n := worker.run_batch(worker_id="w", sessions=scope, batch_size=50, lease_seconds=60, draw=lambda: 0.0):
        ran += n
    return ran


def _paid(contact_id: int, key: str) -> dict[str, Any]:
    return {"type": "order.paid", "contact_id": contact_id, "idempotency_key": key,
            "properties": {"order_id": key, "amount": 100, "currency": "CNY", "items": [
                {"sku": "tea", "qty": 1, "price": 100}]}}


def test_a_burst_of_relevant_events_makes_one_refresh_at_the_end_of_the_minute(db, ws, frozen, scope):
    (a, b) = _contacts(db, None, None)
    buyers = segments.create_segment(db, name="Buyers", kind="dynamic", rule=BUYERS, actor=ACTOR)
    shanghai = segments.create_segment(db, name="Shanghai", kind="dynamic", rule=SHANGHAI, actor=ACTOR)
    db.commit()
    _run_due(scope)  # the first refreshes, due at creation
    db.expire_all()

    for n in range(5):
        record_events(db, [_paid(a.id, f"o{n}"), _paid(b.id, f"p{n}")])
        frozen.advance(seconds=5)
    record_events(db, [{"type": "page.viewed", "contact_id": a.id}])
    db.commit()
    refreshes = [j for j in _jobs(db, segments.REFRESH) if j.status == "pending"]
    # order.paid is watched by Buyers only; one job for the whole burst, due when the minute ends.
    assert [(j.payload["segment_id"], j.run_at) for j in refreshes] == [
        (buyers.id, datetime(2026, 12, 1, 12, 1, tzinfo=UTC))
    ]
    _run_due(scope)  # other modules' work on these orders (lifecycle) may run; the refresh is not due yet
    assert [j.status for j in _jobs(db, segments.REFRESH) if j.payload["segment_id"] == buyers.id][-1] == "pending"
    frozen.current = datetime(2026, 12, 1, 12, 1, 1, tzinfo=UTC)
    _run_due(scope)
    db.expire_all()
    assert db.get(Segment, buyers.id).member_count == 2
    assert db.get(Segment, shanghai.id).member_count == 0
    assert sorted(c for _, c in _segment_events(db, buyers.id)) == [a.id, b.id]

    # Entering Buyers recorded segment.* events: they trigger nothing for rules that don't name segments.
    assert not [j for j in _jobs(db, segments.REFRESH) if j.status == "pending"]


def test_the_schedule_refreshes_every_n_minutes_so_time_moves_people_out(db, ws, frozen, scope):
    db.add(ContactSettings(segment_refresh_minutes=10))
    (a,) = _contacts(db, None)
    db.add(Event(type="order.paid", occurred_at=START - timedelta(days=29, hours=23), idempotency_key="old",
                 contact_id=a.id, properties={}))
    db.flush()
    buyers = segments.create_segment(db, name="Buyers", kind="dynamic", rule=BUYERS, actor=ACTOR)
    db.commit()
    _run_due(scope)
    db.expire_all()
    assert db.get(Segment, buyers.id).member_count == 1
    ticks = _jobs(db, segments.TICK)
    assert [(t.status, t.run_at) for t in ticks] == [("pending", datetime(2026, 12, 1, 12, 10, tzinfo=UTC))]

    # Two hours later, with no event at all, the order is older than 30 days: the schedule notices.
    frozen.current = datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    _run_due(scope)
    db.expire_all()
    assert db.get(Segment, buyers.id).member_count == 0
    assert _segment_events(db, buyers.id)[-1] == ("segment.exited", a.id)
    pending = [t for t in _jobs(db, segments.TICK) if t.status == "pending"]
    assert [t.run_at for t in pending] == [datetime(2026, 12, 1, 14, 10, tzinfo=UTC)]

    # Without dynamic segments the schedule stops; a new one starts it again.
    segments.delete_segment(db, db.get(Segment, buyers.id), actor=ACTOR)
    db.commit()
    frozen.current = datetime(2026, 12, 1, 14, 10, 1, tzinfo=UTC)
    _run_due(scope)
    db.expire_all()
    assert not [t for t in _jobs(db, segments.TICK) if t.status == "pending"]
    segments.create_segment(db, name="Again", kind="dynamic", rule=BUYERS, actor=ACTOR)
    assert [t for t in _jobs(db, segments.TICK) if t.status == "pending"]


def test_a_rule_broken_by_a_deleted_tag_ends_its_refresh_with_the_reason(db, ws, frozen, scope):
    group = TagGroup(name="g")
    db.add(group)
    db.flush()
    tag = Tag(group_id=group.id, name="t")
    db.add(tag)
    db.flush()
    (a,) = _contacts(db, None)
    db.add(ContactTag(contact_id=a.id, tag_id=tag.id))
    segment = segments.create_segment(db, name="Tagged", kind="dynamic", rule={"all": [{"tag": tag.id, "op": "has"}]},
                                      actor=ACTOR)
    db.delete(tag)
    db.commit()
    _run_due(scope)
    db.expire_all()
    job = _jobs(db, segments.REFRESH)[0]
    assert job.status == "done"
    assert job.result["field"] == "rule.all[0].tag"
    assert db.get(Segment, segment.id).refreshed_at is None
