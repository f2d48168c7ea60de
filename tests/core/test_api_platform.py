"""The platform's REST API: workspace settings, members, API keys, audit log, error shape."""

from __future__ import annotations

from tests.conftest import bearer


def test_workspace_settings_change_is_audited(client, make_workspace, make_key):
    ws = make_workspace("Acme Tea")
    key = bearer(make_key(ws))

    r = client.patch("/api/v1/workspace", json={"timezone": "Europe/Madrid", "currency": "EUR"}, headers=key)

    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "Europe/Madrid"
    log = client.get("/api/v1/audit-log", params={"action": "workspace.update"}, headers=key).json()["items"]
    assert log[0]["before"] == {"currency": "CNY", "timezone": "Asia/Shanghai"}
    assert log[0]["after"] == {"currency": "EUR", "timezone": "Europe/Madrid"}
    assert log[0]["actor_type"] == "api_key"
    assert log[0]["via"] == "api"


def test_bad_settings_name_the_field_and_change_nothing(client, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))

    r = client.patch("/api/v1/workspace", json={"name": "New", "timezone": "Mars/Olympus"}, headers=key)

    assert r.status_code == 422
    assert r.json()["error"]["field"] == "timezone"
    nulled = client.patch("/api/v1/workspace", json={"currency": None}, headers=key)
    assert nulled.status_code == 422
    assert nulled.json()["error"]["field"] == "currency"
    assert client.get("/api/v1/workspace", headers=key).json()["name"] == "Acme"


def test_unknown_field_and_malformed_json_are_refused(client, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))

    unknown = client.patch("/api/v1/workspace", json={"colour": "red"}, headers=key)
    json_header = {**key, "content-type": "application/json"}
    malformed = client.patch("/api/v1/workspace", content=b"{not json", headers=json_header)

    assert unknown.status_code == 422
    assert unknown.json()["error"] == {"code": "unknown_field", "message": "unknown field 'colour'", "field": "colour"}
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"


def test_api_key_secret_is_shown_once_and_revocation_is_immediate(client, make_workspace, make_key):
    ws = make_workspace()
    admin = bearer(make_key(ws))

    created = client.post("/api/v1/api-keys", json={"name": "shop", "scopes": ["events:write"]}, headers=admin)
    assert created.status_code == 201
    secret = created.json()["secret"]
    key_id = created.json()["id"]

    listed = client.get("/api/v1/api-keys", headers=admin).json()
    assert all("secret" not in k for k in listed)
    assert client.get(f"/api/v1/api-keys/{key_id}", headers=admin).json().get("secret") is None
    # The new key may write events but not read the audit log.
    assert client.get("/api/v1/audit-log", headers=bearer(secret)).status_code == 403

    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=admin).status_code == 200
    assert client.get("/api/v1/workspace", headers=bearer(secret)).status_code == 401


def test_missing_or_wrong_key_is_401(client, make_workspace):
    make_workspace()
    assert client.get("/api/v1/workspace").json()["error"]["code"] == "not_authenticated"
    assert client.get("/api/v1/workspace", headers=bearer("sy_nope.nope")).status_code == 401


def test_members_roles_and_last_owner(client, make_workspace, make_key, make_user):
    ws = make_workspace()
    owner = make_user(ws, "owner")
    key = bearer(make_key(ws))

    added = client.post("/api/v1/members", json={"email": "ana@example.com", "role": "operator", "name": "Ana",
                                                 "password": "a long enough pw"}, headers=key)
    assert added.status_code == 201, added.text
    bad_role = client.patch(f"/api/v1/members/{added.json()['user_id']}", json={"role": "king"}, headers=key)
    assert bad_role.status_code == 422
    assert bad_role.json()["error"]["field"] == "role"
    last_owner = client.patch(f"/api/v1/members/{owner.id}", json={"role": "analyst"}, headers=key)
    assert last_owner.status_code == 409
    roles = {m["email"]: m["role"] for m in client.get("/api/v1/members", headers=key).json()}
    assert roles == {owner.email: "owner", "ana@example.com": "operator"}


def test_cursor_pagination_walks_every_row_once(client, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    for i in range(7):
        client.patch("/api/v1/workspace", json={"name": f"Name {i}"}, headers=key)

    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/audit-log", params=params, headers=key).json()
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 8
    assert seen == sorted(seen, reverse=True)
    bad = client.get("/api/v1/audit-log", params={"cursor": "garbage!"}, headers=key)
    assert bad.json()["error"]["field"] == "cursor"
