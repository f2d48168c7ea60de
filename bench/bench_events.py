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
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
import pydantic_core
from _support import PG_ADMIN, scratch_postgres
from sqlalchemy import create_engine, text

from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SCALE", "small")
BATCHES = {"small": 20, "full": 500}[SCALE]
BATCH = 1000
# The shop's customers the events name: known contacts, as in a workspace past its first day (the
# person resolver finds each by phone or id with one query per batch; new people would add contacts).
PEOPLE = 10_000
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


def make_batch(n: int, contact_ids: list[int]) -> list[dict[str, Any]]:
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
                    "identity": {"type": "phone", "value": f"+86138{seq % PEOPLE:08d}"},
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
                    "contact_id": contact_ids[seq % PEOPLE],
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


def prepare(url: str) -> tuple[str, int, list[int]]:
    """Migrate, then make the benchmark workspace with its API key, its customers, and a second workspace
    for raw rows."""
    from sqlalchemy import insert, select

    from siyu.contacts.models import Contact, Identity
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
        phones = [f"+86138{i:08d}" for i in range(PEOPLE)]
        conn.execute(insert(Contact), [{"workspace_id": ws.id, "phone": p, "attributes": {}} for p in phones])
        contact_ids = list(conn.execute(
            select(Contact.id).where(Contact.workspace_id == ws.id).order_by(Contact.id)
        ).scalars())
        conn.execute(insert(Identity), [
            {"workspace_id": ws.id, "contact_id": c, "type": "phone", "value": p}
            for c, p in zip(contact_ids, phones, strict=True)
        ])
    if engine.dialect.name == "postgresql":
        # As autovacuum would within a minute of these 10,000 rows: without statistics the planner
        # scans every identity for each batch's lookup once its statement is prepared.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE contacts, contact_identities"))
    engine.dispose()
    return secret, raw_id, contact_ids


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


@contextmanager
def served(url: str, factory: str = "siyu.app:create_app") -> Iterator[http.client.HTTPConnection]:
    """One uvicorn process serving siyu (or another app `factory`, importable from bench/) on `url`'s
    database, and a keep-alive connection to it.

    One connection and bodies encoded before the clock starts: the client's own work (building JSON, a
    client library's request and response models) is not the server's.
    """
    port = free_port()
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_SECRET_KEY": "bench", "SIYU_VAR_DIR": tempfile.mkdtemp(),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "bench"), os.environ.get("PYTHONPATH")) if p)}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env, cwd=ROOT,
    )
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        # A loaded machine may take a while to import the app: wait up to a minute for it to answer.
        for _ in range(600):
            try:
                client.request("GET", "/healthz")
                health = client.getresponse()
                health.read()
                if health.status == 200:
                    break
            except OSError:
                client.close()
                time.sleep(0.1)
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(10)


def run(engine_name: str, url: str, raw_insert: Any) -> Result:
    secret, raw_ws, contact_ids = prepare(url)
    # Built before the server starts: the keep-alive connection would idle past its timeout meanwhile.
    batches = [make_batch(n, contact_ids) for n in range(BATCHES + 1)]
    bodies = [json.dumps({"events": b}).encode() for b in batches]
    with served(url) as client:
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
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
        return Result(engine_name, BATCHES * BATCH, http_s, raw_s)


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
    with scratch_postgres(migrate=False) as sa_url:
        return _bench_postgres(sa_url)


