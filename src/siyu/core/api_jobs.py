"""REST endpoints of background work: see jobs, retry parked or unknown ones, resolve unknown ones."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from siyu.core import jobs
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page, Strict

router = APIRouter()
JobsRead = Annotated[Auth, Depends(api_auth("jobs", "read"))]
JobsWrite = Annotated[Auth, Depends(api_auth("jobs", "write"))]


class JobOut(BaseModel):
    """A job and where it stands; `last_error` says why it is parked, unknown or being retried."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    idempotency_key: str
    status: str
    payload: dict[str, Any]
    run_at: datetime
    attempts: int
    max_attempts: int
    lease_until: datetime | None
    locked_by: str | None
    external_started_at: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None


class JobResolve(Strict):
    note: str = Field(min_length=1, max_length=2000, description="What you checked: the effect did happen.")


@router.get("/jobs", tags=["jobs"])
def list_jobs(
    auth: JobsRead, session: SessionDep, status: str | None = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[JobOut]:
    """The workspace's jobs, newest first; `status=unknown` lists those waiting for a person."""
    rows, nxt = jobs.list_jobs(session, status=status, cursor=cursor, limit=limit)
    return Page[JobOut](items=[JobOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.get("/jobs/counts", tags=["jobs"])
def job_counts(auth: JobsRead, session: SessionDep) -> dict[str, int]:
    """How many jobs are in each status."""
    return jobs.job_counts(session)


@router.get("/jobs/{job_id}", tags=["jobs"])
def read_job(job_id: int, auth: JobsRead, session: SessionDep) -> JobOut:
    """One job."""
    return JobOut.model_validate(jobs.get_job_by_id(session, job_id))


@router.post("/jobs/{job_id}/retry", tags=["jobs"])
def retry_job(job_id: int, auth: JobsWrite, session: SessionDep) -> JobOut:
    """Run a parked or unknown job again (for unknown: you checked that its effect did not happen)."""
    job = jobs.get_job_by_id(session, job_id)
    return JobOut.model_validate(jobs.retry_job(session, auth.actor, job))


@router.post("/jobs/{job_id}/resolve", tags=["jobs"])
def resolve_job(job_id: int, body: JobResolve, auth: JobsWrite, session: SessionDep) -> JobOut:
    """Close an unknown job as done: you checked that its effect did happen."""
    job = jobs.get_job_by_id(session, job_id)
    return JobOut.model_validate(jobs.resolve_job(session, auth.actor, job, note=body.note))
