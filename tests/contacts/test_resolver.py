"""Events naming a person by identity get their contact at ingestion."""

from __future__ import annotations

from sqlalchemy import func, select

from siyu.contacts import service
from siyu.contacts.models import Contact
from siyu.core.events import record_events
from siyu.core.models import Event
from siyu.core.tenancy import bind_workspace
from tests.contacts.conftest import ACTOR


def test_a_batch_resolves_known_and_new_people_with_one_contact_per_identity(db, ws):
    known = service.create_contact(db, fields={"phone": "13800000010"}, actor=ACTOR)
    items = [
        {"type": "page.viewed", "identity": {"type": "phone", "value": "+86 138 0000 0010"}},
        {"type": "page.viewed", "identity": {"type": "phone", "value": "13800000011"}},
        {"type": "page.viewed", "identity": {"type": "phone", "value": "+8613800000011"}},
        {"type": "page.viewed", "identity": {"type": "wechat_openid", "value": "oX"}},
        {"type": "page.viewed", "identity": {"type": "member_no", "value": "M1"}},
        {"type": "page.viewed"},
    ]

    result = record_events(db, items, source="test")

    assert result.accepted == 6
    assert not result.errors
    stored = [db.get(Event, result.event_ids[i]) for i in range(6)]
    assert stored[0].contact_id == known.id
    assert stored[1].contact_id == stored[2].contact_id != known.id
    assert stored[3].contact_id is not None
    assert stored[4].contact_id is not None
    assert stored[5].contact_id is None
    assert stored[1].identity_value == "13800000011"  # the identity stays on the event as sent
    new = db.get(Contact, stored[1].contact_id)
    assert new.phone == "+8613800000011"
    assert {(i.type, i.value) for i in service.identities_of(db, db.get(Contact, stored[4].contact_id))} == {
        ("custom:member_no", "M1")
    }
    assert db.execute(select(func.count()).select_from(Contact)).scalar_one() == 4
    created = db.execute(select(Event.contact_id).where(Event.type == "contact.created")).scalars().all()
    assert sorted(created) == sorted({known.id, stored[1].contact_id, stored[3].contact_id, stored[4].contact_id})


def test_a_bad_phone_or_a_foreign_contact_refuses_that_item_only(db, make_workspace):
    a, b = make_workspace("A"), make_workspace("B")
    bind_workspace(db, b.id)
    theirs = service.create_contact(db, fields={"name": "B"}, identities=[("openid", "b")], actor=ACTOR)
    db.flush()
    bind_workspace(db, a.id)

    result = record_events(db, [
        {"type": "page.viewed", "identity": {"type": "phone", "value": "12345"}},
        {"type": "page.viewed", "contact_id": theirs.id},
        {"type": "page.viewed", "identity": {"type": "email", "value": "ok@example.com"}},
    ], source="test")

    assert result.accepted == 1
    assert [(e.index, e.code, e.field) for e in result.errors] == [
        (0, "invalid", "identity.value"), (1, "unknown_contact", "contact_id")
    ]
    assert db.execute(select(func.count()).select_from(Contact)).scalar_one() == 1