def _bench_postgres(sa_url: str) -> Result:
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
        f"{version('pydantic')}, msgspec {version('msgspec')}, SQLAlchemy {version('sqlalchemy')}, "
        f"psycopg {version('psycopg')}",
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
        "The kernel's own path, measured before the contacts module's person resolver was installed (it",
        "now also normalises and looks up each batch's people and runs the batch listeners: see",
        "[benchmarks.md](benchmarks.md)). Timers inside the server around the parts of a batch (medians of",
        "three 20-batch runs per engine, on",
        "2026-11-30 at a load average of 2.8 on this shared 2-core machine; the raw SQLite insert ran at its idle",
        "speed, and under more load every figure grows, the waits for a thread most):",
        "",
        "| ms per 1,000-event batch | PostgreSQL | SQLite |",
        "|---|---:|---:|",
        "| raw insert of the same rows, with its commit | 18.5 | 5.8 |",
        "| HTTP batch as the server sees it | 27.8 | 12.9 |",
        "| insert (PG: COPY into a temp table, one INSERT ... SELECT; SQLite: executemany) | 18.5 | 6.2 |",
        "| decoding and checking the body, known types' properties included (msgspec) | 2.0 | 2.2 |",
        "| keys, columns, result | 0.4 | 0.3 |",
        "| commit (in the handler's worker thread) | 1.7 | 0.8 |",
        "| API key (its query opens the transaction), session, routing before the handler | 2.2 | 2.0 |",
        "| the rest: two thread hops, reading the body, the response | 3.0 | 1.5 |",
        "",
        "The insert costs about what the raw one does (SQLite checks each row's workspace key on top, ~10% of",
        "its `executemany`); decoding and checking the body, the known types' properties included, is now",
        "~2 ms a batch instead of ~12; what is left is the framework, the API key's first query (which opens",
        "the transaction) and the waits for a thread, which are short on an idle machine and grow with load.",
        "SQLite stays near the line: its raw insert is short, so those fixed costs weigh more (12.9 ms a batch",
        "here against the 11.6 a ratio of 0.5 allows, timers included; 20-batch runs gave 0.46-0.57 and the",
        "full runs 0.52-0.55 as the load varied). PostgreSQL has room to spare.",
        "",
        "## What the third round changed",
        "",
        "- The body is decoded and checked by msgspec in one pass (`siyu.core.event_input.decode_batch`):",
        "  lengths, bounds and unknown fields in msgspec's C code; the event type's pattern and the identity",
        "  type by the very pydantic validators the API's schema uses, once per distinct value; `occurred_at`",
        "  by msgspec's RFC 3339 parser (a subset of pydantic's, to the same moments; text with more than six",
        "  fractional digits, which msgspec rounds and pydantic cuts, is left to pydantic). A free-form type's",
        "  properties stay the JSON text they came as (checked to be an object in valid UTF-8) and are stored",
        "  as sent. A known type's properties go through a msgspec twin derived from its pydantic model",
        "  (`siyu.core.event_schemas.msgspec_twin`: plain fields, length and bound constraints, after-validators;",
        "  any other model has no twin and is validated by pydantic). At the first thing it would refuse or is",
        "  unsure of, the fast path gives the batch to the pydantic path, unchanged, which reports each bad",
        "  item by index: errors read as before, and tests check both paths store the same.",
        "- The batch travels as columns (one list per field), zipped into the `executemany` or `COPY` rows in C,",
        "  with no dict or tuple per item in Python.",
        "- The API answers counts, so it no longer reads 1,000 ids back (SQLite: `max(id)` and a SELECT;",
        "  PostgreSQL: `RETURNING`); ids are still read when a subscriber matches or the caller asks for them.",
        "- Two thread hops a batch instead of four: the request's session is made in the event loop (no I/O",
        "  before its first query) and the handler commits in its worker thread (`in_unit_of_work`, ADR 7's",
        "  addendum). Under a load of 7 the hop back to the event loop after the work measured 5-7 ms.",
        "- The API-key lookup's statement is built once (170 -> 103 µs of CPU a request).",
        "- Measured and left out: an in-process cache of API keys (the lookup itself is ~0.1 ms of CPU; the",
        "  rest of that phase is the session's first query, its pool checkout and `BEGIN IMMEDIATE`, which the",
        "  insert would pay instead, and a cache would let a key revoked by another process live on); SQLite",
        "  without foreign keys for the insert (~10% of its `executemany`, but a check); storing a twin's",
        "  input text instead of encoding the struct (0.1 ms); pydantic's datetime parser in the fast path (its",
        "  timezone objects cost ~0.3 µs per comparison or conversion, ~1 ms a batch).",
        "",
        "Earlier rounds: PostgreSQL COPies the batch into a session temp table (`ON COMMIT DELETE ROWS`) and",
        "moves it into events with one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (no faster straight into",
        "events, where a retried batch would fail on the unique key); SQLite inserts with one `executemany`",
        "(multi-row VALUES and `json_each` measured no faster); binary COPY, orjson and a larger GC threshold",
        "made no difference. Before this round: SQLite 0.24, PostgreSQL 0.42 (full run, 2026-11-23).",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    (ROOT / "docs" / "benchmarks_events.md").write_text(report)


if __name__ == "__main__":
    main()
