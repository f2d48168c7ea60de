"""Workspace isolation, walked over the OpenAPI document so every new route is covered by itself.

Workspace A's key is sent with workspace B's ids to every route that takes an id: each call is refused
and B's rows stay exactly as they were. Routes without ids must never show B's data to A, and every
route refuses a missing or revoked key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from siyu.core import clock
from siyu.core.models import ApiKey, AuditEntry, Event, Job, Membership, Workspace
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer

# How to make, in workspace B, the thing each path parameter names. A route with a parameter not
# listed here fails the test until someone says how to make one.
PARAMS = ("user_id", "key_id", "event_id", "job_id", "import_id")
B_MARK = "bworkspace-secret-marker"


def _seed_b(db, make_workspace, make_user, make_key) -> tuple[Any, dict[str, int], str]:
    b = make_workspace(f"Beta {B_MARK}")
    member = make_user(b, "operator", email=f"{B_MARK}@example.com")
    b_key_secret = make_key(b, name=f"key {B_MARK}")
    bind_workspace(db, b.id)
    key_id = db.execute(select(ApiKey.id)).scalars().first()
    event = Event(type="custom.thing", occurred_at=clock.now(), idempotency_key=f"evt-{B_MARK}",
                  properties={"note": B_MARK})
    job = Job(kind="test.noop", idempotency_key=f"job-{B_MARK}", payload={"note": B_MARK})
    from siyu.contacts.models import ContactImport

    contact_import = ContactImport(filename=f"{B_MARK}.csv", created_by=B_MARK, status="done")
    db.add_all([event, job, contact_import])
    db.commit()
    bind_workspace(db, None)
    ids = {"user_id": member.id, "key_id": key_id, "event_id": event.id, "job_id": job.id,
           "import_id": contact_import.id}
    return b, ids, b_key_secret


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _example(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A minimal value that passes the schema, so the call reaches authorisation and the service."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return _example(spec, options[0]) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _example(spec, sub)
            for name, sub in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    if kind == "array":
        return [_example(spec, schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    return "x" * max(1, schema.get("minLength", 1))


def _operations(spec: dict[str, Any]):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def _body(spec, op) -> Any:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    return None if content is None else _example(spec, content["schema"])


def _b_rows(db, b_id: int) -> str:
    """Everything of workspace B, as one comparable string."""
    bind_workspace(db, b_id)
    db.expire_all()
    rows = []
    for model in (Membership, ApiKey, AuditEntry, Event, Job):
        for obj in db.execute(select(model).order_by(model.id)).scalars():
            rows.append({c.key: str(getattr(obj, c.key)) for c in model.__mapper__.column_attrs})
    rows.append({"ws": str(db.get(Workspace, b_id).__dict__.get("name"))})
    bind_workspace(db, None)
    return json.dumps(rows, sort_keys=True)


def test_every_route_with_an_id_refuses_another_workspaces_id(client, db, make_workspace, make_user, make_key):
    spec = client.get("/api/openapi.json").json()
    a = make_workspace("Alpha")
    make_user(a, "owner")
    a_key = bearer(make_key(a, ["all:write"]))
    b, ids, _ = _seed_b(db, make_workspace, make_user, make_key)
    before = _b_rows(db, b.id)

    checked = 0
    for path, method, op in _operations(spec):
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        unknown = [n for n in names if n not in PARAMS]
        assert not unknown, f"{method.upper()} {path}: teach this test to make a {unknown} in workspace B"
        url = path.format(**{n: ids[n] for n in names})
        r = client.request(method, url, headers=a_key, json=_body(spec, op))
        assert r.status_code in (403, 404), f"{method.upper()} {path} with B's id answered {r.status_code}: {r.text}"
        assert B_MARK not in r.text
        assert set(r.json()) == {"error"}
        checked += 1

    assert checked >= 3
    assert _b_rows(db, b.id) == before


def test_routes_without_ids_never_show_another_workspaces_data(client, db, make_workspace, make_user, make_key):
    spec = client.get("/api/openapi.json").json()
    a = make_workspace("Alpha")
    make_user(a, "owner")
    a_key = bearer(make_key(a, ["all:write"]))
    b, _, _ = _seed_b(db, make_workspace, make_user, make_key)
    before = _b_rows(db, b.id)

    for path, method, op in _operations(spec):
        if "{" in path:
            continue
        r = client.request(method, path, headers=a_key, json=_body(spec, op))
        assert r.status_code < 500, f"{method.upper()} {path}: {r.status_code} {r.text}"
        assert B_MARK not in r.text, f"{method.upper()} {path} leaked workspace B's data"

    assert _b_rows(db, b.id) == before


@pytest.mark.parametrize("credential", ["none", "revoked", "garbage", "other-scheme"])
def test_every_route_refuses_a_missing_or_dead_key(client, db, make_workspace, make_user, make_key, credential):
    spec = client.get("/api/openapi.json").json()
    b, ids, b_secret = _seed_b(db, make_workspace, make_user, make_key)
    if credential == "revoked":
        bind_workspace(db, b.id)
        for key in db.execute(select(ApiKey)).scalars():
            key.revoked_at = clock.now()
        db.commit()
        bind_workspace(db, None)
    headers = {
        "none": {},
        "revoked": bearer(b_secret),
        "garbage": bearer("sy_garbage.garbage"),
        "other-scheme": {"Authorization": f"Basic {b_secret}"},
    }[credential]
    before = _b_rows(db, b.id)

    for path, method, op in _operations(spec):
        url = path.format(**{n: ids.get(n, 1) for n in re.findall(r"{(\w+)}", path)})
        r = client.request(method, url, headers=headers, json=_body(spec, op))
        assert r.status_code == 401, f"{method.upper()} {path} without a live key answered {r.status_code}"
        assert r.json()["error"]["code"] == "not_authenticated"

    assert _b_rows(db, b.id) == before


@pytest.mark.parametrize("bad_id", ["0", "-1", str(2**63), "99999999999999999999999"])
def test_every_route_with_an_id_answers_404_for_impossible_ids(client, make_workspace, make_key, bad_id):
    spec = client.get("/api/openapi.json").json()
    a_key = bearer(make_key(make_workspace("Alpha"), ["all:write"]))

    for path, method, op in _operations(spec):
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        r = client.request(method, path.format(**dict.fromkeys(names, bad_id)), headers=a_key, json=_body(spec, op))
        assert r.status_code in (404, 422), f"{method.upper()} {path} with id {bad_id}: {r.status_code} {r.text}"
        assert set(r.json()) == {"error"}
