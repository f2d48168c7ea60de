"""The source comparison over 100,000 acquired contacts with their orders, on PostgreSQL: siyu's
`compare_sources` against one hand-written SQL aggregate of the same figures.

    uv run python bench/bench_source_metrics.py              # SCALE=small: 100,000 contacts
    SCALE=full uv run python bench/bench_source_metrics.py   # 1,000,000 contacts

A fresh database of its own is migrated, then loaded with COPY: contacts, one attribution each (first
touch spread over 90 days across 20 sources and 60 codes), about 1.5 `order.paid` events per contact (some
before the first touch, 5 % in another currency), and spend for every source and day. The comparison
over the 90 days (acquired, converted, spend, revenue by currency, 30/90-day revenue) is computed by
`siyu.acquisition.metrics.compare_sources` (local days in the workspace's timezone, CAC and ratios in
Python) and by hand-written SQL, alternately, in the same run; the two must agree. Reported: seconds
(median of the runs) and the ratio siyu / hand. Results go to docs/benchmarks_source_metrics.md.
"""

from __future__ import annotations

import io
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import scratch_postgres

from siyu.acquisition import metrics
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SCALE", "small")
CONTACTS = {"small": 100_000, "full": 1_000_000}[SCALE]
SOURCES, CODES_PER_SOURCE, DAYS = 20, 3, 90
RUNS = 5
TZ = "Asia/Shanghai"
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai
LAST = date(2026, 11, 30)
FIRST = LAST - timedelta(days=DAYS - 1)

HAND = """
WITH a AS (
  SELECT contact_id, first_source_id AS s, first_at FROM contact_attributions
  WHERE workspace_id = %(ws)s AND first_source_id IS NOT NULL
    AND first_at >= %(lo)s AND first_at < %(hi)s
), o AS (
  SELECT a.s, a.contact_id, e.occurred_at - a.first_at AS age,
         (e.properties ->> 'amount')::bigint AS amount, e.properties ->> 'currency' AS cur
  FROM a JOIN events e ON e.workspace_id = %(ws)s AND e.contact_id = a.contact_id
   AND e.type = 'order.paid' AND e.occurred_at >= a.first_at
), acquired AS (SELECT s, count(*) AS n FROM a GROUP BY s),
converted AS (SELECT s, count(DISTINCT contact_id) AS n FROM o GROUP BY s),
revenue AS (
  SELECT o.s, sum(amount) FILTER (WHERE cur = src.currency) AS revenue,
         sum(amount) FILTER (WHERE cur = src.currency AND age < interval '30 days') AS r30,
         sum(amount) FILTER (WHERE cur = src.currency AND age < interval '90 days') AS r90,
         sum(amount) FILTER (WHERE cur <> src.currency) AS other
  FROM o JOIN acquisition_sources src ON src.id = o.s GROUP BY o.s
), spend AS (
  SELECT source_id AS s, sum(amount) AS amount FROM acquisition_spend
  WHERE workspace_id = %(ws)s AND day BETWEEN %(first)s AND %(last)s GROUP BY source_id
)
SELECT src.id, coalesce(acquired.n, 0), coalesce(converted.n, 0), coalesce(spend.amount, 0),
       coalesce(revenue.revenue, 0), coalesce(revenue.r30, 0), coalesce(revenue.r90, 0), coalesce(revenue.other, 0)
FROM acquisition_sources src
LEFT JOIN acquired ON acquired.s = src.id LEFT JOIN converted ON converted.s = src.id
LEFT JOIN revenue ON revenue.s = src.id LEFT JOIN spend ON spend.s = src.id
WHERE src.workspace_id = %(ws)s ORDER BY src.id
"""


