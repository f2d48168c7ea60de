"""Deleting a contact forgets the person: their rows go, their events stay anonymised for the figures."""

from __future__ import annotations

from sqlalchemy import func, select

from siyu.contacts import service
from siyu.contacts.models import (
    Consent,
    Contact,
    ContactTag,
    Identity,
    MergeProposal,
    MergeRecord,
    Note,
    Segment,
    SegmentMember,
    Tag,
    TagGroup,
)
from siyu.core import events
from siyu.core.models import AuditEntry, Event
from tests.contacts.conftest import ACTOR


def count(db, model, *where) -> int:
    return db.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_deleting_a_contact_removes_its_rows_and_anonymises_its_events(db, ws):
    person = service.create_contact(db, fields={"name": "Lin Mei", "email": "lin@example.com"},
                                    identities=[("phone", "13800000042")], actor=ACTOR)
    other = service.create_contact(db, fields={"name": "Other"}, identities=[("openid", "o-other")], actor=ACTOR)
    group = TagGroup(name="interest")
    db.add(group)
    db.flush()
    tag = Tag(group_id=group.id, name="tea")
    segment = Segment(name="fans", kind="static")
    db.add_all([tag, segment])
    db.flush()
    db.add_all([ContactTag(contact_id=person.id, tag_id=tag.id),
                SegmentMember(segment_id=segment.id, contact_id=person.id)])
    service.set_consent(db, person, channel="sms", status="granted", source="form", proof="ip 10.0.0.7",
                        actor=ACTOR)
    service.add_note(db, person, body="prefers oolong", actor=ACTOR)
    stored = events.record_events(db, [
        {"type": "order.paid", "identity": {"type": "phone", "value": "13800000042"}, "idempotency_key": "o1",
         "properties": {"order_id": "o1", "amount": 5000, "currency": "CNY",
                        "items": [{"sku": "TEA", "qty": 1, "price": 5000}]}},
    ])
    assert stored.errors == []
    events.record_event(db, type="page.viewed", contact_id=other.id)
    pid = person.id
    mine = [e.id for e in db.execute(select(Event).where(Event.contact_id == pid)).scalars()]

    service.delete_contact(db, person, actor=ACTOR)

    db.expire_all()
    assert db.get(Contact, pid) is None
    for model in (Identity, ContactTag, SegmentMember, Consent, Note):
        assert count(db, model, model.contact_id == pid) == 0, model
    # The events stay (revenue still counts) but lead to nobody.
    kept = db.execute(select(Event).where(Event.id.in_(mine))).scalars().all()
    assert len(kept) == len(mine) >= 4
    assert {(e.contact_id, e.identity_type, e.identity_value) for e in kept} == {(None, None, None)}
    paid = next(e for e in kept if e.type == "order.paid")
    assert paid.properties["amount"] == 5000
    consent = next(e for e in kept if e.type == "consent.granted")
    assert "proof" not in consent.properties
    assert count(db, Event, Event.contact_id == other.id) == 2  # someone else's events are untouched
    (deleted,) = db.execute(select(Event).where(Event.type == "contact.deleted")).scalars().all()
    assert (deleted.contact_id, deleted.properties) == (None, {"contact_id": pid})
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "contact.delete")).scalar_one()
    assert "Lin Mei" not in str(entry.before)
    assert "lin@example.com" not in str(entry.before)
    assert entry.before["id"] == pid


def test_deleting_a_contact_clears_merge_snapshots_and_settles_its_proposals(db, ws):
    keeper = service.create_contact(db, fields={"name": "Keeper"}, identities=[("openid", "k")], actor=ACTOR)
    merged = service.create_contact(db, fields={"name": "Twin"}, identities=[("phone", "13800000043")],
                                    actor=ACTOR)
    service.merge_contacts(db, keeper, merged, actor=ACTOR, automatic=True, identity=("phone", "13800000043"))
    a = service.create_contact(db, identities=[("custom:card", "a")], actor=ACTOR)
    b = service.create_contact(db, identities=[("custom:card", "b")], actor=ACTOR)
    service.upsert_contact(db, identities=[("openid", "k"), ("custom:card", "a")], actor=ACTOR)
    service.upsert_contact(db, identities=[("openid", "k"), ("custom:card", "b")], actor=ACTOR)
    pending, rejected = db.execute(select(MergeProposal).order_by(MergeProposal.id)).scalars().all()
    service.reject_merge_proposal(db, rejected, actor=ACTOR)
    pending_id = pending.id

    service.delete_contact(db, keeper, actor=ACTOR)

    db.expire_all()
    record = db.execute(select(MergeRecord)).scalar_one()
    assert (record.keeper_id, record.merged_snapshot, record.identity_value) == (None, {}, None)
    assert record.identity_type == "phone"
    assert db.get(MergeProposal, pending_id) is None
    kept = db.get(MergeProposal, rejected.id)
    assert kept.status == "rejected"
    assert {kept.contact_a_id, kept.contact_b_id} == {None, b.id}
    assert a.id
