"""Workers killed with SIGKILL mid-batch lose nothing and do nothing twice.

Worker processes (`python -m siyu.core.worker --burst`) import this module through SIYU_JOB_MODULES,
so the handlers below are what they run. SIYU_FAULTS makes a worker kill itself at the Nth pass of a
named point; a recovery worker whose clock runs ahead of the lease then finishes what was left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from siyu.core import clock, jobs
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.workspaces import create_workspace
from tests.support import fresh_database

ROOT = Path(__file__).resolve().parents[2]
LEASE = 60
EFFECT, SEND, SEND_IDEM = "crash.effect", "crash.send", "crash.send_idem"
KINDS = (EFFECT, SEND, SEND_IDEM)


@jobs.handler(EFFECT)
def _effect(session: Session, ctx: jobs.JobContext) -> None:
    session.execute(text("INSERT INTO crash_effects (job_id, idempotency_key) VALUES (:j, :k)"),
                    {"j": ctx.job_id, "k": ctx.idempotency_key})


@jobs.handler(SEND, external=True)
def _send(_session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    url = f"{ctx.payload['url']}/send"
    r = httpx.post(url, json={"key": ctx.idempotency_key}, timeout=10, trust_env=False)
    r.raise_for_status()
    return {"status": r.status_code}


@jobs.handler(SEND_IDEM, external=True, accepts_idempotency_key=True)
def _send_idem(_session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    r = httpx.post(f"{ctx.payload['url']}/idem", headers={"Idempotency-Key": ctx.idempotency_key}, timeout=10,
                   trust_env=False)
    r.raise_for_status()
    return {"status": r.status_code}


@dataclass
class Target:
    """A stand-in for an SMS gateway: /send repeats what it is asked; /idem dedupes by Idempotency-Key."""

    url: str = ""
    sends: Counter[str] = field(default_factory=Counter)
    idem_calls: Counter[str] = field(default_factory=Counter)
    idem_effects: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with t.lock:
                if self.path == "/send":
                    t.sends[json.loads(body)["key"]] += 1
                else:
                    key = self.headers["Idempotency-Key"]
                    t.idem_calls[key] += 1
                    if key not in t.idem_effects:
                        t.idem_effects[key] = 1
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield t
    server.shutdown()
    server.server_close()


def load(url: str, target: Target, n: int) -> None:
    """A workspace, the effects table, and n jobs cycling through the three kinds, due in order."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE crash_effects (job_id INTEGER NOT NULL, idempotency_key TEXT)"))
    with Session(engine) as session:
        ws = create_workspace(session, Actor.cli("pytest"), name="Crash")
        start = clock.now() - timedelta(seconds=n + 1)
        for i in range(n):
            kind = KINDS[i % 3]
            jobs.enqueue(session, kind, f"job-{i + 1}", {"url": target.url}, workspace_id=ws.id,
                         run_at=start + timedelta(seconds=i))
        session.commit()
    engine.dispose()


