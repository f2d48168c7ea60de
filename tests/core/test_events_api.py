"""POST/GET /api/v1/events: batch ingestion with per-index errors, idempotency, tenancy, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from siyu.core.models import AuditEntry, Event
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer

# The kernel's contract, without the contacts module's resolver (tests/contacts covers that one).
pytestmark = pytest.mark.usefixtures("without_person_resolver")


def paid(key: str, **overrides: object) -> dict[str, object]:
    """A valid order.paid event."""
    event: dict[str, object] = {
        "type": "order.paid",
        "idempotency_key": key,
        "occurred_at": "2026-03-01T10:00:00+08:00",
        "identity": {"type": "phone", "value": "+8613800000001"},
        "properties": {
            "order_id": key,
            "amount": 12900,
            "currency": "CNY",
            "items": [{"sku": "TEA-1", "qty": 2, "price": 6000}],
        },
    }
    event.update(overrides)
    return event


def stored(db, workspace_id: int) -> int:
    bind_workspace(db, None)
    return db.execute(
        select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)
    ).scalar_one()


def test_batch_is_stored_and_read_back(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    batch = [
        paid("o-1"),
        {"type": "page.viewed", "contact_id": 7, "properties": {"path": "/tea", "ms": 1.5}},
        # A valid offset PostgreSQL's timestamptz input would refuse: stored as UTC.
        {"type": "page.viewed", "occurred_at": "2026-03-01T20:00:00+16:00", "idempotency_key": "far-east"},
    ]

    r = client.post("/api/v1/events", json={"events": batch}, headers=key)

    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "duplicates": 0, "errors": []}
    items = client.get("/api/v1/events", headers=key).json()["items"]
    assert [e["type"] for e in items] == ["page.viewed", "page.viewed", "order.paid"]
    assert datetime.fromisoformat(items[0]["occurred_at"]) == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    order = items[2]
    assert order["identity"] == {"type": "phone", "value": "+8613800000001"}
    assert order["properties"]["items"] == [{"sku": "TEA-1", "qty": 2, "price": 6000}]
    assert datetime.fromisoformat(order["occurred_at"]) == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert order["source"] == "api"
    # A custom event without a key gets a generated one, so it is stored and never merged with another.
    assert items[1]["idempotency_key"]
    one = client.get(f"/api/v1/events/{order['id']}", headers=key).json()
    assert one == order
    # Ingestion is not audited.
    bind_workspace(db, None)
    assert db.execute(select(AuditEntry).where(AuditEntry.action.like("event%"))).first() is None


def test_bad_items_are_reported_by_index_and_not_stored(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    batch = [
        paid("ok-1"),
        paid(
            "bad-qty",
            properties={
                "order_id": "x",
                "amount": 100,
                "currency": "CNY",
                "items": [{"sku": "a", "qty": 0, "price": 100}],
            },
        ),
        paid(
            "bad-amount",
            properties={
                "order_id": "x",
                "amount": "12.5",
                "currency": "CNY",
                "items": [{"sku": "a", "qty": 1, "price": 100}],
            },
        ),
        paid(
            "bad-currency",
            properties={
                "order_id": "x",
                "amount": 100,
                "currency": "XXX1",
                "items": [{"sku": "a", "qty": 1, "price": 100}],
            },
        ),
        {"type": "page.viewed", "colour": "red"},
        {"type": "Not A Type"},
        paid("naive", occurred_at="2026-03-01T10:00:00"),
        paid("future", occurred_at=(datetime.now(UTC) + timedelta(days=2)).isoformat()),
        {"type": "order.refunded", "properties": {"order_id": "o", "amount": 5, "currency": "CNY"}},
        {"type": "signup.done", "identity": {"type": "Phone!", "value": "1"}},
        "not an object",
        paid(
            "float-amount",
            properties={
                "order_id": "x",
                "amount": 12.0,
                "currency": "CNY",
                "items": [{"sku": "a", "qty": 1, "price": 100}],
            },
        ),
        paid(
            "extra-prop",
            properties={
                "order_id": "x",
                "amount": 1,
                "currency": "CNY",
                "coupon": "Y",
                "items": [{"sku": "a", "qty": 1, "price": 1}],
            },
        ),
        {"properties": {"note": "no type"}},
        paid("ancient", occurred_at="0001-01-01T00:00:00+14:00"),
        paid("ok-2"),
    ]

    r = client.post("/api/v1/events", json={"events": batch}, headers=key)

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert body["duplicates"] == 0
    by_index = {e["index"]: (e["code"], e["field"]) for e in body["errors"]}
    assert by_index == {
        1: ("invalid", "properties.items.0.qty"),
        2: ("invalid", "properties.amount"),
        3: ("invalid", "properties.currency"),
        4: ("unknown_field", "colour"),
        5: ("invalid", "type"),
        6: ("invalid", "occurred_at"),
        7: ("invalid", "occurred_at"),
        8: ("missing", "idempotency_key"),
        9: ("invalid", "identity.type"),
        10: ("invalid", None),
        11: ("invalid", "properties.amount"),
        12: ("unknown_field", "properties.coupon"),
        13: ("missing", "type"),
        14: ("invalid", "occurred_at"),
    }
    assert all(e["message"] for e in body["errors"])
    assert stored(db, ws.id) == 2
    keys = {e["idempotency_key"] for e in client.get("/api/v1/events", headers=key).json()["items"]}
    assert keys == {"ok-1", "ok-2"}


def test_duplicates_across_and_within_batches(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))

    first = client.post(
        "/api/v1/events", json={"events": [paid("a"), paid("b"), paid("a")]}, headers=key
    ).json()
    again = client.post("/api/v1/events", json={"events": [paid("b"), paid("c")]}, headers=key).json()

    assert first == {"accepted": 2, "duplicates": 1, "errors": []}
    assert again == {"accepted": 1, "duplicates": 1, "errors": []}
    assert stored(db, ws.id) == 3


def test_same_key_in_two_workspaces_and_no_reading_across(client, make_workspace, make_key):
    a, b = make_workspace("A"), make_workspace("B")
    key_a, key_b = bearer(make_key(a)), bearer(make_key(b))

    assert (
        client.post("/api/v1/events", json={"events": [paid("o-1")]}, headers=key_a).json()["accepted"] == 1
    )
    assert (
        client.post("/api/v1/events", json={"events": [paid("o-1")]}, headers=key_b).json()["accepted"] == 1
    )

    b_event = client.get("/api/v1/events", headers=key_b).json()["items"][0]
    assert client.get(f"/api/v1/events/{b_event['id']}", headers=key_b).status_code == 200
    refused = client.get(f"/api/v1/events/{b_event['id']}", headers=key_a)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    assert [e["id"] for e in client.get("/api/v1/events", headers=key_a).json()["items"]] != [b_event["id"]]


def test_batch_limits_and_malformed_bodies_store_nothing(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))

    too_many = client.post(
        "/api/v1/events", json={"events": [paid(f"k{i}") for i in range(1001)]}, headers=key
    )
    empty = client.post("/api/v1/events", json={"events": []}, headers=key)
    malformed = client.post(
        "/api/v1/events", content=b'{"events": [', headers={**key, "content-type": "application/json"}
    )
    unknown = client.post("/api/v1/events", json={"events": [paid("x")], "dry_run": True}, headers=key)
    huge = client.post(
        "/api/v1/events",
        content=b'{"events": [' + b" " * (10 * 1024 * 1024) + b"]}",
        headers={**key, "content-type": "application/json"},
    )

    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "events"
    assert empty.status_code == 422
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    assert unknown.status_code == 422
    assert unknown.json()["error"] == {
        "code": "unknown_field",
        "message": "unknown field 'dry_run'",
        "field": "dry_run",
    }
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "too_large"
    assert stored(db, ws.id) == 0


def test_keys_need_the_events_scope(client, make_workspace, make_key):
    ws = make_workspace()
    reader = bearer(make_key(ws, scopes=["events:read"]))
    writer = bearer(make_key(ws, scopes=["events:write"]))

    assert client.post("/api/v1/events", json={"events": [paid("a")]}, headers=reader).status_code == 403
    assert client.post("/api/v1/events", json={"events": [paid("a")]}, headers=writer).status_code == 200
    assert client.post("/api/v1/events", json={"events": [paid("a")]}).status_code == 401


@pytest.mark.parametrize("query", [{"type": "order.paid"}, {"contact_id": 5}])
def test_list_filters_and_pages(client, make_workspace, make_key, query):
    ws = make_workspace()
    key = bearer(make_key(ws))
    batch = [paid(f"o-{i}", occurred_at=f"2026-03-0{i + 1}T00:00:00Z") for i in range(3)]
    batch += [
        {"type": "page.viewed", "contact_id": 5, "occurred_at": "2026-03-02T00:00:00Z"} for _ in range(3)
    ]
    client.post("/api/v1/events", json={"events": batch}, headers=key)

    first = client.get("/api/v1/events", params={**query, "limit": 2}, headers=key).json()
    second = client.get(
        "/api/v1/events", params={**query, "limit": 2, "cursor": first["next_cursor"]}, headers=key
    ).json()

    seen = first["items"] + second["items"]
    assert len(seen) == 3
    assert second["next_cursor"] is None
    assert len({e["id"] for e in seen}) == 3
    for e in seen:
        assert e["type"] == query.get("type", e["type"])
        assert e["contact_id"] == query.get("contact_id", e["contact_id"])


def test_time_range_is_since_inclusive_until_exclusive(client, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    batch = [paid(f"o-{d}", occurred_at=f"2026-03-0{d}T00:00:00Z") for d in (1, 2, 3)]
    client.post("/api/v1/events", json={"events": batch}, headers=key)

    r = client.get(
        "/api/v1/events",
        params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-03T00:00:00Z"},
        headers=key,
    )
    naive = client.get("/api/v1/events", params={"since": "2026-03-02T00:00:00"}, headers=key)

    assert [e["idempotency_key"] for e in r.json()["items"]] == ["o-2"]
    assert naive.status_code == 422


def test_nul_characters_and_non_object_bodies_are_refused(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    batch = [
        {"type": "page.viewed", "properties": {"path": "/a\u0000b"}},
        {"type": "page.viewed", "properties": {"path": "a literal \\u0000 is fine"}},
        {"type": "page.viewed", "identity": {"type": "email", "value": "\u0000"}},
    ]

    r = client.post("/api/v1/events", json={"events": batch}, headers=key)
    not_object = client.post("/api/v1/events", json=[1, 2], headers=key)

    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    assert [(e["index"], e["field"]) for e in r.json()["errors"]] == [(0, "properties.path"), (2, "identity.value")]
    assert not_object.status_code == 422
    assert not_object.json()["error"]["field"] == "body"
    assert stored(db, ws.id) == 1
