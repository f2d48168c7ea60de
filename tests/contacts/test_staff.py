"""Staff members, owners and handovers: every move an event, a record per handover, nobody left orphaned."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.contacts import staff as staff_service
from siyu.contacts.models import Contact
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.tenancy import bind_workspace
from tests.contacts.tag_support import ACTOR, add_contacts, audit_actions, events_of


@pytest.fixture
def ws(make_workspace, db):
    workspace = make_workspace("Tea Shop")
    bind_workspace(db, workspace.id)
    return workspace


def owners(db, ids):
    return dict(db.execute(select(Contact.id, Contact.owner_id).where(Contact.id.in_(ids))).all())


def test_staff_links_to_a_member_and_a_unique_wecom_userid(db, ws, make_user, make_workspace):
    member = make_user(ws, "staff")
    outsider = make_user(make_workspace("Elsewhere"), "staff")
    bind_workspace(db, ws.id)

    wang = staff_service.create_staff(db, name="王芳", user_id=member.id, wecom_userid="wangfang", actor=ACTOR)
    with pytest.raises(Invalid) as not_member:
        staff_service.create_staff(db, name="Li", user_id=outsider.id, actor=ACTOR)
    with pytest.raises(Conflict) as same_wecom:
        staff_service.create_staff(db, name="Li", wecom_userid="wangfang", actor=ACTOR)
    with pytest.raises(Conflict) as same_user:
        staff_service.create_staff(db, name="Li", user_id=member.id, actor=ACTOR)
    with pytest.raises(Invalid) as no_name:
        staff_service.create_staff(db, name=" ", actor=ACTOR)

    assert staff_service.staff_for_user(db, member.id).id == wang.id
    assert not_member.value.field == "user_id"
    assert same_wecom.value.field == "wecom_userid"
    assert same_user.value.field == "user_id"
    assert no_name.value.field == "name"


def test_default_owner_is_the_oldest_active_staff_member(db, ws):
    assert staff_service.default_owner_id(db) is None
    first = staff_service.create_staff(db, name="First", actor=ACTOR)
    second = staff_service.create_staff(db, name="Second", actor=ACTOR)
    assert staff_service.default_owner_id(db) == first.id

    staff_service.update_staff(db, first, changes={"active": False}, actor=ACTOR)
    assert staff_service.default_owner_id(db) == second.id


def test_new_contacts_get_the_default_owner_however_they_arrive(db, ws):
    from siyu.contacts import service as contacts
    from siyu.core.events import record_events

    keeper = staff_service.create_staff(db, name="Keeper", actor=ACTOR)
    other = staff_service.create_staff(db, name="Other", actor=ACTOR)

    created = contacts.create_contact(db, fields={"name": "Ann"}, actor=ACTOR)
    chosen = contacts.create_contact(db, fields={"name": "Bo"}, owner_id=other.id, actor=ACTOR)
    upserted, _ = contacts.upsert_contact(db, identities=[("email", "cy@example.com")], actor=ACTOR)
    record_events(db, [{"type": "page.viewed", "identity": {"type": "phone", "value": "13800138000"}}])
    arrived = db.execute(select(Contact).where(Contact.phone == "+8613800138000")).scalar_one()

    assert created.owner_id == keeper.id
    assert chosen.owner_id == other.id
    assert upserted.owner_id == keeper.id
    assert arrived.owner_id == keeper.id


def test_assigning_an_owner_moves_only_contacts_that_change(db, ws):
    a = staff_service.create_staff(db, name="A", actor=ACTOR)
    b = staff_service.create_staff(db, name="B", actor=ACTOR)
    ids = add_contacts(db, ws.id, 4)

    assert staff_service.assign_owner(db, ids[:2], a.id, actor=ACTOR) == 2
    assert staff_service.assign_owner(db, ids, b.id, actor=ACTOR) == 4
    assert staff_service.assign_owner(db, ids, b.id, actor=ACTOR) == 0

    assert set(owners(db, ids).values()) == {b.id}
    moves = [(e.contact_id, e.properties["from"], e.properties["to"]) for e in events_of(db, "contact.owner_changed")]
    assert sorted(moves, key=str) == sorted(
        [(ids[0], None, a.id), (ids[1], None, a.id), (ids[0], a.id, b.id), (ids[1], a.id, b.id),
         (ids[2], None, b.id), (ids[3], None, b.id)], key=str
    )
    assert audit_actions(db).count("contact.assign_owner") == 3


def test_a_staff_member_with_contacts_cannot_be_deactivated_before_a_handover(db, ws):
    leaving = staff_service.create_staff(db, name="Leaving", actor=ACTOR)
    taking = staff_service.create_staff(db, name="Taking", actor=ACTOR)
    ids = add_contacts(db, ws.id, 3, owner_id=leaving.id)

    with pytest.raises(Conflict) as refused:
        staff_service.update_staff(db, leaving, changes={"active": False}, actor=ACTOR)
    done = staff_service.handover(db, from_staff_id=leaving.id, to_staff_id=taking.id, reason="leaving", actor=ACTOR)

    assert refused.value.field == "active"
    assert "3 contacts" in refused.value.message
    assert (done.contact_count, sorted(done.contact_ids), done.reason) == (3, ids, "leaving")
    assert set(owners(db, ids).values()) == {taking.id}
    # Leaving with everything handed over: the staff member is no longer active.
    assert leaving.active is False
    changed = events_of(db, "contact.owner_changed")
    assert {e.properties["handover_id"] for e in changed} == {done.id}
    assert staff_service.list_handovers(db, staff_id=taking.id)[0] == [done]


def test_a_partial_reassignment_moves_only_the_chosen_contacts(db, ws):
    a = staff_service.create_staff(db, name="A", actor=ACTOR)
    b = staff_service.create_staff(db, name="B", actor=ACTOR)
    mine = add_contacts(db, ws.id, 3, owner_id=a.id)
    theirs = add_contacts(db, ws.id, 1, owner_id=b.id)

    with pytest.raises(Invalid) as not_owned:
        staff_service.handover(db, from_staff_id=a.id, to_staff_id=b.id, contact_ids=[mine[0], theirs[0]],
                               reason="reassignment", actor=ACTOR)
    done = staff_service.handover(db, from_staff_id=a.id, to_staff_id=b.id, contact_ids=[mine[0]],
                                  reason="reassignment", actor=ACTOR)

    assert not_owned.value.field == "contact_ids"
    assert done.contact_ids == [mine[0]]
    assert owners(db, mine) == {mine[0]: b.id, mine[1]: a.id, mine[2]: a.id}
    assert a.active is True


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"reason": "fired"}, "reason", Invalid),
        ({"to_staff_id": "self"}, "to_staff_id", Invalid),
        ({"to_staff_id": 10**12}, "to_staff_id", NotFound),
        ({"from_staff_id": 10**12}, "from_staff_id", NotFound),
        ({"to_staff_id": "inactive"}, "to_staff_id", Invalid),
    ],
)
def test_bad_handovers_name_their_field(db, ws, change, field, error):
    a = staff_service.create_staff(db, name="A", actor=ACTOR)
    b = staff_service.create_staff(db, name="B", actor=ACTOR)
    gone = staff_service.create_staff(db, name="Gone", active=False, actor=ACTOR)
    args = {"from_staff_id": a.id, "to_staff_id": b.id, "reason": "leaving"}
    args.update(change)
    if args["to_staff_id"] == "self":
        args["to_staff_id"] = a.id
    if args["to_staff_id"] == "inactive":
        args["to_staff_id"] = gone.id

    with pytest.raises(error) as refused:
        staff_service.handover(db, actor=ACTOR, **args)
    assert refused.value.field == field
