"""The contacts REST API: thin handlers over the service, one error shape, scopes respected."""

from __future__ import annotations

import pytest

from siyu.contacts import service
from siyu.contacts.models import StaffMember
from siyu.core.audit import Actor
from siyu.core.auth import Auth
from siyu.core.errors import NotFound
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer


@pytest.fixture
def key(make_workspace, make_key):
    ws = make_workspace()
    return bearer(make_key(ws))


def test_create_read_update_delete(client, key):
    r = client.post("/api/v1/contacts", json={"name": "王芳", "phone": "13800000040",
                                              "identities": [{"type": "openid", "value": "o-40"}]}, headers=key)
    assert r.status_code == 201, r.text
    contact = r.json()
    assert contact["phone"] == "+8613800000040"
    assert {i["type"] for i in contact["identities"]} == {"phone", "openid"}

    r = client.patch(f"/api/v1/contacts/{contact['id']}", json={"city": "北京", "do_not_contact": True}, headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["city"] == "北京"
    assert r.json()["do_not_contact"] is True
    assert client.get(f"/api/v1/contacts/{contact['id']}", headers=key).json()["name"] == "王芳"

    assert client.delete(f"/api/v1/contacts/{contact['id']}", headers=key).status_code == 204
    assert client.get(f"/api/v1/contacts/{contact['id']}", headers=key).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"phone": "12"}, "phone", "invalid"),
        ({"birthday": "2999-01-01"}, "birthday", "invalid"),
        ({"gender": "x"}, "gender", "invalid"),
        ({"attributes": {"nope": 1}}, "attributes.nope", "unknown_attribute"),
        ({"identities": [{"type": "fax", "value": "1"}]}, "identities.0.type", "invalid"),
        ({"shoe": 1}, "shoe", "unknown_field"),
    ],
)
def test_bad_input_names_the_field(client, key, body, field, code):
    r = client.post("/api/v1/contacts", json=body, headers=key)

    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert r.json()["error"]["code"] == code


def test_upsert_creates_once_then_finds(client, key):
    body = {"identities": [{"type": "email", "value": "Li@Example.com"}], "fields": {"name": "Li"}}

    first = client.put("/api/v1/contacts/upsert", json=body, headers=key)
    again = client.put("/api/v1/contacts/upsert", json={**body, "fields": {"name": "Other", "city": "杭州"}},
                       headers=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["contact"]["id"] == first.json()["contact"]["id"]
    assert again.json()["contact"]["name"] == "Li"
    assert again.json()["contact"]["city"] == "杭州"
    bad = client.put("/api/v1/contacts/upsert", json={"identities": []}, headers=key)
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "identities"


def test_list_search_filters_and_pages(client, key):
    for i in range(5):
        client.post("/api/v1/contacts", json={"name": f"Tea lover {i}", "email": f"t{i}@example.com"}, headers=key)
    client.post("/api/v1/contacts", json={"nickname": "咖啡", "phone": "13912345678"}, headers=key)

    first = client.get("/api/v1/contacts", params={"q": "tea", "limit": 3}, headers=key).json()
    second = client.get("/api/v1/contacts", params={"q": "tea", "limit": 3, "cursor": first["next_cursor"]},
                        headers=key).json()

    assert len(first["items"]) == 3
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None
    assert [c["nickname"] for c in client.get("/api/v1/contacts", params={"q": "1234"}, headers=key).json()["items"]]\
        == ["咖啡"]
    assert client.get("/api/v1/contacts", params={"q": "100%_"}, headers=key).json()["items"] == []
    assert client.get("/api/v1/contacts", params={"stage": "churned"}, headers=key).json()["items"] == []


def test_identities_notes_consent_permission_and_timeline(client, key):
    cid = client.post("/api/v1/contacts", json={"name": "A"}, headers=key).json()["id"]
    other = client.post("/api/v1/contacts", json={"email": "b@example.com"}, headers=key).json()["id"]

    r = client.post(f"/api/v1/contacts/{cid}/identities", json={"type": "phone", "value": "13800000041"}, headers=key)
    assert r.status_code == 201, r.text
    taken = client.post(f"/api/v1/contacts/{cid}/identities", json={"type": "email", "value": "B@example.com"},
                        headers=key)
    assert taken.status_code == 409
    assert client.delete(f"/api/v1/contacts/{other}/identities/{r.json()['id']}", headers=key).status_code == 404
    assert client.delete(f"/api/v1/contacts/{cid}/identities/{r.json()['id']}", headers=key).status_code == 204

    note = client.post(f"/api/v1/contacts/{cid}/notes", json={"body": "called, wants samples"}, headers=key).json()
    notes = client.get(f"/api/v1/contacts/{cid}/notes", headers=key).json()["items"]
    assert notes[0]["body"] == "called, wants samples"
    assert client.delete(f"/api/v1/contacts/{other}/notes/{note['id']}", headers=key).status_code == 404

    r = client.post(f"/api/v1/contacts/{cid}/consent",
                    json={"channel": "email", "status": "granted", "source": "newsletter form"}, headers=key)
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/contacts/{cid}/permission", params={"channel": "email"}, headers=key).json() == {
        "allowed": True, "reason": "granted"}
    assert client.get(f"/api/v1/contacts/{cid}/permission", params={"channel": "sms"}, headers=key).json() == {
        "allowed": False, "reason": "no_opt_in"}

    client.post("/api/v1/events", json={"events": [{"type": "page.viewed", "contact_id": cid}]}, headers=key)
    types = [e["type"] for e in client.get(f"/api/v1/contacts/{cid}/timeline", headers=key).json()["items"]]
    assert types[0] == "page.viewed"
    assert "consent.granted" in types
    assert "contact.note_added" in types
    assert types[-1] == "contact.created"


