"""Event ingestion through the HTTP API against a raw insert of the same rows, on SQLite and PostgreSQL.

    uv run python bench/bench_events.py              # SCALE=small: 20 batches of 1,000 per engine
    SCALE=full uv run python bench/bench_events.py   # 500 batches of 1,000 per engine

A real server (`uvicorn siyu.app:create_app --factory`, one process) runs against a fresh database of
its own; the client posts pre-serialised 1,000-event batches one after another. Each HTTP batch is
followed by a raw insert of the same rows (into another workspace of the same table, so both see the
same table size): SQLite `executemany` through sqlite3, PostgreSQL `COPY` through psycopg, one commit per
batch. The ratio is HTTP events/s over raw events/s. Results go to docs/benchmarks_events.md.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
import pydantic_core
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SCALE", "small")
BATCHES = {"small": 20, "full": 500}[SCALE]
BATCH = 1000
PG_ADMIN = os.environ.get("SIYU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
COLUMNS = (
    "workspace_id",
    "type",
    "occurred_at",
    "received_at",
    "idempotency_key",
    "contact_id",
    "identity_type",
    "identity_value",
    "source",
    "properties",
)


def make_batch(n: int) -> list[dict[str, Any]]:
    """Half order.paid (schema-checked), half a custom type; half named by phone, half by contact id."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for i in range(BATCH):
        seq = n * BATCH + i
        at = (start + timedelta(seconds=seq)).isoformat()
        if i % 2 == 0:
            events.append(
                {
                    "type": "order.paid",
                    "idempotency_key": f"order-{seq}",
                    "occurred_at": at,
                    "identity": {"type": "phone", "value": f"+86138{seq:08d}"},
                    "properties": {
                        "order_id": f"SO{seq}",
                        "amount": 12900 + i,
                        "currency": "CNY",
                        "items": [
                            {"sku": "TEA-001", "qty": 2, "price": 4500},
                            {"sku": "CUP-002", "qty": 1, "price": 3900 + i},
                        ],
                    },
                }
            )
        else:
            events.append(
                {
                    "type": "page.viewed",
                    "idempotency_key": f"view-{seq}",
                    "occurred_at": at,
                    "contact_id": seq + 1,
                    "properties": {"path": f"/products/{i % 50}", "referrer": "wechat", "ms": 1200 + i},
                }
            )
    return events


def raw_rows(
    events: list[dict[str, Any]], workspace_id: int, received: datetime, sqlite: bool
) -> list[tuple[Any, ...]]:
    """The rows as the events table stores them."""
    rows = []
    for e in events:
        occurred = datetime.fromisoformat(e["occurred_at"])
        identity = e.get("identity") or {}
        when = (occurred, received)
        if sqlite:
            when = tuple(t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds") for t in when)
        rows.append(
            (
                workspace_id,
                e["type"],
                when[0],
                when[1],
                e["idempotency_key"],
                e.get("contact_id"),
                identity.get("type"),
                identity.get("value"),
                "raw",
                pydantic_core.to_json(e["properties"]).decode(),
            )
        )
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str) -> tuple[str, int]:
    """Migrate, then make the benchmark workspace with its API key and a second workspace for raw rows."""
    from siyu.core import workspaces

    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        from sqlalchemy.orm import Session

        session = Session(bind=conn)
        actor = Actor.cli("bench")
        ws = workspaces.create_workspace(session, actor, name="Bench HTTP")
        raw = workspaces.create_workspace(session, actor, name="Bench raw")
        session.flush()
        bind_workspace(session, ws.id)
        secret = workspaces.create_api_key(session, actor, name="bench", scopes=["events:write"]).secret
        session.flush()
        raw_id = raw.id
    engine.dispose()
    return secret, raw_id


@dataclass
class Result:
    engine: str
    events: int
    http_seconds: float
    raw_seconds: float

    @property
    def http_rate(self) -> float:
        return self.events / self.http_seconds

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds


