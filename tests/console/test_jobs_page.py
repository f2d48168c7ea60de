"""The background jobs page: parked and unknown jobs are shown and wait for a person's decision."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.core import clock
from siyu.core.models import AuditEntry, Job
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import post, sign_in


@pytest.fixture
def owner(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com")
    assert sign_in(client, "owner@example.com").status_code == 303
    return ws


def _job(db, ws, key: str, status: str, error: str | None = None) -> Job:
    bind_workspace(db, ws.id)
    job = Job(kind="sms.send", idempotency_key=key, status=status, attempts=1, last_error=error,
              external_started_at=clock.now() if status == "unknown" else None)
    db.add(job)
    db.commit()
    bind_workspace(db, None)
    return job


def test_jobs_are_listed_by_status_with_counts_on_the_dashboard(client, db, owner):
    _job(db, owner, "a", "done")
    _job(db, owner, "b", "parked", "gave up after 8 attempts: provider said 500")
    _job(db, owner, "c", "unknown", "the call may have reached its target")

    everything = client.get("/console/jobs").text
    parked = client.get("/console/jobs", params={"status": "parked"}).text
    dashboard = client.get("/console").text

    assert "gave up after 8 attempts" in everything
    assert "may have reached" in everything
    assert "gave up after 8 attempts" in parked
    assert "may have reached" not in parked
    assert 'href="/console/jobs?status=unknown">Outcome unknown</a></dt><dd>1</dd>' in dashboard
    assert client.get("/console/jobs", params={"status": "bogus"}).status_code == 422


def test_an_unknown_job_is_resolved_only_with_a_note_and_audited(client, db, owner):
    job = _job(db, owner, "c", "unknown")

    refused = post(client, f"/console/jobs/{job.id}/resolve", {"note": "  "})
    db.expire_all()
    assert refused.status_code == 422
    assert f'id="note-{job.id}-error"' in refused.text
    assert db.get(Job, job.id).status == "unknown"

    done = post(client, f"/console/jobs/{job.id}/resolve", {"note": "provider log shows it was delivered"})
    db.expire_all()
    assert done.status_code == 303
    assert db.get(Job, job.id).status == "done"
    bind_workspace(db, owner.id)
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "job.resolve")).scalar_one()
    assert entry.actor_label == "owner@example.com"
    assert entry.via == "console"


def test_a_parked_job_runs_again_but_a_done_one_cannot(client, db, owner):
    parked = _job(db, owner, "p", "parked", "boom")
    done = _job(db, owner, "d", "done")

    assert post(client, f"/console/jobs/{parked.id}/retry").status_code == 303
    again = post(client, f"/console/jobs/{done.id}/retry")

    db.expire_all()
    assert db.get(Job, parked.id).status == "pending"
    assert db.get(Job, parked.id).attempts == 0
    assert again.status_code == 409
    assert "Only parked jobs" in again.text
    assert db.get(Job, done.id).status == "done"


def test_another_workspaces_job_is_not_found(client, db, owner, make_workspace):
    other = make_workspace("Other")
    theirs = _job(db, other, "x", "unknown")

    assert post(client, f"/console/jobs/{theirs.id}/resolve", {"note": "mine now"}).status_code == 404
    db.expire_all()
    assert db.get(Job, theirs.id).status == "unknown"


def test_an_analyst_cannot_open_the_jobs_page(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, "analyst", email="ana@example.com")
    sign_in(client, "ana@example.com")
    assert client.get("/console/jobs").status_code == 403
