"""The group codes' REST API and console pages: create, read, series, pause; another workspace's key
gets 404 for these ids."""

from __future__ import annotations

from siyu.acquisition.group_models import CustomerGroup
from tests.conftest import bearer


def test_a_group_code_through_the_api_and_the_pages(db, ws, account, fake, client, make_key, make_workspace):
    fake.add_group("wrApi1", name="会员群")
    group = CustomerGroup(account_id=account.id, chat_id="wrApi1", name="会员群", status="active", member_count=3)
    db.add(group)
    db.commit()
    key = bearer(make_key(ws))

    made = client.post("/api/v1/group-codes", headers=key, json={
        "name": "会员群码", "account_id": account.id, "state": "vip-card", "group_ids": [group.id],
        "welcome": {"text": "欢迎入群"}})
    assert made.status_code == 201, made.text
    code = made.json()
    assert (code["state"], code["status"], [g["chat_id"] for g in code["groups"]]) == ("vip-card", "active",
                                                                                       ["wrApi1"])
    assert code["qr_url"]
    assert code["welcome_template_id"] in fake.group_welcome_templates
    too_many = client.post("/api/v1/group-codes", headers=key, json={
        "name": "x", "account_id": account.id, "state": "x", "group_ids": [1, 2, 3, 4, 5, 6]})
    assert too_many.status_code == 422
    long_state = client.post("/api/v1/group-codes", headers=key, json={
        "name": "y", "account_id": account.id, "state": "s" * 31, "group_ids": [group.id]})
    assert long_state.status_code == 422
    assert len(fake.join_ways) == 1

    paused = client.post(f"/api/v1/group-codes/{code['id']}/status", headers=key, json={"status": "paused"})
    assert paused.json()["status"] == "paused"
    series = client.get(f"/api/v1/group-codes/{code['id']}/series?days=7", headers=key).json()
    assert len(series["labels"]) == 7
    assert series["joins"] == [0] * 7
    assert [g["member_count"] for g in client.get("/api/v1/customer-groups", headers=key).json()] == [3]

    other = bearer(make_key(make_workspace("Other")))
    assert client.get(f"/api/v1/group-codes/{code['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/customer-groups/{group.id}/series", headers=other).status_code == 404
    assert client.get("/api/v1/group-codes", headers=other).json() == []
    assert client.delete(f"/api/v1/group-codes/{code['id']}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/group-codes/{code['id']}", headers=key).status_code == 204
    assert fake.join_ways == {}
