"""A broadcast to the local test channel on PostgreSQL, caps and quiet hours on, against the adapter's raw
send rate measured in the same run.

    uv run python bench/bench_broadcast.py              # SCALE=small: 2,000 messages
    SCALE=full uv run python bench/bench_broadcast.py   # 1,000,000 messages

A fresh database of its own is migrated; contacts and their static segment are loaded with COPY. A
`webhook` account points at a local receiving server in a process of its own (it checks nothing and
answers 200, as a brand's endpoint would). The broadcast is sent now, with a cap on every channel and
quiet hours set (away from the run's hours, so nothing waits until morning: each recipient still goes
through the cap and quiet-hour arithmetic), by ONE worker process (`python -m siyu.core.worker --burst`):
start, chunks of 500 (render, links, consent, caps, archive row, deliver job), then every deliver job
(the signed HTTP POST and its status). messages/s is sent messages over the time from the start job to
the last message sent. The raw rate is the same adapter's `send` called in a loop against the same
server from one thread. Results go to docs/benchmarks_broadcast.md.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import platform
import secrets
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.webhook import ADAPTER
from siyu.contacts import segments
from siyu.conversations.models import Message
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace
from siyu.core.workspaces import create_workspace
from siyu.messaging import broadcasts, caps

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SCALE", "small")
MESSAGES = {"small": 2_000, "medium": 20_000, "full": 1_000_000}[SCALE]
RAW_SENDS = min(MESSAGES, 2_000)
PG_ADMIN = os.environ.get("SIYU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ACTOR = Actor.cli("bench")
TEXT = "{{ nickname | default('朋友') }}，秋季新茶到了：https://shop.example.com/autumn"


def _receiver(port: int) -> None:
    """The brand's endpoint: answers every signed POST with an id."""
    sys.path.insert(0, str(ROOT))  # the local test servers live under tests/
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from tests.servers import serve

    count = 0

    async def receive(request: Request) -> JSONResponse:
        nonlocal count
        await request.body()
        count += 1
        return JSONResponse({"id": f"r{count}"})

    with serve(Starlette(routes=[Route("/in", receive, methods=["POST"])]), port=port):
        while True:
            time.sleep(3600)


def load(url: str, ws: int, segment_id: int) -> None:
    """MESSAGES contacts and the segment's members, through COPY."""
    now = datetime.now(UTC).isoformat()
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY contacts (workspace_id, nickname, attributes, do_not_contact, stage, order_count, "
                          "revenue, created_at, updated_at) FROM STDIN") as copy:
                buf = io.StringIO()
                for i in range(MESSAGES):
                    buf.write(f"{ws}\t客户{i}\t{{}}\tf\tnew\t0\t0\t{now}\t{now}\n")
                    if i % 50_000 == 49_999:
                        copy.write(buf.getvalue())
                        buf = io.StringIO()
                copy.write(buf.getvalue())
            cur.execute("INSERT INTO segment_members (workspace_id, segment_id, contact_id, entered_at) "
                        "SELECT %s, %s, id, now() FROM contacts WHERE workspace_id = %s", (ws, segment_id, ws))
            cur.execute("UPDATE segments SET member_count = %s WHERE id = %s", (MESSAGES, segment_id))
        conn.commit()
        conn.autocommit = True
        for table in ("contacts", "segment_members"):
            conn.execute(f"VACUUM ANALYZE {table}")


HOT_TABLES = "jobs, messages, message_search, broadcast_recipients, broadcast_links, conversations, events"


def vacuum_like_autovacuum(url: str, stop: threading.Event) -> int:
    """What autovacuum does on a default server, for a server that has it off (this machine's CI
    server does): VACUUM ANALYZE the tables the broadcast churns, once a minute (autovacuum's naptime).
    Without it every claimed job and sent message leaves a dead row and a stale plan behind, and the
    rate falls with the table size (209 -> 42 messages/s over 463,000 messages in an earlier run)."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    runs = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SHOW autovacuum").fetchone() != ("off",):
            return 0
        while not stop.wait(60):
            conn.execute(f"VACUUM (ANALYZE) {HOT_TABLES}")
            runs += 1
    return runs


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the receiving server did not start")


def raw_rate(account: Any) -> float:
    """The adapter's own rate: `send` in a loop against the same server, one thread."""
    content = {"type": "text", "text": "客户，秋季新茶到了：https://example.com/l/abcdefghijk"}
    start = time.perf_counter()
    for i in range(RAW_SENDS):
        channels.run_async(ADAPTER.send(account, str(i + 1), content, idempotency_key=f"raw:{i}"))
    return RAW_SENDS / (time.perf_counter() - start)