def test_attributes_settings_merge_and_proposals(client, key):
    r = client.post("/api/v1/contact-attributes", json={"key": "skin", "label": "Skin", "type": "choice",
                                                        "choices": ["dry", "oily"]}, headers=key)
    assert r.status_code == 201, r.text
    attr = r.json()["id"]
    assert client.patch(f"/api/v1/contact-attributes/{attr}", json={"label": "Skin type"},
                        headers=key).json()["label"] == "Skin type"
    a = client.post("/api/v1/contacts", json={"name": "A", "attributes": {"skin": "dry"},
                                              "identities": [{"type": "openid", "value": "oa"}]}, headers=key).json()
    b = client.post("/api/v1/contacts", json={"identities": [{"type": "custom:card", "value": "c1"}]},
                    headers=key).json()
    assert client.get("/api/v1/contact-settings", headers=key).json()["one_person_keys"][0] == "unionid"
    r = client.patch("/api/v1/contact-settings", json={"one_person_keys": ["phone", "email"]}, headers=key)
    assert r.json()["one_person_keys"] == ["phone", "email"]

    client.put("/api/v1/contacts/upsert", json={"identities": [{"type": "openid", "value": "oa"},
                                                               {"type": "custom:card", "value": "c1"}]}, headers=key)
    (proposal,) = client.get("/api/v1/merge-proposals", headers=key).json()["items"]
    assert (proposal["contact_a_id"], proposal["contact_b_id"]) == (a["id"], b["id"])
    record = client.post(f"/api/v1/merge-proposals/{proposal['id']}/accept", headers=key)
    assert record.status_code == 200, record.text
    assert record.json()["keeper_id"] == a["id"]
    assert client.get(f"/api/v1/contacts/{b['id']}", headers=key).status_code == 404
    (accepted,) = client.get("/api/v1/merge-proposals", params={"status": "accepted"}, headers=key).json()["items"]
    assert (accepted["id"], accepted["contact_a_id"], accepted["contact_b_id"]) == (proposal["id"], a["id"], None)
    assert accepted["merge_id"] == record.json()["id"]

    c = client.post("/api/v1/contacts", json={"name": "C"}, headers=key).json()
    merged = client.post(f"/api/v1/contacts/{c['id']}/merge", json={"other_id": a["id"]}, headers=key).json()
    assert (merged["keeper_id"], merged["merged_id"]) == (a["id"], c["id"])
    records = client.get("/api/v1/contact-merges", params={"contact_id": a["id"]}, headers=key).json()["items"]
    assert len(records) == 2
    assert client.get(f"/api/v1/contact-merges/{records[0]['id']}", headers=key).json()["merged_snapshot"]
    assert client.delete(f"/api/v1/contact-attributes/{attr}", headers=key).status_code == 204


def test_a_read_key_may_not_write(client, make_workspace, make_key):
    ws = make_workspace()
    reader = bearer(make_key(ws, ["contacts:read"]))

    assert client.get("/api/v1/contacts", headers=reader).status_code == 200
    assert client.post("/api/v1/contacts", json={"name": "x"}, headers=reader).status_code == 403


def test_staff_see_only_the_contacts_they_own(db, make_workspace, make_user):
    ws = make_workspace()
    mine_user, other_user = make_user(ws, "staff"), make_user(ws, "staff")
    bind_workspace(db, ws.id)
    # "Them" is the older staff member, so a contact created without an owner goes to them.
    them = StaffMember(name="Them", user_id=other_user.id)
    db.add(them)
    db.flush()
    me = StaffMember(name="Me", user_id=mine_user.id)
    db.add(me)
    db.flush()
    actor = Actor.cli("t")
    mine = service.create_contact(db, fields={"name": "mine"}, owner_id=me.id, actor=actor)
    theirs = service.create_contact(db, fields={"name": "theirs"}, owner_id=them.id, actor=actor)
    service.create_contact(db, fields={"name": "nobody's"}, actor=actor)
    staff = Auth(workspace_id=ws.id, actor=actor, role="staff", user_id=mine_user.id)
    operator = Auth(workspace_id=ws.id, actor=actor, role="operator", user_id=other_user.id)

    assert [c.name for c in service.list_contacts(db, viewer=staff)[0]] == ["mine"]
    assert [c.name for c in service.list_contacts(db, viewer=staff, q="theirs")[0]] == []
    assert len(service.list_contacts(db, viewer=operator)[0]) == 3
    assert service.get_contact(db, mine.id, viewer=staff).id == mine.id
    with pytest.raises(NotFound):
        service.get_contact(db, theirs.id, viewer=staff)