def spawn(
    url: str, *, faults: str = "", offset: int = 0, batch: int = 4, args: tuple[str, ...] = ("--burst",)
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SIYU_DATABASE_URL": url,
        "SIYU_JOB_MODULES": __name__,
        "SIYU_FAULTS": faults,
        "SIYU_CLOCK_OFFSET_SECONDS": str(offset),
        "SIYU_WORKER_LEASE_SECONDS": str(LEASE),
    }
    return subprocess.Popen([sys.executable, "-m", "siyu.core.worker", *args, "--batch-size", str(batch)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=240)
    return proc.returncode, out.decode(errors="replace")


@dataclass(frozen=True)
class Outcome:
    status: dict[str, str]  # key -> status
    kind: dict[str, str]
    effects: Counter[str]


def outcome(url: str) -> Outcome:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT idempotency_key, kind, status FROM jobs")).all()
        effects = Counter(k for (k,) in conn.execute(text("SELECT idempotency_key FROM crash_effects")))
    engine.dispose()
    return Outcome({k: s for k, _, s in rows}, {k: kind for k, kind, _ in rows}, effects)


def check_nothing_lost_nothing_twice(result: Outcome, target: Target) -> list[str]:
    """The invariants of every crash; returns the keys left unknown."""
    unknown = [k for k, s in result.status.items() if s == "unknown"]
    assert {s for s in result.status.values()} <= {"done", "unknown"}, result.status
    assert all(result.kind[k] == SEND for k in unknown), "only a non-idempotent external job may be unknown"
    for key, kind in result.kind.items():
        if kind == EFFECT:
            assert result.effects[key] == 1, f"{key} had its database effect {result.effects[key]} times"
        elif kind == SEND:
            assert target.sends[key] <= 1, f"{key} was sent {target.sends[key]} times"
            if result.status[key] == "done":
                assert target.sends[key] == 1, f"{key} is done but was never sent"
        else:
            assert target.idem_effects[key] == 1, f"{key} took effect {target.idem_effects[key]} times"
    return unknown


# (fault, calls the unknown job received, or None when no job may be left unknown). Jobs run in the
# order job-1 effect, job-2 send, job-3 send_idem, job-4 effect, ... four to a batch.
SCENARIOS = [
    ("jobs.after_claim:2", None),  # jobs 5-8 claimed by a dead worker
    ("jobs.before_handler:6", None),  # killed between job 5 and job 6
    ("jobs.before_external:2", 0),  # job-5's start committed, the call never made
    ("jobs.after_external:3", 1),  # job-5 sent, its done mark never committed
    ("jobs.after_external:4", None),  # job-6 sent to the deduping target, then sent again
    ("jobs.before_done:4", None),  # job-4's database effect rolled back with the worker
    ("jobs.after_done:7", None),  # job-7 done, the worker dies holding job-8
]


@pytest.mark.parametrize(("faults", "unknown_calls"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_worker_killed_at_a_fault_point_loses_nothing_and_repeats_nothing(target, faults, unknown_calls):
    with fresh_database() as url:
        load(url, target, 12)

        killed, log = finish(spawn(url, faults=faults))
        assert killed == -signal.SIGKILL, log
        before_recovery = outcome(url)
        assert "pending" in before_recovery.status.values() or "running" in before_recovery.status.values()

        code, log = finish(spawn(url, offset=LEASE + 60))
        assert code == 0, log
        result = outcome(url)

    unknown = check_nothing_lost_nothing_twice(result, target)
    if unknown_calls is None:
        assert unknown == []
    else:
        assert unknown == ["job-5"]
        assert target.sends["job-5"] == unknown_calls
    if faults == "jobs.after_external:4":
        assert target.idem_calls["job-6"] == 2


@pytest.mark.postgres_only
def test_four_workers_killed_repeatedly_over_hundreds_of_jobs_do_nothing_twice(target):
    with fresh_database() as url:
        load(url, target, 300)
        kills = 0
        rounds = [
            ["jobs.before_done:13", "jobs.after_external:9", "jobs.after_claim:6", "jobs.after_done:21"],
            ["jobs.before_external:5", "jobs.before_handler:17", "jobs.before_done:8",
             "jobs.after_external:14"],
            ["", "jobs.after_done:30", "jobs.before_done:25", ""],
        ]
        for i, plan in enumerate(rounds):
            procs = [spawn(url, faults=f, offset=i * (LEASE + 60), batch=5) for f in plan]
            for proc in procs:
                code, log = finish(proc)
                assert code in (0, -signal.SIGKILL), log
                kills += code == -signal.SIGKILL
        code, log = finish(spawn(url, offset=len(rounds) * (LEASE + 60)))
        assert code == 0, log
        result = outcome(url)

    assert kills >= 6
    check_nothing_lost_nothing_twice(result, target)
    assert sum(result.effects.values()) == 100
    assert len(target.idem_effects) == 100


def test_sigterm_stops_a_worker_cleanly_and_several_processes_share_the_work(target):
    with fresh_database() as url:
        load(url, target, 12)
        steady = spawn(url, args=())
        while set(outcome(url).status.values()) != {"done"}:
            time.sleep(0.05)
        steady.send_signal(signal.SIGTERM)
        code, log = finish(steady)
        assert code == 0, log
        assert "stopped after 12 jobs" in log

        load_more = make_engine(url)
        with Session(load_more) as session:
            for i in range(12):
                jobs.enqueue(session, EFFECT, f"more-{i}", {})
            session.commit()
        load_more.dispose()
        code, log = finish(spawn(url, args=("--burst", "--processes", "2")))
        assert code == 0, log
        result = outcome(url)

    assert set(result.status.values()) == {"done"}
    assert all(n == 1 for n in result.effects.values())
    assert len(result.effects) == 4 + 12


def test_in_process_worker_runs_with_the_app_and_stops_with_it(target):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import sessionmaker

    from siyu.core.worker import attach_in_process_worker

    with fresh_database() as url:
        load(url, target, 3)
        engine = make_engine(url)
        factory = sessionmaker(engine.execution_options(sqlite_immediate=True), expire_on_commit=False)

        @contextmanager
        def sessions() -> Iterator[Session]:
            with factory() as s, s.begin():
                yield s

        app = FastAPI()
        attach_in_process_worker(app, sessions=sessions, poll_seconds=0.05)
        with TestClient(app):
            thread = app.state.worker_thread
            assert thread.is_alive()
            while outcome(url).status != dict.fromkeys(("job-1", "job-2", "job-3"), "done"):
                time.sleep(0.05)
        thread.join(timeout=0)
        engine.dispose()
        result = outcome(url)

    assert not thread.is_alive()
    assert set(result.status.values()) == {"done"}
    assert dict(result.effects) == {"job-1": 1}

