"""Merging contacts: automatic for one-person keys, proposed otherwise; the keeper keeps everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
from siyu.core import clock, events, jobs
from siyu.core.errors import Conflict, Invalid
from siyu.core.models import Event, Job
from tests.contacts.conftest import ACTOR


def count(db, model, *where) -> int:
    return db.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def at(minutes: int) -> None:
    clock.set_clock(lambda: datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=minutes))


def test_upsert_joining_two_contacts_by_one_person_keys_merges_into_the_older(db, ws):
    at(0)
    old = service.create_contact(db, fields={"name": "Old", "city": None}, identities=[("phone", "13800000020")],
                                 actor=ACTOR)
    at(5)
    new = service.create_contact(db, fields={"name": "New", "city": "成都"}, identities=[("email", "n@example.com")],
                                 actor=ACTOR)
    new_id = new.id
    events.record_event(db, type="page.viewed", contact_id=new_id)

    contact, created = service.upsert_contact(
        db, identities=[("email", "n@example.com"), ("phone", "13800000020")], actor=ACTOR
    )

    assert not created
    assert contact.id == old.id
    assert contact.name == "Old"  # keeper's non-empty value wins
    assert contact.city == "成都"  # keeper's empty value is filled
    assert db.get(Contact, new_id) is None
    assert count(db, Identity, Identity.contact_id == old.id) == 2
    assert count(db, Event, Event.contact_id == new_id) == 0
    record = db.execute(select(MergeRecord)).scalar_one()
    assert (record.keeper_id, record.merged_id, record.automatic) == (old.id, new_id, True)
    assert record.merged_snapshot["contact"]["name"] == "New"
    assert {"type": "email", "value": "n@example.com"} in record.merged_snapshot["identities"]
    merged_event = db.execute(select(Event).where(Event.type == "contact.merged")).scalar_one()
    assert merged_event.properties["keeper"] == old.id
    assert merged_event.properties["merged"] == new_id


def test_contacts_joined_by_other_keys_get_a_proposal_a_person_accepts_or_rejects(db, ws):
    at(0)
    a = service.create_contact(db, fields={"name": "A"}, identities=[("openid", "oa")], actor=ACTOR)
    at(1)
    b = service.create_contact(db, fields={"name": "B"}, identities=[("custom:member", "m1")], actor=ACTOR)

    contact, _ = service.upsert_contact(db, identities=[("openid", "oa"), ("custom:member", "m1")], actor=ACTOR)
    service.upsert_contact(db, identities=[("openid", "oa"), ("custom:member", "m1")], actor=ACTOR)

    assert contact.id == a.id
    assert count(db, Contact) == 2
    proposals, _ = service.list_merge_proposals(db)
    assert len(proposals) == 1
    proposal = proposals[0]
    assert (proposal.contact_a_id, proposal.contact_b_id) == (a.id, b.id)

    record = service.accept_merge_proposal(db, proposal, actor=ACTOR)

    assert (record.keeper_id, record.automatic) == (a.id, False)
    assert count(db, Contact) == 1
    # The proposal stays as history: accepted, naming the keeper and the merge it led to.
    assert service.list_merge_proposals(db)[0] == []
    (accepted,), _ = service.list_merge_proposals(db, status="accepted")
    db.expire(accepted)
    assert (accepted.id, accepted.contact_a_id, accepted.contact_b_id) == (proposal.id, a.id, None)
    assert (accepted.merge_id, accepted.decided_at is not None) == (record.id, True)


def test_a_rejected_proposal_is_not_made_again(db, ws):
    a = service.create_contact(db, identities=[("openid", "x")], actor=ACTOR)
    service.create_contact(db, identities=[("custom:card", "c")], actor=ACTOR)
    service.upsert_contact(db, identities=[("openid", "x"), ("custom:card", "c")], actor=ACTOR)
    (proposal,), _ = service.list_merge_proposals(db)

    service.reject_merge_proposal(db, proposal, actor=ACTOR)
    service.upsert_contact(db, identities=[("openid", "x"), ("custom:card", "c")], actor=ACTOR)

    assert service.list_merge_proposals(db)[0] == []
    assert [p.status for p in service.list_merge_proposals(db, status="rejected")[0]] == ["rejected"]
    with pytest.raises(Conflict):
        service.accept_merge_proposal(db, proposal, actor=ACTOR)
    assert count(db, Contact) == 2
    assert a.id


def _tag(db, name: str) -> int:
    group = db.execute(select(TagGroup).where(TagGroup.name == "g")).scalar_one_or_none()
    if group is None:
        group = TagGroup(name="g")
        db.add(group)
        db.flush()
    tag = Tag(group_id=group.id, name=name)
    db.add(tag)
    db.flush()
    return tag.id


def test_merge_moves_tags_consent_notes_segments_and_keeps_the_owner(db, ws):
    at(0)
    keeper = service.create_contact(db, fields={"name": "K"}, identities=[("openid", "k")], actor=ACTOR)
    at(1)
    merged = service.create_contact(db, fields={"name": "M"}, identities=[("openid", "m")], actor=ACTOR)
    shared, only_merged = _tag(db, "vip"), _tag(db, "tea")
    segment = Segment(name="s", kind="static")
    db.add(segment)
    db.flush()
    db.add_all([
        ContactTag(contact_id=keeper.id, tag_id=shared), ContactTag(contact_id=merged.id, tag_id=shared),
        ContactTag(contact_id=merged.id, tag_id=only_merged),
        SegmentMember(segment_id=segment.id, contact_id=keeper.id),
        SegmentMember(segment_id=segment.id, contact_id=merged.id),
    ])
    at(2)
    service.set_consent(db, keeper, channel="sms", status="granted", source="form", actor=ACTOR)
    at(3)
    service.set_consent(db, merged, channel="sms", status="withdrawn", source="TD reply", actor=ACTOR)
    service.set_consent(db, merged, channel="email", status="granted", source="newsletter", actor=ACTOR)
    at(4)
    service.set_consent(db, keeper, channel="wecom", status="withdrawn", source="deleted", actor=ACTOR)
    at(5)
    service.set_consent(db, merged, channel="wecom", status="granted", source="added", actor=ACTOR)
    service.add_note(db, merged, body="likes oolong", actor=ACTOR)

    service.merge_contacts(db, keeper, merged, actor=ACTOR, automatic=False)

    tags = db.execute(select(ContactTag.tag_id).where(ContactTag.contact_id == keeper.id)).scalars().all()
    assert sorted(tags) == sorted([shared, only_merged])
    assert count(db, SegmentMember) == 1
    consents = {c.channel: c.status for c in service.list_consents(db, keeper)}
    assert consents == {"sms": "withdrawn", "email": "granted", "wecom": "withdrawn"}
    assert count(db, Consent) == 3
    assert [n.body for n in db.execute(select(Note)).scalars()] == ["likes oolong"]
    with pytest.raises(Invalid):
        service.merge_contacts(db, keeper, keeper, actor=ACTOR, automatic=False)


def test_a_contact_merged_subscriber_hears_of_the_merge(db, ws):
    heard: list[dict] = []

    @events.on_event("contact.merged", "test.contact_merged")
    def move_rows(session, event):
        heard.append(dict(event.properties))

    try:
        keeper = service.create_contact(db, identities=[("openid", "k2")], actor=ACTOR)
        merged = service.create_contact(db, identities=[("openid", "m2")], actor=ACTOR)
        merged_id = merged.id
        service.merge_contacts(db, keeper, merged, actor=ACTOR, automatic=False)
        job = db.execute(select(Job).where(Job.kind == events.DISPATCH)).scalars().all()
        (mine,) = [j for j in job if j.payload["subscriber"] == "test.contact_merged"]
        ctx = jobs.JobContext(job_id=mine.id, workspace_id=ws.id, kind=mine.kind,
                              idempotency_key=mine.idempotency_key, attempt=1, payload=mine.payload)
        events.dispatch_event(db, ctx)
    finally:
        events.remove_subscriber("test.contact_merged")

    assert heard == [{"keeper": keeper.id, "merged": merged_id, "automatic": False,
                      "merge_id": heard[0]["merge_id"]}]


FIELD_VALUES = st.one_of(st.none(), st.just(""), st.sampled_from(["Ann", "Bo", "李"]))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(
    keeper_fields=st.fixed_dictionaries({"name": FIELD_VALUES, "nickname": FIELD_VALUES, "city": FIELD_VALUES}),
    merged_fields=st.fixed_dictionaries({"name": FIELD_VALUES, "nickname": FIELD_VALUES, "city": FIELD_VALUES}),
    keeper_events=st.integers(0, 3),
    merged_events=st.integers(0, 3),
)
def test_merge_property_keeper_non_empty_wins_rows_move_and_one_contact_goes(
    db, ws, keeper_fields, merged_fields, keeper_events, merged_events
):
    with db.begin_nested() as savepoint:
        keeper = service.create_contact(db, fields=keeper_fields, identities=[("openid", "pk")], actor=ACTOR)
        merged = service.create_contact(db, fields=merged_fields, identities=[("openid", "pm")], actor=ACTOR)
        for contact, n in ((keeper, keeper_events), (merged, merged_events)):
            for _ in range(n):
                events.record_event(db, type="page.viewed", contact_id=contact.id)
        contacts_before = count(db, Contact)
        rows_before = count(db, Event, Event.contact_id.in_([keeper.id, merged.id]))
        merged_id = merged.id

        service.merge_contacts(db, keeper, merged, actor=ACTOR, automatic=True)

        for key in keeper_fields:
            kept, theirs = keeper_fields[key], merged_fields[key]
            expected = kept.strip() if kept else (theirs.strip() if theirs else None)
            assert getattr(keeper, key) == (expected or None)
        assert count(db, Contact) == contacts_before - 1
        assert count(db, Event, Event.contact_id == merged_id) == 0
        # its own events plus the merged contact's, plus the contact.merged event
        assert count(db, Event, Event.contact_id == keeper.id) == rows_before + 1
        assert count(db, Identity, Identity.contact_id == keeper.id) == 2
        savepoint.rollback()


def _proposed(db, a_key: str, b_key: str) -> MergeProposal:
    service.upsert_contact(db, identities=[("openid", a_key), ("custom:card", b_key)], actor=ACTOR)
    return db.execute(select(MergeProposal).where(MergeProposal.identity_value == b_key)).scalar_one()


def test_proposals_follow_a_merge_moot_pending_ones_go_and_decided_ones_stay(db, ws):
    at(0)
    keeper = service.create_contact(db, identities=[("openid", "k"), ("custom:card", "kc")], actor=ACTOR)
    at(1)
    merged = service.create_contact(db, identities=[("openid", "m"), ("custom:card", "mc")], actor=ACTOR)
    at(2)
    x = service.create_contact(db, identities=[("custom:card", "xc")], actor=ACTOR)
    y = service.create_contact(db, identities=[("custom:card", "yc")], actor=ACTOR)
    same_pair = _proposed(db, "k", "mc")  # keeper ~ merged
    moved = _proposed(db, "m", "xc")  # merged ~ x: follows the keeper
    rejected = _proposed(db, "m", "yc")  # merged ~ y, rejected: history, follows the keeper
    service.reject_merge_proposal(db, rejected, actor=ACTOR)
    merged_id = merged.id

    service.merge_contacts(db, keeper, merged, actor=ACTOR, automatic=False)

    db.expire_all()
    assert db.get(MergeProposal, same_pair.id) is None
    assert (moved.contact_a_id, moved.contact_b_id, moved.status) == (keeper.id, x.id, "pending")
    assert (rejected.contact_a_id, rejected.contact_b_id, rejected.status) == (keeper.id, y.id, "rejected")
    assert count(db, MergeProposal, (MergeProposal.contact_a_id == merged_id)
                 | (MergeProposal.contact_b_id == merged_id)) == 0