def main() -> None:
    name = f"siyu_bench_bc_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    port = int(os.environ.get("SIYU_BENCH_PORT", "18765"))
    receiver = multiprocessing.Process(target=_receiver, args=(port,), daemon=True)
    receiver.start()
    _wait_for(port)
    try:
        upgrade(url)
        engine = make_engine(url)
        now = datetime.now(UTC)
        # Quiet hours in UTC set six to eight hours from now: on, checked for everyone, never hit.
        quiet = (now + timedelta(hours=6)).strftime("%H:00"), (now + timedelta(hours=8)).strftime("%H:00")
        with Session(engine) as session:
            ws = create_workspace(session, ACTOR, name="Bench", timezone="UTC")
            bind_workspace(session, ws.id)
            account = channels.create_account(session, kind="webhook", name="Local", actor=ACTOR,
                                              config={"url": f"http://127.0.0.1:{port}/in"},
                                              secrets={"secret": secrets.token_hex(16)})
            segment = segments.create_segment(session, name="Everyone", kind="static", actor=ACTOR)
            caps.update_settings(session, caps={"*": {"day": 3, "week": 10, "month": 30}}, quiet_start=quiet[0],
                                 quiet_end=quiet[1], actor=ACTOR)
            session.commit()
            ws_id, account_id, segment_id = ws.id, account.id, segment.id
        load_start = time.perf_counter()
        load(url, ws_id, segment_id)
        load_seconds = time.perf_counter() - load_start
        print(f"loaded {MESSAGES:,} contacts with COPY in {load_seconds:.1f} s")

        with Session(engine) as session:
            bind_workspace(session, ws_id)
            raw = raw_rate(channels.get_account(session, account_id))
        print(f"raw adapter send: {raw:,.0f} messages/s over {RAW_SENDS:,}")

        with Session(engine) as session:
            bind_workspace(session, ws_id)
            b = broadcasts.create_broadcast(session, name="Autumn", account_id=account_id, segment_id=segment_id,
                                            content={"type": "text", "text": TEXT}, actor=ACTOR)
            broadcasts.schedule(session, b, at=None, actor=ACTOR)
            session.commit()
            b_id = b.id
        env = {**os.environ, "SIYU_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        stop = threading.Event()
        vacuums: list[int] = []
        vacuum = threading.Thread(target=lambda: vacuums.append(vacuum_like_autovacuum(url, stop)), daemon=True)
        vacuum.start()
        wall = time.perf_counter()
        subprocess.run([sys.executable, "-m", "siyu.core.worker", "--burst"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - wall
        stop.set()
        vacuum.join()
        autovacuum_line = "- autovacuum: on"
        if vacuums and vacuums[0]:
            autovacuum_line = ("- autovacuum: off on this server; the bench ran VACUUM ANALYZE of the hot tables "
                               f"once a minute in its place ({vacuums[0]} times)")
        with Session(engine) as session:
            bind_workspace(session, ws_id)
            b = broadcasts.get_broadcast(session, b_id)
            sent, last = session.execute(select(func.count(), func.max(Message.sent_at)).where(
                Message.origin == f"broadcast:{b_id}", Message.status == "sent")).one()
            started = b.started_at
        assert sent == MESSAGES, f"{sent} of {MESSAGES} sent"
        rate = sent / (last - started).total_seconds()
        ratio = rate / raw
        header = ("| messages | worker processes | messages/s per worker | raw adapter send/s | ratio | wall s |\n"
                  "|---:|---:|---:|---:|---:|---:|")
        row = f"| {sent:,} | 1 | {rate:,.0f} | {raw:,.0f} | **{ratio:.2f}** | {wall:.0f} |"
        print(header)
        print(row)
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as c:
            pg = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        report = "\n".join([
            "# Benchmark: a broadcast to the local test channel",
            "",
            f"Latest run of `bench/bench_broadcast.py` (SCALE={SCALE}), {stamp}. See [benchmarks.md](benchmarks.md)"
            " and [broadcasts.md](broadcasts.md).",
            "",
            "One worker process sends a broadcast to a static segment through a `webhook` account whose endpoint "
            "is a local server in its own process; caps on every channel (3/day, 10/week, 30/month) and quiet "
            "hours are on, so every recipient goes through the cap and quiet-hour arithmetic. Each message is "
            "rendered with a personal field, its link rewritten to a tracked short link, checked for consent, "
            "archived, queued as a deliver job, POSTed signed, and marked sent. The raw rate is the same "
            f"adapter's `send` in a loop against the same server ({RAW_SENDS:,} sends), in the same run.",
            "",
            header,
            row,
            "",
            f"- {os.cpu_count()} CPUs, {platform.platform()}",
            f"- Python {platform.python_version()}, PostgreSQL {pg}, SQLAlchemy {version('sqlalchemy')}, "
            f"httpx {version('httpx')}",
            "- load average at the end of the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
            autovacuum_line,
            f"- {MESSAGES:,} contacts loaded with COPY in {load_seconds:.1f} s",
            "",
        ])
        if os.environ.get("SIYU_BENCH_WRITE", "1") == "1":
            (ROOT / "docs" / "benchmarks_broadcast.md").write_text(report)
        engine.dispose()
    finally:
        receiver.terminate()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
