"""A 3-condition behavioural segment on PostgreSQL: siyu's compiled rule against the same question by hand.

    uv run python bench/bench_segments.py              # SCALE=small: 20,000 contacts, 200,000 events
    SCALE=full uv run python bench/bench_segments.py   # 1,000,000 contacts, 10,000,000 events

A fresh database of its own is migrated, then contacts, tags and events are loaded with COPY and
analysed. The rule — "paid at least twice in the last 30 days with amount > 100, lives in Shanghai, and
viewed no page in the last 7 days" — is counted through `siyu.contacts.segments.count_matching` (rule
checked and compiled on every run, as the builder's live count does) and through hand-written SQL of
the same question, alternately, in the same run. Reported: seconds (median of the runs) and the ratio
siyu / hand. The refresh that fills the membership table (INSERT ... SELECT, events per entrant) is
timed once too. Results go to docs/benchmarks_segments.md.
"""

from __future__ import annotations

import io
import json
import os
import platform
import random
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from siyu.contacts import segments
from siyu.contacts.models import Segment
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SCALE", "small")
CONTACTS, EVENTS = {"small": (20_000, 200_000), "full": (1_000_000, 10_000_000)}[SCALE]
RUNS = 5
PG_ADMIN = os.environ.get("SIYU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CITIES = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu"]
TYPES = [("order.paid", 0.25), ("page.viewed", 0.55), ("message.clicked", 0.2)]
RULE = {"all": [
    {"event": "order.paid", "op": "at_least", "count": 2, "within_days": 30,
     "where": [{"property": "amount", "op": "gt", "value": 100}]},
    {"field": "city", "op": "eq", "value": "Shanghai"},
    {"event": "page.viewed", "op": "none", "within_days": 7},
]}
HAND = """
SELECT count(*) FROM contacts c
WHERE c.workspace_id = %(ws)s AND c.city = 'Shanghai'
  AND (SELECT count(*) FROM events e
       WHERE e.workspace_id = %(ws)s AND e.contact_id = c.id AND e.type = 'order.paid'
         AND e.occurred_at >= %(d30)s AND (e.properties ->> 'amount')::numeric > 100) >= 2
  AND NOT EXISTS (SELECT 1 FROM events e
                  WHERE e.workspace_id = %(ws)s AND e.contact_id = c.id AND e.type = 'page.viewed'
                    AND e.occurred_at >= %(d7)s)
"""


def load(conn: psycopg.Connection[Any], ws: int) -> None:
    """Contacts and events through COPY, written in chunks of preformatted lines."""
    rng = random.Random(7)
    created = (NOW - timedelta(days=400)).isoformat()
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM contacts")
        first = cur.fetchone()[0] + 1  # type: ignore[index]
        with cur.copy("COPY contacts (workspace_id, name, city, attributes, do_not_contact, stage, order_count, "
                      "revenue, created_at, updated_at) FROM STDIN") as copy:
            buf = io.StringIO()
            for i in range(CONTACTS):
                city = CITIES[rng.randrange(len(CITIES))]
                buf.write(f"{ws}\tc{i}\t{city}\t{{}}\tf\tnew\t0\t0\t{created}\t{created}\n")
                if i % 50_000 == 49_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        kinds = [t for t, _ in TYPES]
        weights = [w for _, w in TYPES]
        with cur.copy("COPY events (workspace_id, type, occurred_at, received_at, idempotency_key, contact_id, "
                      "source, properties) FROM STDIN") as copy:
            buf = io.StringIO()
            received = NOW.isoformat()
            for i in range(EVENTS):
                kind = rng.choices(kinds, weights)[0]
                at = (NOW - timedelta(seconds=rng.randrange(90 * 86400))).isoformat()
                contact = first + rng.randrange(CONTACTS)
                props = f'{{"amount": {rng.randrange(20, 400)}}}' if kind == "order.paid" else "{}"
                buf.write(f"{ws}\t{kind}\t{at}\t{received}\tk{i}\t{contact}\tbench\t{props}\n")
                if i % 100_000 == 99_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
    conn.commit()
    with conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE contacts")
        cur.execute("VACUUM ANALYZE events")
        conn.autocommit = False


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def machine(conn: psycopg.Connection[Any]) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]  # type: ignore[index]
    return [
        f"- {os.cpu_count()} CPUs, {platform.platform()}",
        f"- Python {platform.python_version()}, PostgreSQL {pg}, SQLAlchemy {version('sqlalchemy')}",
        "- load average at the end of the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
    ]


def main() -> None:
    clock.set_clock(lambda: NOW)
    name = f"siyu_bench_seg_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = make_engine(url)
        from siyu.core import workspaces

        with Session(engine) as session:
            ws = workspaces.create_workspace(session, Actor.cli("bench"), name="Bench", timezone="UTC").id
            session.commit()
        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        load_seconds, _ = timed(lambda: load(conn, ws))
        print(f"loaded {CONTACTS:,} contacts and {EVENTS:,} events with COPY in {load_seconds:.1f} s")

        params = {"ws": ws, "d30": NOW - timedelta(days=30), "d7": NOW - timedelta(days=7)}

        def hand() -> int:
            with conn.cursor() as cur:
                cur.execute(HAND, params)
                return int(cur.fetchone()[0])  # type: ignore[index]

        def siyu() -> int:
            with Session(engine) as session:
                bind_workspace(session, ws)
                return segments.count_matching(session, RULE)

        assert hand() == siyu(), "the compiled rule and the hand-written SQL disagree"
        siyu_times, hand_times = [], []
        for _ in range(RUNS):
            seconds, count = timed(siyu)
            siyu_times.append(seconds)
            seconds, _ = timed(hand)
            hand_times.append(seconds)
        s, h = statistics.median(siyu_times), statistics.median(hand_times)

        with Session(engine) as session:
            bind_workspace(session, ws)
            segment = Segment(name="bench", kind="dynamic", rule=RULE)
            session.add(segment)
            session.flush()
            refresh_seconds, result = timed(lambda: segments.refresh_segment(session, segment))
            session.commit()
        ratio = s / h
        rows = [
            f"| {CONTACTS:,} | {EVENTS:,} | {count:,} | {s:.3f} | {h:.3f} | **{ratio:.2f}** | {refresh_seconds:.2f} |",
        ]
        header = ("| contacts | events | matching | siyu count (s) | hand SQL (s) | ratio | refresh (s) |\n"
                  "|---:|---:|---:|---:|---:|---:|---:|")
        print(header)
        print(rows[0])
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        report = "\n".join([
            "# Benchmark: a behavioural segment on PostgreSQL",
            "",
            f"Latest run of `bench/bench_segments.py` (SCALE={SCALE}), {stamp}. See [benchmarks.md](benchmarks.md).",
            "",
            "Rule (three conditions):",
            "",
            "```json",
            json.dumps(RULE, indent=2),
            "```",
            "",
            "Hand-written SQL of the same question:",
            "",
            "```sql",
            HAND.strip(),
            "```",
            "",
            f"Median of {RUNS} runs each, alternating; siyu's time includes checking and compiling the rule. "
            f"Refresh: the first refresh of a dynamic segment with this rule ({result.entered:,} entrants, "
            "one `segment.entered` event each).",
            "",
            header,
            rows[0],
            "",
            *machine(conn),
            f"- data loaded with COPY in {load_seconds:.1f} s",
            "",
        ])
        if os.environ.get("SIYU_BENCH_WRITE", "1") == "1":
            (ROOT / "docs" / "benchmarks_segments.md").write_text(report)
        conn.close()
        engine.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
