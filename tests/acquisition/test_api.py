"""The acquisition REST API: sources and codes CRUD, bad input refused with the field and nothing written,
pause/resume, arrivals and the daily series, and another workspace's ids refused."""

from __future__ import annotations

from sqlalchemy import func, select

from siyu.acquisition.models import ChannelCode, Source
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer


def _key(db, ws, make_key):
    headers = bearer(make_key(ws))
    bind_workspace(db, ws.id)
    return headers


def test_sources_and_link_codes_through_the_api(db, ws, make_key, client):
    h = _key(db, ws, make_key)
    r = client.post("/api/v1/sources", headers=h, json={
        "name": "Parcel cards", "type": "parcel_card", "currency": "CNY",
        "cost_model": {"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000}})
    assert r.status_code == 201, r.text
    source = r.json()
    r = client.post("/api/v1/channel-codes", headers=h, json={
        "name": "June SMS", "source_id": source["id"], "kind": "link", "state": "june-sms",
        "target_url": "https://shop.example.com/june"})
    assert r.status_code == 201, r.text
    code = r.json()
    assert code["qr_content"].endswith("/c/june-sms")
    assert code["status"] == "active"

    assert client.post(f"/api/v1/channel-codes/{code['id']}/pause", headers=h).json()["status"] == "paused"
    assert client.get(f"/c/{code['state']}", follow_redirects=False).status_code == 302
    assert client.post(f"/api/v1/channel-codes/{code['id']}/resume", headers=h).json()["status"] == "active"
    arrivals = client.get(f"/api/v1/channel-codes/{code['id']}/arrivals", headers=h).json()
    assert [a["note"] for a in arrivals["items"]] == ["code_paused"]
    daily = client.get(f"/api/v1/channel-codes/{code['id']}/daily?days=7", headers=h).json()
    assert daily["scans"][-1] == 1
    assert len(daily["days"]) == 7

    r = client.patch(f"/api/v1/channel-codes/{code['id']}", headers=h, json={"target_url": "https://shop.example.com/july"})
    assert r.json()["target_url"] == "https://shop.example.com/july"
    assert r.json()["state"] == "june-sms"
    # A source with codes is archived, not deleted.
    r = client.delete(f"/api/v1/sources/{source['id']}", headers=h)
    assert r.status_code == 200
    assert r.json()["archived"] is True


def test_bad_input_is_refused_with_its_field_and_writes_nothing(db, ws, make_key, client):
    h = _key(db, ws, make_key)
    wrong_currency = client.post("/api/v1/sources", headers=h, json={
        "name": "Posters", "type": "store_poster", "currency": "CNY",
        "cost_model": {"kind": "fixed", "amount": 10000, "starts_on": "2026-01-01", "currency": "USD"}})
    assert (wrong_currency.status_code, wrong_currency.json()["error"]["field"]) == (422, "cost_model.currency")
    source = client.post("/api/v1/sources", headers=h, json={"name": "Posters", "type": "store_poster"}).json()
    staff = client.post("/api/v1/staff", headers=h, json={"name": "Li Si"}).json()

    long_state = client.post("/api/v1/channel-codes", headers=h, json={
        "name": "Poster", "source_id": source["id"], "kind": "link", "state": "s" * 31,
        "target_url": "https://e.example"})
    negative_cap = client.post("/api/v1/channel-codes", headers=h, json={
        "name": "Poster", "source_id": source["id"], "kind": "link", "target_url": "https://e.example",
        "members": [{"staff_id": staff["id"], "daily_cap": -1}]})
    bad_kind_member = client.post("/api/v1/channel-codes", headers=h, json={
        "name": "Poster", "source_id": source["id"], "kind": "link", "target_url": "https://e.example",
        "members": [{"staff_id": staff["id"], "hours": [{"days": [8], "start": "09:00", "end": "18:00"}]}]})

    assert (long_state.status_code, long_state.json()["error"]["field"]) == (422, "state")
    assert long_state.json()["error"]["code"] == "state_too_long"
    assert (negative_cap.status_code, negative_cap.json()["error"]["field"]) == (422, "members.0.daily_cap")
    assert bad_kind_member.json()["error"]["field"] == "members.0.hours.0.days"
    db.expire_all()
    assert db.execute(select(func.count()).select_from(ChannelCode)).scalar_one() == 0
    assert db.execute(select(func.count()).select_from(Source)).scalar_one() == 1


def test_another_workspace_can_neither_read_nor_change_nor_use(db, make_workspace, make_key, client):
    mine, theirs = make_workspace("Mine"), make_workspace("Theirs")
    h_theirs = _key(db, theirs, make_key)
    source = client.post("/api/v1/sources", headers=h_theirs, json={"name": "Live", "type": "live_stream"}).json()
    code = client.post("/api/v1/channel-codes", headers=h_theirs, json={
        "name": "Live link", "source_id": source["id"], "kind": "link", "target_url": "https://e.example"}).json()
    h_mine = _key(db, mine, make_key)

    assert client.get(f"/api/v1/sources/{source['id']}", headers=h_mine).status_code == 404
    assert client.get(f"/api/v1/channel-codes/{code['id']}", headers=h_mine).status_code == 404
    assert client.post(f"/api/v1/channel-codes/{code['id']}/pause", headers=h_mine).status_code == 404
    assert client.get(f"/api/v1/channel-codes/{code['id']}/arrivals", headers=h_mine).status_code == 404
    assert client.post("/api/v1/channel-codes", headers=h_mine, json={
        "name": "Borrowed", "source_id": source["id"], "kind": "link",
        "target_url": "https://e.example"}).json()["error"]["field"] == "source_id"
    assert client.get("/api/v1/channel-codes", headers=h_mine).json() == []