def run(engine_name: str, url: str, raw_insert: Any) -> Result:
    secret, raw_ws = prepare(url)
    # Built before the server starts: the keep-alive connection would idle past its timeout meanwhile.
    batches = [make_batch(n) for n in range(BATCHES + 1)]
    bodies = [json.dumps({"events": b}).encode() for b in batches]
    port = free_port()
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": url,
        "SIYU_SECRET_KEY": "bench",
        "SIYU_VAR_DIR": tempfile.mkdtemp(),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "siyu.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        # One keep-alive connection and bodies encoded before the clock starts: the client's own work
        # (building JSON, a client library's request and response models) is not the server's.
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        for _ in range(100):
            try:
                client.request("GET", "/healthz")
                health = client.getresponse()
                health.read()
                if health.status == 200:
                    break
            except OSError:
                client.close()
                time.sleep(0.1)
        # The first batch warms both paths up (imports, statement caches) and is not counted.
        http_s = raw_s = 0.0
        for n, (batch, body) in enumerate(zip(batches, bodies, strict=True)):
            t0 = time.perf_counter()
            client.request("POST", "/api/v1/events", body=body, headers=headers)
            response = client.getresponse()
            payload = response.read()
            t1 = time.perf_counter()
            answer = json.loads(payload)
            if response.status != 200 or answer["accepted"] != BATCH:
                raise SystemExit(f"{engine_name}: batch {n} answered {response.status} {str(answer)[:300]}")
            rows = raw_rows(batch, raw_ws, datetime.now(UTC), sqlite=engine_name == "SQLite")
            t2 = time.perf_counter()
            raw_insert(rows)
            t3 = time.perf_counter()
            if n:
                http_s += t1 - t0
                raw_s += t3 - t2
        client.close()
        return Result(engine_name, BATCHES * BATCH, http_s, raw_s)
    finally:
        server.terminate()
        server.wait(10)


def bench_sqlite() -> Result:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

        def insert(rows: list[tuple[Any, ...]]) -> None:
            conn.executemany(sql, rows)
            conn.commit()

        try:
            return run("SQLite", f"sqlite:///{path}", insert)
        finally:
            conn.close()


def bench_postgres() -> Result:
    name = f"siyu_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name)
    sa_url = url.render_as_string(hide_password=False)
    conn = None
    try:
        upgrade(sa_url)
        conn = psycopg.connect(sa_url.replace("postgresql+psycopg://", "postgresql://"))
        copy_sql = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"

        def insert(rows: list[tuple[Any, ...]]) -> None:
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()

        return run("PostgreSQL", sa_url, insert)
    finally:
        if conn is not None:
            conn.close()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def machine() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    with create_engine(PG_ADMIN).connect() as c:
        pg = c.execute(text("SHOW server_version")).scalar_one()
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (shared with other work during the run)",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL {pg} "
        "(same machine, default settings)",
        "- load average at the end of the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        f"- siyu {version('siyu')}, FastAPI {version('fastapi')}, uvicorn {version('uvicorn')}, pydantic "
        f"{version('pydantic')}, SQLAlchemy {version('sqlalchemy')}, psycopg {version('psycopg')}",
        f"- {platform.platform()}",
    ]


