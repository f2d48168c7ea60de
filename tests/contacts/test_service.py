"""Contacts service: create, update, validate, upsert by identity, settings and custom attributes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from siyu.contacts import service
from siyu.contacts.models import Contact, Identity
from siyu.core import clock
from siyu.core.errors import Conflict, Invalid
from siyu.core.models import AuditEntry, Event
from tests.contacts.conftest import ACTOR


def count(db, model) -> int:
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def identities(db, contact) -> set[tuple[str, str]]:
    return {(i.type, i.value) for i in service.identities_of(db, contact)}


def events_of(db, type_: str) -> list[Event]:
    return list(db.execute(select(Event).where(Event.type == type_).order_by(Event.id)).scalars())


def test_create_contact_stores_fields_identities_and_records_event_and_audit(db, ws):
    contact = service.create_contact(
        db, fields={"name": " 王芳 ", "phone": "138 0013 8000", "gender": "female", "birthday": "1990-05-01"},
        identities=[("openid", "o-1")], actor=ACTOR,
    )

    assert contact.name == "王芳"
    assert contact.phone == "+8613800138000"
    assert contact.birthday == date(1990, 5, 1)
    assert identities(db, contact) == {("phone", "+8613800138000"), ("openid", "o-1")}
    assert [e.contact_id for e in events_of(db, "contact.created")] == [contact.id]
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "contact.create")).scalar_one()
    assert entry.entity_id == str(contact.id)


def test_create_contact_refuses_an_identity_another_contact_holds(db, ws):
    service.create_contact(db, fields={"email": "a@example.com"}, actor=ACTOR)

    with pytest.raises(Conflict) as err:
        service.create_contact(db, identities=[("email", "A@Example.com")], actor=ACTOR)
    assert err.value.field == "identities"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"gender": "unknown"}, "gender"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "yesterday"}, "birthday"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "ftp://x.example/a.png"}, "avatar_url"),
        ({"phone": "12"}, "phone"),
        ({"email": "nope"}, "email"),
        ({"name": "x" * 121}, "name"),
        ({"locale": "not a locale"}, "locale"),
        ({"shoe_size": 42}, "shoe_size"),
    ],
)
def test_validate_fields_names_the_bad_field(db, ws, fields, field):
    with pytest.raises(Invalid) as err:
        service.validate_fields(db, fields, None)
    assert err.value.field == field


def test_birthday_today_is_fine_tomorrow_is_not(db, ws):
    clock.set_clock(lambda: datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert service.validate_fields(db, {"birthday": "2026-06-01"}, None)[0]["birthday"] == date(2026, 6, 1)
    with pytest.raises(Invalid):
        service.validate_fields(db, {"birthday": "2026-06-02"}, None)


def test_custom_attributes_are_checked_against_their_definitions(db, ws):
    service.create_attribute_definition(db, key="shoe_size", label="Shoe size", type="number", actor=ACTOR)
    service.create_attribute_definition(db, key="member_since", label="Member since", type="date", actor=ACTOR)
    service.create_attribute_definition(db, key="skin", label="Skin", type="choice", choices=["dry", "oily"],
                                        actor=ACTOR)
    service.create_attribute_definition(db, key="likes", label="Likes", type="multi_choice",
                                        choices=["tea", "coffee", "cake"], actor=ACTOR)
    service.create_attribute_definition(db, key="bio", label="Bio", type="text", actor=ACTOR)

    _, clean = service.validate_fields(
        db, None, {"shoe_size": "38", "member_since": "2024-02-03", "skin": "dry", "likes": "tea, cake, tea",
                   "bio": " hi "},
    )

    assert clean == {"shoe_size": 38, "member_since": "2024-02-03", "skin": "dry", "likes": ["tea", "cake"],
                     "bio": "hi"}
    for attributes, field in [
        ({"shoe_size": "big"}, "attributes.shoe_size"),
        ({"shoe_size": True}, "attributes.shoe_size"),
        ({"member_since": "03/02/2024"}, "attributes.member_since"),
        ({"skin": "normal"}, "attributes.skin"),
        ({"likes": ["tea", "wine"]}, "attributes.likes"),
        ({"colour": "red"}, "attributes.colour"),
    ]:
        with pytest.raises(Invalid) as err:
            service.validate_fields(db, None, attributes)
        assert err.value.field == field


def test_attribute_definitions_refuse_bad_keys_types_and_duplicates(db, ws):
    service.create_attribute_definition(db, key="tier", label="Tier", type="choice", choices=["a"], actor=ACTOR)
    for kwargs, field in [
        ({"key": "Tier", "type": "text"}, "key"),
        ({"key": "x", "type": "colour"}, "type"),
        ({"key": "y", "type": "choice"}, "choices"),
        ({"key": "z", "type": "text", "choices": ["a"]}, "choices"),
    ]:
        with pytest.raises(Invalid) as err:
            service.create_attribute_definition(db, label="L", actor=ACTOR, **kwargs)
        assert err.value.field == field
    with pytest.raises(Conflict):
        service.create_attribute_definition(db, key="tier", label="Tier", type="text", actor=ACTOR)


def test_update_contact_sets_and_clears_and_adds_the_new_phone_identity(db, ws):
    contact = service.create_contact(db, fields={"name": "A", "city": "上海"}, identities=[("openid", "o")],
                                     actor=ACTOR)

    service.update_contact(db, contact, fields={"city": None, "phone": "+86 139 0000 0000"}, actor=ACTOR)

    assert contact.city is None
    assert contact.phone == "+8613900000000"
    assert ("phone", "+8613900000000") in identities(db, contact)
    assert events_of(db, "contact.updated")[-1].properties["fields"] == ["city", "phone"]


def test_update_contact_refuses_a_phone_of_another_contact(db, ws):
    service.create_contact(db, fields={"phone": "13900000000"}, actor=ACTOR)
    other = service.create_contact(db, fields={"name": "B"}, identities=[("openid", "b")], actor=ACTOR)

    with pytest.raises(Conflict) as err:
        service.update_contact(db, other, fields={"phone": "13900000000"}, actor=ACTOR)
    assert err.value.field == "phone"


def test_upsert_creates_then_finds_by_any_identity_and_fills_only_empty_fields(db, ws):
    first, created = service.upsert_contact(
        db, identities=[("phone", "13800000001")], fields={"name": "Li"}, actor=ACTOR
    )
    again, created_again = service.upsert_contact(
        db, identities=[("phone", "+86 138-0000-0001"), ("email", "li@example.com")],
        fields={"name": "Other name", "city": "杭州"}, actor=ACTOR,
    )

    assert created
    assert not created_again
    assert again.id == first.id
    assert again.name == "Li"  # not overwritten
    assert again.city == "杭州"  # was empty
    assert again.email == "li@example.com"
    assert identities(db, again) == {("phone", "+8613800000001"), ("email", "li@example.com")}
    overwritten, _ = service.upsert_contact(db, identities=[("email", "li@example.com")],
                                            fields={"name": "Li Na"}, actor=ACTOR, overwrite=True)
    assert overwritten.name == "Li Na"
    assert count(db, Contact) == 1


def test_upsert_with_phone_in_fields_only_uses_it_as_identity(db, ws):
    contact, created = service.upsert_contact(db, identities=[], fields={"phone": "13800000002"}, actor=None)

    assert created
    assert identities(db, contact) == {("phone", "+8613800000002")}
    with pytest.raises(Invalid) as err:
        service.upsert_contact(db, identities=[], fields={"name": "nobody"}, actor=None)
    assert err.value.field == "identities"


def test_upsert_names_the_bad_identity(db, ws):
    with pytest.raises(Invalid) as err:
        service.upsert_contact(db, identities=[("email", "a@example.com"), ("phone", "12")], actor=None)
    assert err.value.field == "identities.1.value"
    with pytest.raises(Invalid) as err:
        service.upsert_contact(db, identities=[("fax", "1")], actor=None)
    assert err.value.field == "identities.0.type"
    assert count(db, Contact) == 0


def test_settings_default_one_person_keys_and_update(db, ws):
    assert service.get_settings(db).one_person_keys == [
        "unionid", "external_userid", "shop_customer_id", "phone", "email"
    ]

    service.update_settings(db, one_person_keys=["phone", "wechat_openid"], actor=ACTOR)

    assert service.get_settings(db).one_person_keys == ["phone", "openid"]
    with pytest.raises(Invalid) as err:
        service.update_settings(db, one_person_keys=["fax"], actor=ACTOR)
    assert err.value.field == "one_person_keys"


def test_contacts_of_other_workspaces_are_not_found(db, make_workspace):
    from siyu.core.errors import NotFound
    from siyu.core.tenancy import bind_workspace

    a, b = make_workspace("A"), make_workspace("B")
    bind_workspace(db, b.id)
    theirs = service.create_contact(db, fields={"name": "B's"}, identities=[("phone", "13800000003")], actor=ACTOR)
    db.flush()
    bind_workspace(db, a.id)

    with pytest.raises(NotFound):
        service.get_contact(db, theirs.id)
    mine, created = service.upsert_contact(db, identities=[("phone", "13800000003")], actor=ACTOR)
    assert created
    assert mine.id != theirs.id
    assert db.execute(select(func.count()).select_from(Identity)).scalar_one() == 1
