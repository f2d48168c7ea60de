"""A worker killed with SIGKILL in the middle of a broadcast chunk, or right after a send whose done
mark never committed: after recovery everybody got the broadcast, and nobody got it twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from siyu.channels import service as channels
from siyu.contacts import segments
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace
from siyu.core.workspaces import create_workspace
from siyu.messaging import broadcast_report, broadcasts
from tests.core.test_worker_crash import LEASE, ROOT, finish
from tests.servers import serve
from tests.support import fresh_database

AUDIENCE = 30
ACTOR = Actor.cli("pytest")


@dataclass
class Endpoint:
    """The brand's webhook endpoint: dedupes on Idempotency-Key as the webhook contract asks."""

    url: str = ""
    calls: Counter[str] = field(default_factory=Counter)
    effects: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()

    async def receive(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        key = request.headers["Idempotency-Key"]
        with e.lock:
            e.calls[key] += 1
            if e.calls[key] == 1:
                e.effects[int(body["contact_id"])] += 1
        return JSONResponse({"id": key})

    with serve(Starlette(routes=[Route("/in", receive, methods=["POST"])])) as base:
        e.url = base + "/in"
        yield e


def _load(url: str, endpoint: Endpoint) -> tuple[int, int, list[int]]:
    engine = make_engine(url)
    with Session(engine) as session:
        ws = create_workspace(session, ACTOR, name="Crash tea")
        bind_workspace(session, ws.id)
        account = channels.create_account(session, kind="webhook", name="App", config={"url": endpoint.url},
                                          secrets={"secret": "s" * 20}, actor=ACTOR)
        ids = [contacts.create_contact(session, fields={"nickname": f"n{i}"}, actor=ACTOR).id for i in range(AUDIENCE)]
        segment = segments.create_segment(session, name="All", kind="static", actor=ACTOR)
        segments.add_members(session, segment, contact_ids=ids, actor=ACTOR)
        b = broadcasts.create_broadcast(session, name="Autumn", account_id=account.id, segment_id=segment.id,
                                        content={"type": "text", "text": "{{ nickname }}, autumn tea"}, actor=ACTOR)
        broadcasts.schedule(session, b, at=None, actor=ACTOR)
        session.commit()
        result = ws.id, b.id, ids
    engine.dispose()
    return result


def _worker(url: str, *, faults: str = "", offset: int = 0) -> tuple[int, str]:
    """A burst worker process running the broadcast jobs with small chunks."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SIYU_DATABASE_URL": url,
           "SIYU_JOB_MODULES": "tests.messaging.broadcasts.crash_support", "SIYU_FAULTS": faults,
           "SIYU_CLOCK_OFFSET_SECONDS": str(offset), "SIYU_WORKER_LEASE_SECONDS": str(LEASE)}
    proc = subprocess.Popen([sys.executable, "-m", "siyu.core.worker", "--burst", "--batch-size", "4"], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return finish(proc)


@pytest.mark.parametrize("faults", ["broadcasts.mid_chunk:2", "jobs.after_external:7"])
def test_a_killed_worker_loses_nobody_and_sends_nobody_twice(endpoint, faults):
    with fresh_database() as url:
        workspace_id, broadcast_id, ids = _load(url, endpoint)
        code, log = _worker(url, faults=faults)
        assert code == -signal.SIGKILL, log
        assert len(endpoint.effects) < AUDIENCE
        # The recovery worker's clock runs past the dead worker's leases and the finish check's minute.
        code, log = _worker(url, offset=LEASE + 60)
        assert code == 0, log

        engine = make_engine(url)
        with Session(engine) as session:
            bind_workspace(session, workspace_id)
            b = broadcasts.get_broadcast(session, broadcast_id)
            counts = broadcast_report.status_counts(session, b)
            per_contact = dict(session.execute(select(Message.contact_id, func.count()).where(
                Message.origin == f"broadcast:{broadcast_id}").group_by(Message.contact_id)).all())
            status = b.status
        engine.dispose()

    assert per_contact == dict.fromkeys(ids, 1)
    assert endpoint.effects == Counter(dict.fromkeys(ids, 1))
    assert counts["sent"] == AUDIENCE
    assert status == "done"