def _copy(cur: Any, statement: str, rows: Any, chunk: int = 50_000) -> None:
    with cur.copy(statement) as copy:
        buf = io.StringIO()
        for i, line in enumerate(rows):
            buf.write(line)
            if i % chunk == chunk - 1:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def load(conn: psycopg.Connection[Any], ws: int) -> None:
    """Sources, codes, contacts, attributions, orders and spend, through COPY."""
    rng = random.Random(11)
    stamp = NOW.isoformat()
    with conn.cursor() as cur:
        source_ids = []
        for s in range(SOURCES):
            cur.execute("INSERT INTO acquisition_sources (workspace_id, name, type, cost_model, currency, archived, "
                        "notes, created_by, created_at, updated_at) VALUES (%s, %s, 'parcel_card', '{}', 'CNY', "
                        "false, '', 'bench', %s, %s) RETURNING id", (ws, f"source {s}", NOW, NOW))
            source_ids.append(cur.fetchone()[0])  # type: ignore[index]
        codes: list[tuple[int, int]] = []
        for sid in source_ids:
            for c in range(CODES_PER_SOURCE):
                cur.execute("INSERT INTO channel_codes (workspace_id, name, source_id, kind, state, status, "
                            "skip_verify, welcome, tag_ids, rotation, rotation_cursor, synced_userids, created_by, "
                            "created_at, updated_at) VALUES (%s, %s, %s, 'link', %s, 'active', true, '{}', '[]', "
                            "'round_robin', 0, '[]', 'bench', %s, %s) RETURNING id",
                            (ws, f"code {sid}-{c}", sid, f"s{sid}x{c}", NOW, NOW))
                codes.append((sid, cur.fetchone()[0]))  # type: ignore[index]
        cur.execute("SELECT coalesce(max(id), 0) FROM contacts")
        first_contact = cur.fetchone()[0] + 1  # type: ignore[index]
        _copy(cur, "COPY contacts (workspace_id, name, attributes, do_not_contact, stage, order_count, revenue, "
                   "created_at, updated_at) FROM STDIN",
              (f"{ws}\tc{i}\t{{}}\tf\tnew\t0\t0\t{stamp}\t{stamp}\n" for i in range(CONTACTS)))
        start = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC) - timedelta(hours=8)
        firsts: list[datetime] = []
        lines = []
        for i in range(CONTACTS):
            sid, code = codes[rng.randrange(len(codes))] if rng.random() < 0.98 else (source_ids[0], codes[0][1])
            at = start + timedelta(seconds=rng.randrange(DAYS * 86400))
            firsts.append(at)
            when = at.isoformat()
            lines.append(f"{ws}\t{first_contact + i}\t{code}\t{sid}\t{when}\t{code}\t{sid}\t{when}\n")
        _copy(cur, "COPY contact_attributions (workspace_id, contact_id, first_code_id, first_source_id, first_at, "
                   "latest_code_id, latest_source_id, latest_at) FROM STDIN", iter(lines))

        def orders() -> Any:
            n = 0
            for i in range(CONTACTS):
                for _ in range(rng.choice((0, 0, 1, 2, 3, 3))):
                    at = min(firsts[i] + timedelta(seconds=rng.randrange(-5 * 86400, 120 * 86400)), NOW)
                    cur_code = "USD" if rng.random() < 0.05 else "CNY"
                    amount = rng.randrange(1_000, 50_000)
                    props = (f'{{"order_id": "o{n}", "amount": {amount}, "currency": "{cur_code}", '
                             f'"items": [{{"sku": "tea", "qty": 1, "price": {amount}}}]}}')
                    n += 1
                    yield f"{ws}\torder.paid\t{at.isoformat()}\t{stamp}\to{n}\t{first_contact + i}\tbench\t{props}\n"

        _copy(cur, "COPY events (workspace_id, type, occurred_at, received_at, idempotency_key, contact_id, source, "
                   "properties) FROM STDIN", orders())
        _copy(cur, "COPY acquisition_spend (workspace_id, source_id, day, amount, currency, origin, note, "
                   "created_at, updated_at) FROM STDIN",
              (f"{ws}\t{sid}\t{FIRST + timedelta(days=d)}\t{rng.randrange(10_000, 200_000)}\tCNY\tmanual\t\t{stamp}"
               f"\t{stamp}\n" for sid in source_ids for d in range(DAYS)))
    conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in ("contacts", "contact_attributions", "events", "acquisition_spend"):
            cur.execute(f"VACUUM ANALYZE {table}")
    conn.autocommit = False


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    clock.set_clock(lambda: NOW)
    with scratch_postgres("siyu_bench_srcm") as url:
        engine = make_engine(url)
        from siyu.core import workspaces

        with Session(engine) as session:
            ws = workspaces.create_workspace(session, Actor.cli("bench"), name="Bench", timezone=TZ).id
            session.commit()
        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        load_seconds, _ = timed(lambda: load(conn, ws))
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM events WHERE workspace_id = %s", (ws,))
            orders = cur.fetchone()[0]  # type: ignore[index]
        print(f"loaded {CONTACTS:,} contacts, {orders:,} orders with COPY in {load_seconds:.1f} s")
        lo = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC) - timedelta(hours=8)
        hi = datetime.combine(LAST + timedelta(days=1), datetime.min.time(), tzinfo=UTC) - timedelta(hours=8)
        params = {"ws": ws, "lo": lo, "hi": hi, "first": FIRST, "last": LAST}

        def hand() -> list[tuple[int, ...]]:
            with conn.cursor() as cur:
                cur.execute(HAND, params)
                out = [tuple(int(v) for v in row) for row in cur.fetchall()]
            conn.rollback()
            return out

        def siyu() -> list[tuple[int, ...]]:
            with Session(engine) as session:
                bind_workspace(session, ws)
                found = metrics.compare_sources(session, start=FIRST, end=LAST)
                return sorted((s.id, r.acquired, r.converted, r.spend, r.revenue, r.revenue_30d, r.revenue_90d,
                               sum(r.other_revenue.values())) for s, r in found.rows)

        ours, theirs = [], []
        for _ in range(RUNS):
            t, a = timed(siyu)
            ours.append(t)
            t, b = timed(hand)
            theirs.append(t)
            if a != b:
                raise SystemExit(f"siyu and the hand-written SQL disagree:\n{a[:3]}\n{b[:3]}")
        siyu_s, hand_s = statistics.median(ours), statistics.median(theirs)
        print(f"compare_sources {siyu_s:.3f} s, hand SQL {hand_s:.3f} s, ratio {siyu_s / hand_s:.2f}")
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            pg = cur.fetchone()[0]  # type: ignore[index]
        conn.close()
        engine.dispose()
    report = [
        "# Benchmark: the source comparison on PostgreSQL",
        "",
        f"Latest run of `bench/bench_source_metrics.py` (SCALE={SCALE}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
        "See [benchmarks.md](benchmarks.md).",
        "",
        f"{CONTACTS:,} contacts acquired over {DAYS} days through {SOURCES} sources and "
        f"{SOURCES * CODES_PER_SOURCE} codes, {orders:,} `order.paid` events (5 % in another currency), spend for "
        f"every source and day; workspace timezone {TZ}. Each run computes, for every source, acquired and "
        "converted contacts, spend, revenue in the source's currency and in others, and 30/90-day revenue.",
        "",
        "| | seconds (median of 5) |",
        "|---|---|",
        f"| `metrics.compare_sources` (SQL aggregates + rounding in Python, local days per DST-safe CASE) "
        f"| {siyu_s:.3f} |",
        f"| hand-written SQL, same figures, fixed UTC+8 bounds | {hand_s:.3f} |",
        f"| ratio siyu / hand | **{siyu_s / hand_s:.2f}** |",
        "",
        "siyu's query also groups by local cohort day and order day (for payback, and for day/week/month "
        "buckets of the same function), which the hand-written aggregate does not compute.",
        "",
        "Machine:",
        f"- {os.cpu_count()} CPUs, {platform.platform()}",
        f"- Python {platform.python_version()}, PostgreSQL {pg}, SQLAlchemy {version('sqlalchemy')}",
        "- load average at the end of the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "",
    ]
    (ROOT / "docs" / "benchmarks_source_metrics.md").write_text("\n".join(report))


if __name__ == "__main__":
    main()
