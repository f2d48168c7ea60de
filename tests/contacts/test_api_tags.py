"""The tags, rules, staff and lifecycle endpoints: thin handlers over the services, one error shape."""

from __future__ import annotations

import pytest

from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer
from tests.contacts.tag_support import add_contacts


@pytest.fixture
def shop(db, make_workspace, make_key):
    ws = make_workspace("Tea Shop")
    return ws, bearer(make_key(ws, ["contacts:write"]))


def test_groups_tags_and_bulk_tagging_through_the_api(client, db, shop):
    ws, key = shop
    group = client.post("/api/v1/tag-groups", json={"name": "Interest 兴趣"}, headers=key)
    assert group.status_code == 201, group.text
    tag = client.post("/api/v1/tags", json={"group_id": group.json()["id"], "name": "Tea", "color": "#1f8a70"},
                      headers=key)
    assert tag.status_code == 201, tag.text
    ids = add_contacts(db, ws.id, 3)
    db.commit()
    bind_workspace(db, None)

    added = client.post("/api/v1/tags/bulk", json={"action": "add", "contact_ids": ids, "tag_ids": [tag.json()["id"]]},
                        headers=key)
    again = client.post("/api/v1/tags/bulk", json={"action": "add", "contact_ids": ids[:1],
                                                  "tag_ids": [tag.json()["id"]]}, headers=key)
    listed = client.get("/api/v1/tags", headers=key)
    clash = client.post("/api/v1/tag-groups", json={"name": "Interest 兴趣"}, headers=key)
    missing = client.post("/api/v1/tags/bulk", json={"action": "remove", "contact_ids": [10**12],
                                                    "tag_ids": [tag.json()["id"]]}, headers=key)

    assert added.json() == {"changed": 3, "unchanged": 0}
    assert again.json() == {"changed": 0, "unchanged": 1}
    assert [(t["name"], t["contact_count"]) for t in listed.json()] == [("Tea", 3)]
    assert clash.status_code == 409
    assert clash.json()["error"]["field"] == "name"
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "contact_ids"


def test_a_rule_with_a_bad_op_is_refused_naming_the_condition(client, shop):
    _, key = shop
    group = client.post("/api/v1/tag-groups", json={"name": "Stage"}, headers=key).json()
    tag = client.post("/api/v1/tags", json={"group_id": group["id"], "name": "VIP"}, headers=key).json()
    rule = {"name": "Big spenders", "trigger": "event", "add_tag_ids": [tag["id"]],
            "config": {"event_type": "order.paid", "conditions": [{"property": "amount", "op": "gte", "value": 50000}]}}

    created = client.post("/api/v1/tag-rules", json=rule, headers=key)
    bad = client.post("/api/v1/tag-rules", json={**rule, "config": {
        "event_type": "order.paid", "conditions": [{"property": "amount", "op": "bigger", "value": 1}]}}, headers=key)
    paused = client.patch(f"/api/v1/tag-rules/{created.json()['id']}", json={"active": False}, headers=key)

    assert created.status_code == 201, created.text
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "config.conditions[0].op"
    assert paused.json()["active"] is False
    assert {"event", "segment_entered"} <= set(client.get("/api/v1/tag-rules/triggers", headers=key).json())


def test_staff_handover_and_lifecycle_through_the_api(client, db, shop):
    ws, key = shop
    leaving = client.post("/api/v1/staff", json={"name": "Li Lei", "wecom_userid": "lilei"}, headers=key).json()
    taking = client.post("/api/v1/staff", json={"name": "Han Meimei"}, headers=key).json()
    add_contacts(db, ws.id, 2, owner_id=leaving["id"])
    db.commit()
    bind_workspace(db, None)

    refused = client.patch(f"/api/v1/staff/{leaving['id']}", json={"active": False}, headers=key)
    moved = client.post(f"/api/v1/staff/{leaving['id']}/handover",
                        json={"to_staff_id": taking["id"], "reason": "leaving"}, headers=key)
    history = client.get("/api/v1/handovers", headers=key).json()
    staff = {s["name"]: (s["active"], s["contact_count"]) for s in client.get("/api/v1/staff", headers=key).json()}
    rules = client.put("/api/v1/lifecycle", json={"dormant_days": 30, "churned_days": 20}, headers=key)
    saved = client.put("/api/v1/lifecycle", json={"dormant_days": 30, "churned_days": 90}, headers=key)

    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "active"
    assert moved.status_code == 201
    assert moved.json()["contact_count"] == 2
    assert [h["id"] for h in history["items"]] == [moved.json()["id"]]
    assert staff == {"Li Lei": (False, 0), "Han Meimei": (True, 2)}
    assert rules.status_code == 422
    assert rules.json()["error"]["field"] == "churned_days"
    assert saved.json()["dormant_days"] == 30
    assert saved.json()["stages"]["new"] == 2


def test_reading_needs_a_contacts_scope(client, make_workspace, make_key):
    key = bearer(make_key(make_workspace("Other"), ["events:write"]))
    assert client.get("/api/v1/tags", headers=key).status_code == 403


def test_rfm_scores_and_order_figures_reach_the_api(client, db, shop):
    from siyu.contacts import lifecycle
    from siyu.core.events import record_events

    ws, key = shop
    big, small, browser = add_contacts(db, ws.id, 3)
    orders = [(big, "b1", 9000), (big, "b2", 6000), (small, "s1", 1000)]
    record_events(db, [
        {"type": "order.paid", "contact_id": cid, "idempotency_key": oid,
         "properties": {"order_id": oid, "amount": amount, "currency": "CNY",
                        "items": [{"sku": "TEA", "qty": 1, "price": amount}]}}
        for cid, oid, amount in orders
    ])
    lifecycle.refresh_lifecycle(db)
    db.commit()
    bind_workspace(db, None)

    top = client.get(f"/api/v1/contacts/{big}", headers=key).json()
    idle = client.get(f"/api/v1/contacts/{browser}", headers=key).json()
    overview = client.get("/api/v1/lifecycle", headers=key).json()

    assert (top["order_count"], top["revenue"], top["stage"]) == (2, 15000, "repeat")
    assert (top["rfm_frequency"], top["rfm_monetary"]) == (5, 5)
    assert top["first_order_at"] is not None
    assert (idle["order_count"], idle["rfm_recency"]) == (0, None)
    # Two buyers scored; the browser has no score.
    assert sum(overview["rfm"]["monetary"].values()) == 2
    assert overview["rfm"]["monetary"]["5"] == 1
