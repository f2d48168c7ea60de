"""The jobs REST API: a person sees parked and unknown jobs, retries or resolves them, and it is audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from siyu.core import jobs
from siyu.core.models import Job
from tests.conftest import bearer


def put(db: Session, ws: Any, key: str, status: str = "pending", **values: Any) -> int:
    jobs.enqueue(db, "api.test", key, {"to": key}, workspace_id=ws.id)
    job = jobs.get_job(db, "api.test", key)
    assert job is not None
    db.execute(update(Job).where(Job.id == job.id).values(status=status, **values))
    db.commit()
    return job.id


def audit(client: Any, key: dict[str, str], action: str) -> list[dict[str, Any]]:
    return client.get("/api/v1/audit-log", params={"action": action}, headers=key).json()["items"]


def test_list_filters_by_status_and_pages_newest_first(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    ids = [put(db, ws, f"k{i}", "parked" if i % 2 else "done") for i in range(5)]

    parked = client.get("/api/v1/jobs", params={"status": "parked"}, headers=key).json()
    first = client.get("/api/v1/jobs", params={"limit": 2}, headers=key).json()
    nxt = {"limit": 2, "cursor": first["next_cursor"]}
    second = client.get("/api/v1/jobs", params=nxt, headers=key).json()
    bad = client.get("/api/v1/jobs", params={"status": "sleeping"}, headers=key)

    assert [j["id"] for j in parked["items"]] == [ids[3], ids[1]]
    assert [j["id"] for j in first["items"] + second["items"]] == ids[::-1][:4]
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "status")
    counts = client.get("/api/v1/jobs/counts", headers=key).json()
    assert counts == {"pending": 0, "running": 0, "done": 3, "parked": 2, "unknown": 0}


def test_retry_parked_job_starts_it_over_and_is_audited(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws))
    job_id = put(db, ws, "k1", "parked", attempts=8, last_error="gave up after 8 attempts: boom")

    r = client.post(f"/api/v1/jobs/{job_id}/retry", headers=key)

    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    [entry] = audit(client, key, "job.retry")
    assert entry["entity_id"] == str(job_id)
    assert entry["before"]["status"] == "parked"
    assert entry["after"]["status"] == "pending"
    again = client.post(f"/api/v1/jobs/{job_id}/retry", headers=key)
    assert again.status_code == 409


def test_resolve_unknown_job_needs_a_note_and_records_who(client, db, make_workspace, make_key):
    ws = make_workspace()
    key = bearer(make_key(ws, name="ops"))
    job_id = put(db, ws, "k1", "unknown", last_error="the worker stopped after starting the external call")
    pending_id = put(db, ws, "k2", "pending")

    blank = client.post(f"/api/v1/jobs/{job_id}/resolve", json={"note": "   "}, headers=key)
    not_unknown = client.post(f"/api/v1/jobs/{pending_id}/resolve", json={"note": "sent"}, headers=key)
    note = {"note": "SMS log shows it was delivered"}
    r = client.post(f"/api/v1/jobs/{job_id}/resolve", json=note, headers=key)

    assert (blank.status_code, blank.json()["error"]["field"]) == (422, "note")
    assert not_unknown.status_code == 409
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "done"
    assert r.json()["result"]["note"] == "SMS log shows it was delivered"
    [entry] = audit(client, key, "job.resolve")
    assert entry["actor_label"].startswith("API key ops")
    assert (entry["before"]["status"], entry["after"]["status"]) == ("unknown", "done")


def test_jobs_of_another_workspace_are_not_found(client, db, make_workspace, make_key):
    mine, theirs = make_workspace("Mine"), make_workspace("Theirs")
    key = bearer(make_key(mine))
    their_job = put(db, theirs, "k1", "parked")

    assert client.get(f"/api/v1/jobs/{their_job}", headers=key).status_code == 404
    assert client.get(f"/api/v1/jobs/{2**64}", headers=key).status_code == 404
    assert client.post(f"/api/v1/jobs/{their_job}/retry", headers=key).status_code == 404
    resolve = client.post(f"/api/v1/jobs/{their_job}/resolve", json={"note": "x"}, headers=key)
    assert resolve.status_code == 404
    assert client.get("/api/v1/jobs", headers=key).json()["items"] == []
    assert client.get("/api/v1/jobs/counts", headers=key).json()["parked"] == 0
    db.expire_all()
    assert db.get(Job, their_job).status == "parked"


def test_read_scope_sees_jobs_but_cannot_retry(client, db, make_workspace, make_key):
    ws = make_workspace()
    reader = bearer(make_key(ws, scopes=["jobs:read"]))
    outsider = bearer(make_key(ws, scopes=["contacts:write"]))
    job_id = put(db, ws, "k1", "parked")

    assert client.get(f"/api/v1/jobs/{job_id}", headers=reader).json()["payload"] == {"to": "k1"}
    assert client.post(f"/api/v1/jobs/{job_id}/retry", headers=reader).status_code == 403
    assert client.get("/api/v1/jobs", headers=outsider).status_code == 403
