"""The broadcasts API: refusals by field, the life of a broadcast, its report and recipients, settings,
and the tracked short link."""

from __future__ import annotations

from sqlalchemy import select

from siyu.channels import service as channels
from siyu.core.models import Event
from siyu.core.tenancy import bind_workspace
from siyu.messaging import broadcast_sending, broadcasts
from siyu.messaging.broadcast_models import BroadcastLink
from tests.conftest import bearer
from tests.messaging.broadcasts.conftest import webhook_world


def _setup(db, make_workspace, make_key):
    ws = make_workspace("Tea")
    key = bearer(make_key(ws))
    account, segment, _people = webhook_world(db, ws.id)
    return key, account, segment


def test_bad_input_is_refused_with_the_field_and_changes_nothing(client, db, make_workspace, make_key):
    key, account, segment = _setup(db, make_workspace, make_key)
    body = {"name": "Hi", "account_id": account.id, "segment_id": segment.id,
            "content": {"type": "text", "text": "{{ nope }}"}}
    r = client.post("/api/v1/broadcasts", json=body, headers=key)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "content.text"
    r = client.post("/api/v1/broadcasts", json={**body, "segment_id": 999999,
                                                "content": {"text": "hi"}}, headers=key)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    assert client.get("/api/v1/broadcasts", headers=key).json()["items"] == []
    r = client.put("/api/v1/broadcast-settings", json={"caps": {"sms": {"day": -1}}}, headers=key)
    assert r.status_code == 422
    r = client.put("/api/v1/broadcast-settings", json={"quiet_start": "21:00"}, headers=key)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "quiet_end")


def test_a_broadcast_from_draft_to_report(client, db, make_workspace, make_key):
    key, account, segment = _setup(db, make_workspace, make_key)
    r = client.post("/api/v1/broadcasts", headers=key, json={
        "name": "Autumn tea", "account_id": account.id, "segment_id": segment.id,
        "content": {"type": "text", "text": "{{ nickname }}: https://shop.example.com/autumn?x=1 。"}})
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["status"] == "draft"
    r = client.post(f"/api/v1/broadcasts/{b['id']}/schedule", json={"at": "2099-01-01T09:00"}, headers=key)
    assert (r.status_code, r.json()["scheduled_at"]) == (200, "2099-01-01T01:00:00Z")  # Shanghai is UTC+8
    r = client.post(f"/api/v1/broadcasts/{b['id']}/pause", headers=key)
    assert (r.status_code, r.json()["error"]["field"]) == (409, "status")
    r = client.patch(f"/api/v1/broadcasts/{b['id']}", json={"name": "Autumn tea 2"}, headers=key)
    assert r.json()["name"] == "Autumn tea 2"
    r = client.post(f"/api/v1/broadcasts/{b['id']}/cancel", headers=key)
    assert r.json()["status"] == "cancelled"

    r = client.post("/api/v1/broadcasts", headers=key, json={
        "name": "Now", "account_id": account.id, "segment_id": segment.id,
        "content": {"text": "{{ nickname }}: https://shop.example.com/autumn?x=1 。"}})
    now = r.json()
    assert client.post(f"/api/v1/broadcasts/{now['id']}/send", headers=key).json()["status"] == "scheduled"
    # The worker's start and first chunk, run in this transaction (no deliver job runs: nothing is sent).
    bind_workspace(db, account.workspace_id)
    broadcast_sending.start_job(db, _ctx(broadcasts.get_broadcast(db, now["id"])))
    broadcast_sending.process_chunk(db, broadcasts.get_broadcast(db, now["id"]))
    db.commit()

    report = client.get(f"/api/v1/broadcasts/{now['id']}/report", headers=key).json()
    assert report["counts"]["queued"] == 2
    page = client.get(f"/api/v1/broadcasts/{now['id']}/recipients?status=queued", headers=key).json()
    assert len(page["items"]) == 2
    message = channels.get_message(db, page["items"][0]["message_id"])
    assert "https://shop.example.com" not in message.text
    assert "/l/" in message.text
    assert message.text.endswith(" 。")

    code = db.execute(select(BroadcastLink.code).where(BroadcastLink.message_id == message.id)).scalar_one()
    r = client.get(f"/l/{code}", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (302, "https://shop.example.com/autumn?x=1")
    client.get(f"/l/{code}", follow_redirects=False)
    db.expire_all()
    assert channels.get_message(db, message.id).status == "clicked"
    bind_workspace(db, account.workspace_id)
    clicks = db.execute(select(Event).where(Event.type == "link.clicked")).scalars().all()
    assert len(clicks) == 2
    assert clicks[0].contact_id == message.contact_id
    report = client.get(f"/api/v1/broadcasts/{now['id']}/report", headers=key).json()
    assert report["links"] == [{"url": "https://shop.example.com/autumn?x=1", "clicks": 2, "clicked_by": 1}]
    assert report["counts"]["clicked"] == 1
    assert client.get("/l/nosuchcode123", follow_redirects=False).status_code == 404
    assert client.delete(f"/api/v1/broadcasts/{now['id']}", headers=key).status_code == 409


def _ctx(b):
    from siyu.core.jobs import JobContext

    return JobContext(job_id=0, workspace_id=b.workspace_id, kind="broadcasts.start", idempotency_key="t",
                      attempt=1, payload={"broadcast_id": b.id, "seq": b.chunk_seq})
