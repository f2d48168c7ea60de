"""The segments API: CRUD, preview, members paged, refresh, static lists, and rules naming foreign rows."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.contacts.models import Contact, Identity, Tag, TagGroup
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer

SHANGHAI = {"all": [{"field": "city", "op": "eq", "value": "Shanghai"}]}


def _seed(db: Session, workspace_id: int, cities: list[str]) -> list[int]:
    bind_workspace(db, workspace_id)
    rows = [Contact(name=f"p{i}", city=c) for i, c in enumerate(cities)]
    db.add_all(rows)
    db.flush()
    db.add(Identity(contact_id=rows[0].id, type="email", value="first@example.com"))
    db.commit()
    bind_workspace(db, None)
    return [r.id for r in rows]


def test_a_dynamic_segment_from_preview_to_paged_members(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    ids = _seed(db, ws.id, ["Shanghai", "Beijing", "Shanghai", "Shanghai"])

    r = client.post("/api/v1/segments/preview", json={"rule": SHANGHAI, "limit": 2}, headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 3
    assert [c["id"] for c in r.json()["sample"]] == [ids[3], ids[2]]

    r = client.post("/api/v1/segments", json={"name": "Shanghai", "kind": "dynamic", "rule": SHANGHAI}, headers=key)
    assert r.status_code == 201, r.text
    segment = r.json()
    assert segment["member_count"] == 0
    assert segment["refreshed_at"] is None

    r = client.post(f"/api/v1/segments/{segment['id']}/refresh", headers=key)
    assert r.json() == {"entered": 3, "exited": 0, "member_count": 3}
    first = client.get(f"/api/v1/segments/{segment['id']}/members?limit=2", headers=key).json()
    rest = client.get(f"/api/v1/segments/{segment['id']}/members?limit=2&cursor={first['next_cursor']}",
                      headers=key).json()
    assert [c["id"] for c in first["items"] + rest["items"]] == [ids[3], ids[2], ids[0]]
    assert rest["next_cursor"] is None

    r = client.patch(f"/api/v1/segments/{segment['id']}", json={"name": "魔都"}, headers=key)
    assert r.json()["name"] == "魔都"
    listed = client.get("/api/v1/segments", headers=key).json()["items"]
    assert [s["name"] for s in listed] == ["魔都"]
    assert client.delete(f"/api/v1/segments/{segment['id']}", headers=key).status_code == 204
    assert client.get(f"/api/v1/segments/{segment['id']}", headers=key).status_code == 404


def test_a_static_list_by_ids_and_identities_reports_unknown_ones(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    ids = _seed(db, ws.id, ["a", "b"])
    segment = client.post("/api/v1/segments", json={"name": "List", "kind": "static"}, headers=key).json()
    r = client.post(f"/api/v1/segments/{segment['id']}/members", headers=key, json={
        "contact_ids": [ids[1], 987654321],
        "identities": [{"type": "email", "value": "First@Example.com"}, {"type": "phone", "value": "13800000000"}],
    })
    assert r.status_code == 200, r.text
    assert r.json() == {"added": 2, "removed": 0, "unchanged": 0, "member_count": 2,
                        "unknown": ["987654321", "phone:13800000000"]}
    r = client.post(f"/api/v1/segments/{segment['id']}/members/remove", json={"contact_ids": [ids[0]]}, headers=key)
    assert r.json()["member_count"] == 1
    r = client.post(f"/api/v1/segments/{segment['id']}/refresh", headers=key)
    assert r.status_code == 409


def test_bad_rules_name_the_field_and_foreign_rows_are_unknown(client, db, make_workspace, make_key):
    a, b = make_workspace("A"), make_workspace("B")
    key = bearer(make_key(a))
    bind_workspace(db, b.id)
    group = TagGroup(name="g")
    db.add(group)
    db.flush()
    tag = Tag(group_id=group.id, name="b-only")
    db.add(tag)
    db.commit()
    bind_workspace(db, None)

    r = client.post("/api/v1/segments/preview", headers=key,
                    json={"rule": {"all": [{"field": "city", "op": "eq", "value": "x"}, {"tag": tag.id, "op": "has"}]}})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "rule.all[1].tag"
    r = client.post("/api/v1/segments", headers=key,
                    json={"name": "x", "kind": "dynamic", "rule": {"any": [{"field": "colour", "op": "is_set"}]}})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "rule.any[0].field"
    r = client.post("/api/v1/segments", headers=key, json={"name": "x", "kind": "sometimes"})
    assert r.status_code == 422


def test_the_rule_schema_is_served_and_read_keys_cannot_write(client, make_workspace, make_key):
    ws = make_workspace()
    reader = bearer(make_key(ws, ["contacts:read"]))
    schema = client.get("/api/v1/segments/rule-schema", headers=reader).json()
    assert "event" in schema["$defs"]
    r = client.post("/api/v1/segments", json={"name": "x", "kind": "static"}, headers=reader)
    assert r.status_code == 403


def test_text_with_the_nul_character_is_refused_by_name_on_every_engine(client, make_workspace, make_key):
    key = bearer(make_key(make_workspace()))

    named = client.post("/api/v1/segments", json={"name": "a\u0000b", "kind": "static"}, headers=key)
    ruled = client.post("/api/v1/segments/preview", headers=key,
                        json={"rule": {"field": "city", "op": "eq", "value": "\u0000"}})
    tagged = client.post("/api/v1/tag-groups", json={"name": "\u0000"}, headers=key)

    assert (named.status_code, named.json()["error"]["field"]) == (422, "name")
    assert (ruled.status_code, ruled.json()["error"]["field"]) == (422, "rule.value")
    assert tagged.status_code == 422
