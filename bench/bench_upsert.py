"""Upsert-by-identity through the REST API: contacts/s, and the ratio to a raw upsert in the same run.

One client sends `PUT /api/v1/contacts/upsert` one person at a time over a keep-alive connection to one
uvicorn process: first every person is new (a contact, a phone and an email identity, a
`contact.created` event, an audit entry), then every person again (found by phone, nothing to change).
After each request the raw side does the same person's upsert straight through the driver, in another
workspace of the same tables: look the identities up, insert the contact and its two identities,
commit (SQLite through sqlite3, PostgreSQL through psycopg), so both see the same table sizes.

    uv run python bench/bench_upsert.py              # 1,000 people per engine
    SCALE=full uv run python bench/bench_upsert.py   # 20,000 people per engine

Writes docs/benchmarks_upsert.md.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from bench_events import PG_ADMIN, ROOT, machine, served
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace

SCALE = os.environ.get("SCALE", "small")
PEOPLE = {"small": 1_000, "full": 20_000}[SCALE]
OUT = ROOT / "docs" / "benchmarks_upsert.md"

RawUpsert = Callable[[int, str, str, str], bool]



def person(n: int) -> dict[str, Any]:
    return {
        "identities": [{"type": "phone", "value": f"+86139{n:08d}"}, {"type": "email", "value": f"p{n}@example.com"}],
        "fields": {"name": f"Customer {n}", "city": "Shanghai"},
    }


def prepare(url: str) -> tuple[str, int]:
    """Migrate; the API's workspace with its key, and the raw side's workspace."""
    from siyu.core import workspaces

    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        session = Session(bind=conn)
        actor = Actor.cli("bench")
        ws = workspaces.create_workspace(session, actor, name="Bench API")
        raw = workspaces.create_workspace(session, actor, name="Bench raw")
        session.flush()
        bind_workspace(session, ws.id)
        secret = workspaces.create_api_key(session, actor, name="bench", scopes=["contacts:write"]).secret
        session.flush()
        raw_id = raw.id
    engine.dispose()
    return secret, raw_id


@dataclass
class Result:
    engine: str
    people: int
    api_new_s: float
    raw_new_s: float
    api_again_s: float
    raw_again_s: float

    def rate(self, seconds: float) -> float:
        return self.people / seconds


def run(engine_name: str, url: str, make_raw: Callable[[int], RawUpsert]) -> Result:
    secret, raw_ws = prepare(url)
    raw_upsert = make_raw(raw_ws)
    bodies = [json.dumps(person(n)).encode() for n in range(PEOPLE + 1)]
    with served(url) as client:
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        times = {}
        for phase, expected in (("new", 201), ("again", 200)):
            api_s = raw_s = 0.0
            # Person 0 warms both paths up (imports, statement caches) and is not counted.
            for n, body in enumerate(bodies):
                t0 = time.perf_counter()
                client.request("PUT", "/api/v1/contacts/upsert", body=body, headers=headers)
                response = client.getresponse()
                payload = response.read()
                t1 = time.perf_counter()
                if response.status != expected:
                    raise SystemExit(f"{engine_name}: person {n} ({phase}): {response.status} {payload[:300]!r}")
                created = raw_upsert(n, f"+86139{n:08d}", f"p{n}@example.com", f"Customer {n}")
                t2 = time.perf_counter()
                if created != (phase == "new"):
                    raise SystemExit(f"{engine_name}: the raw upsert of person {n} disagrees ({phase})")
                if n:
                    api_s += t1 - t0
                    raw_s += t2 - t1
            times[phase] = (api_s, raw_s)
        return Result(engine_name, PEOPLE, *times["new"], *times["again"])


def bench_sqlite() -> Result:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")

        def make_raw(ws: int) -> RawUpsert:
            def upsert(n: int, phone: str, email: str, name: str) -> bool:
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
                conn.execute("BEGIN IMMEDIATE")
                found = conn.execute(
                    "SELECT contact_id FROM contact_identities WHERE workspace_id = ? AND "
                    "((type = 'phone' AND value = ?) OR (type = 'email' AND value = ?))", (ws, phone, email),
                ).fetchone()
                if found is None:
                    cid = conn.execute(
                        "INSERT INTO contacts (workspace_id, name, city, phone, email, attributes, do_not_contact, "
                        "stage, order_count, revenue, created_at, updated_at) "
                        "VALUES (?, ?, 'Shanghai', ?, ?, '{}', 0, 'new', 0, 0, ?, ?) RETURNING id",
                        (ws, name, phone, email, now, now),
                    ).fetchone()[0]
                    conn.executemany(
                        "INSERT INTO contact_identities (workspace_id, contact_id, type, value, created_at) "
                        "VALUES (?, ?, ?, ?, ?)", [(ws, cid, "phone", phone, now), (ws, cid, "email", email, now)],
                    )
                conn.execute("COMMIT")
                return found is None

            return upsert

        try:
            return run("SQLite", f"sqlite:///{path}", make_raw)
        finally:
            conn.close()


def bench_postgres() -> Result:
    name = f"siyu_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    sa_url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    conn = None
    try:
        upgrade(sa_url)
        conn = psycopg.connect(sa_url.replace("postgresql+psycopg://", "postgresql://"))

        def make_raw(ws: int) -> RawUpsert:
            assert conn is not None

            def upsert(n: int, phone: str, email: str, name: str) -> bool:
                now = datetime.now(UTC)
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT contact_id FROM contact_identities WHERE workspace_id = %s AND "
                        "((type = 'phone' AND value = %s) OR (type = 'email' AND value = %s))", (ws, phone, email),
                    )
                    found = cur.fetchone()
                    if found is None:
                        cur.execute(
                            "INSERT INTO contacts (workspace_id, name, city, phone, email, attributes, "
                            "do_not_contact, stage, order_count, revenue, created_at, updated_at) "
                            "VALUES (%s, %s, 'Shanghai', %s, %s, '{}', false, 'new', 0, 0, %s, %s) RETURNING id",
                            (ws, name, phone, email, now, now),
                        )
                        row = cur.fetchone()
                        assert row is not None
                        cur.executemany(
                            "INSERT INTO contact_identities (workspace_id, contact_id, type, value, created_at) "
                            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            [(ws, row[0], "phone", phone, now), (ws, row[0], "email", email, now)],
                        )
                conn.commit()
                return found is None

            return upsert

        return run("PostgreSQL", sa_url, make_raw)
    finally:
        if conn is not None:
            conn.close()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    results = [bench_sqlite(), bench_postgres()]
    lines = [
        "# Upsert by identity through the API",
        "",
        f"`SCALE={SCALE} uv run python bench/bench_upsert.py` — {PEOPLE:,} people per engine, one "
        "`PUT /api/v1/contacts/upsert` at a time over one keep-alive connection to one uvicorn process "
        "(phone + email identities, name and city). Each request is followed by the raw driver's upsert of "
        "the same person in another workspace of the same tables (look the identities up; when nobody has "
        "them, insert the contact and its two identities; commit). First pass: everyone is new; second "
        "pass: everyone is found.",
        "",
        "| engine | pass | API contacts/s | raw contacts/s | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        for phase, api_s, raw_s in (("new", r.api_new_s, r.raw_new_s), ("found", r.api_again_s, r.raw_again_s)):
            api, raw = r.rate(api_s), r.rate(raw_s)
            lines.append(f"| {r.engine} | {phase} | {api:,.0f} | {raw:,.0f} | {raw_s / api_s:.2f} |")
    lines += [
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on:",
        "",
        *machine(),
        "",
        "The API's request does what the raw one does plus what a caller is owed: API-key check, body "
        "validation, phone normalisation to E.164 and email checks, the merge rules (several identities "
        "may name several contacts), the default owner, a `contact.created` event and an audit entry for a "
        "new person, and the contact's detail in the answer (identities, tags, consent).",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