def main() -> None:
    results = [bench_sqlite(), bench_postgres()]
    lines = [
        "# Event ingestion: HTTP API vs raw insert",
        "",
        f"`SCALE={SCALE} uv run python bench/bench_events.py` — {BATCHES} batches of {BATCH:,} events "
        "per engine (half `order.paid` with two items, half a custom type), posted one after another "
        "to one uvicorn process; each HTTP batch is followed by a raw insert of the same rows "
        "(SQLite `executemany`, PostgreSQL `COPY`, one commit per batch). Goal: ratio ≥ 0.5.",
        "",
        "| engine | events | HTTP events/s | raw events/s | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.engine} | {r.events:,} | {r.http_rate:,.0f} | {r.raw_rate:,.0f} | "
            f"{r.http_rate / r.raw_rate:.2f} |"
        )
    lines += ["", f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on:", "", *machine(), ""]
    lines += [
        "The client posts bodies encoded before the clock starts over one keep-alive `http.client`",
        "connection, so the time is the server's. The raw SQLite connection runs without `PRAGMA foreign_keys`",
        "(the application's checks each row's workspace), one reason its insert is cheaper than the server's.",
        "",
        "## Where a batch's time goes",
        "",
        "Timers around the handler's parts inside the server (medians of 20-batch runs; this 2-core machine's",
        "speed drifts by up to 1.5x from run to run, so read them as proportions):",
        "",
        "| ms per 1,000-event batch | PostgreSQL | SQLite |",
        "|---|---:|---:|",
        "| raw insert of the same rows, with its commit | 16.5 | 6.8 |",
        "| HTTP batch as the server sees it | 35.7 | 23.3 |",
        "| insert (PG: COPY into a temp table, one INSERT ... SELECT; SQLite: executemany, ids read back) "
        "| 17.6 | 8.0 |",
        "| parsing and checking the body (`validate_json`) | 6.1 | 4.3 |",
        "| known types' properties (`order.paid` models) | 3.5 | 2.6 |",
        "| item checks, rows, result | 2.3 | 1.7 |",
        "| API key, session, routing before the handler | 3.1 | 2.2 |",
        "| hop into the worker thread and freeing the batch | 2.6 | 2.0 |",
        "| commit and response | 1.6 | 1.4 |",
        "",
        "The insert alone costs what the raw one does; the rest is the checking the API owes its callers",
        "(pydantic parse, schemas, auth) and the framework. A ratio of 0.5 needs all of that to fit in the",
        "raw insert's own time: ~16 ms on PostgreSQL, where the checks and framework take ~19, and ~7 ms",
        "on SQLite, where they take ~15. Neither engine reaches 0.5 without skipping checks.",
        "",
        "## What the second round changed",
        "",
        "- PostgreSQL: the batch is COPied into a session temp table (`ON COMMIT DELETE ROWS`) and moved",
        "  into events with one `INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`. Insert alone,",
        "  1,000 rows with commit, same session: `json_to_recordset` 19.9-20.6 ms, temp table + INSERT",
        "  17.6-18.4, COPY straight into events with ids from the sequence 17.3-19.1 (not kept: no faster,",
        "  and a retried batch would fail it on the unique key, logging an error each time), raw COPY",
        "  15.5-16.5.",
        "- Known types' properties: the validated model goes to the insert as it is (`to_json` serialises",
        "  it as a dump would), so no intermediate dict is built.",
        "- The bench client: `http.client` instead of httpx (no change in the ratio beyond noise).",
        "- Measured and left out: one-pass validation with the properties' models in a union discriminated",
        "  by `type` (callable discriminator 5.0 ms vs 4.8 for the two passes; with a string discriminator",
        "  JSON input costs more, 5.6-8 vs 2.7 without models); an identity-type pattern instead of the",
        "  Python check (no change); binary COPY (no change); SQLite multi-row VALUES and `json_each`",
        "  (4.4 and 6.9 ms vs 4.5 for executemany); orjson (0.15 ms a batch on the properties, and it refuses",
        "  integers beyond 64 bits that JSON and pydantic allow); a larger GC threshold (lost in noise).",
        "",
        "Small runs alternating main's events.py and this one in the same session: PostgreSQL 0.38, 0.41,",
        "0.38, 0.38, 0.35 before, 0.45, 0.38, 0.44, 0.43, 0.43 after; SQLite 0.28, 0.25, 0.26 before, 0.25,",
        "0.29, 0.28 after (no change: its insert was already the executemany the raw side does).",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    (ROOT / "docs" / "benchmarks_events.md").write_text(report)


if __name__ == "__main__":
    main()
