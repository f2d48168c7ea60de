"""Archive search over a large archive: p95 latency of siyu's search and of the same FTS query by hand.

Messages of mixed Chinese and English text (sentences from Faker zh_CN and en_US, some with the words
shoppers write: 优惠券, 退款, 发货, refund, coupon, delivery) are loaded into one workspace, with their
search tokens made by siyu's own tokeniser (`siyu.conversations.text.document`): PostgreSQL with COPY
(messages, then the tokens through a temporary table into the tsvector column), SQLite with
executemany (the FTS5 index fills through its triggers). Then each query runs through
`siyu.conversations.search.search` (the ORM query, the workspace scope, highlights, one page of 50)
and as the raw FTS query on the driver (the same match, workspace and order, 51 rows).

    uv run python bench/bench_archive.py              # 1,000,000 messages per engine
    SCALE=full uv run python bench/bench_archive.py   # 10,000,000 messages per engine
    MESSAGES=100000 uv run python bench/bench_archive.py

Writes docs/benchmarks_archive.md.
"""

from __future__ import annotations

import io
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _support import scratch_postgres
from bench_events import ROOT, machine
from faker import Faker
from sqlalchemy.orm import Session

from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace

SCALE = os.environ.get("SCALE", "default")
MESSAGES = int(os.environ.get("MESSAGES", {"default": 1_000_000, "full": 10_000_000}.get(SCALE, 1_000_000)))
CHUNK = 50_000
ROUNDS = 3
OUT = ROOT / "docs" / "benchmarks_archive.md"
# (word, share of messages that carry it)
SHOPPER_WORDS = (("优惠券", 0.02), ("退款", 0.01), ("发货", 0.03), ("refund", 0.01), ("coupon", 0.005),
                 ("delivery", 0.02))
QUERIES = ("优惠券", "退款", "发货", "优惠券 退款", "refund", "coupon", "delivery", "refund delivery")
# Found by no whole word: siyu falls back to a substring scan (pg_trgm on PostgreSQL), timed on its own.
FALLBACK = "最便宜的"


def sentence_pool(rng: random.Random) -> list[str]:
    zh, en = Faker("zh_CN"), Faker("en_US")
    zh.seed_instance(rng.random())
    en.seed_instance(rng.random())
    return [zh.sentence(nb_words=rng.randint(4, 12)) for _ in range(3000)] + \
           [en.sentence(nb_words=rng.randint(5, 14)) for _ in range(3000)]


def messages(n: int, rng: random.Random) -> Iterator[tuple[int, str, str, datetime]]:
    """(id, direction, text, created_at) for n messages over the last year."""
    pool = sentence_pool(rng)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(n, 1)
    for i in range(1, n + 1):
        parts = [rng.choice(pool)]
        if rng.random() < 0.4:
            parts.append(rng.choice(pool))
        for word, share in SHOPPER_WORDS:
            if rng.random() < share:
                parts.insert(rng.randint(0, len(parts)), word)
        yield i, "in" if rng.random() < 0.6 else "out", " ".join(parts), start + step * i


def prepare(url: str) -> int:
    from siyu.core import workspaces

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        ws = workspaces.create_workspace(session, Actor.cli("bench"), name="Bench archive")
        session.commit()
        workspace_id = ws.id
    engine.dispose()
    return workspace_id


def load_sqlite(path: Path, workspace_id: int, rng: random.Random) -> float:
    from siyu.conversations.text import document

    conn = sqlite3.connect(path)
    started = time.perf_counter()
    rows: list[tuple[Any, ...]] = []
    docs: list[tuple[Any, ...]] = []

    def flush() -> None:
        conn.executemany("INSERT INTO messages (id, workspace_id, channel, direction, msg_type, text, content, "
                         "purpose, status, created_at) VALUES (?, ?, 'wechat_oa', ?, 'text', ?, '{}', 'service', "
                         "'received', ?)", rows)
        conn.executemany("INSERT INTO message_search (message_id, workspace_id, document) VALUES (?, ?, ?)", docs)
        conn.commit()
        rows.clear()
        docs.clear()

    for i, direction, body, at in messages(MESSAGES, rng):
        rows.append((i, workspace_id, direction, body, at.strftime("%Y-%m-%d %H:%M:%S.%f")))
        docs.append((i, workspace_id, document(body)))
        if len(rows) >= CHUNK:
            flush()
    flush()
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def load_postgres(dsn: str, workspace_id: int, rng: random.Random) -> float:
    from siyu.conversations.text import document

    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP INDEX IF EXISTS ix_message_search_document")
        conn.execute("DROP INDEX IF EXISTS ix_messages_text_trgm")
        conn.execute("CREATE TEMP TABLE staged (message_id bigint, document text)")
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            with conn.cursor() as cur:
                with cur.copy("COPY messages (id, workspace_id, channel, direction, msg_type, text, content, "
                              "purpose, status, created_at) FROM STDIN") as copy:
                    for i, direction, body, at in batch:
                        copy.write_row((i, workspace_id, "wechat_oa", direction, "text", body, "{}", "service",
                                        "received", at))
                with cur.copy("COPY staged (message_id, document) FROM STDIN") as copy:
                    for i, _d, body, _a in batch:
                        copy.write_row((i, document(body)))
                cur.execute("INSERT INTO message_search (message_id, workspace_id, document) "
                            "SELECT message_id, %s, to_tsvector('simple', document) FROM staged", (workspace_id,))
                cur.execute("TRUNCATE staged")
            conn.commit()
            batch.clear()

        for row in messages(MESSAGES, rng):
            batch.append(row)
            if len(batch) >= CHUNK:
                flush()
        flush()
        conn.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), %s)", (MESSAGES + 1,))
        conn.execute("CREATE INDEX ix_message_search_document ON message_search USING gin (document)")
        conn.execute("CREATE INDEX ix_messages_text_trgm ON messages USING gin (text gin_trgm_ops)")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE messages")
        conn.execute("VACUUM ANALYZE message_search")
    return time.perf_counter() - started


@dataclass
class Result:
    engine: str
    messages: int
    load_s: float
    siyu_ms: list[float]
    raw_ms: list[float]
    hits: dict[str, int]
    fallback_ms: float

    @staticmethod
    def p(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[max(0, int(share * len(ordered) + 0.5) - 1)]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return (time.perf_counter() - started) * 1000, value


def measure(url: str, workspace_id: int, raw: Callable[[list[str]], int]) -> tuple[list[float], list[float],
                                                                                   dict[str, int], float]:
    from siyu.conversations import search
    from siyu.conversations.text import query_terms

    engine = make_engine(url)
    siyu_ms, raw_ms, hits = [], [], {}
    with Session(engine) as session:
        bind_workspace(session, workspace_id)
        for q in QUERIES:  # warm both paths once
            search.search(session, q=q)
            raw(query_terms(q))
        for _ in range(ROUNDS):
            for q in QUERIES:
                ms, (found, _cursor, _sub) = timed(lambda q=q: search.search(session, q=q, limit=50))
                siyu_ms.append(ms)
                hits[q] = len(found)
                ms, _n = timed(lambda q=q: raw(query_terms(q)))
                raw_ms.append(ms)
                session.rollback()
        fallback = [timed(lambda: search.search(session, q=FALLBACK, limit=50))[0] for _ in range(ROUNDS)]
    engine.dispose()
    return siyu_ms, raw_ms, hits, statistics.median(fallback)


def bench_sqlite() -> Result:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        path = Path(tmp) / "archive.db"
        url = f"sqlite:///{path}"
        workspace_id = prepare(url)
        load_s = load_sqlite(path, workspace_id, random.Random(5))
        conn = sqlite3.connect(path)

        def raw(terms: list[str]) -> int:
            phrase = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
            return len(conn.execute(
                "SELECT m.id, m.text FROM messages m JOIN message_search s ON s.message_id = m.id "
                "WHERE s.message_id IN (SELECT rowid FROM message_search_fts WHERE message_search_fts MATCH ?) "
                "AND m.workspace_id = ? ORDER BY s.message_id DESC LIMIT 51", (phrase, workspace_id)).fetchall())

        try:
            measured = measure(url, workspace_id, raw)
        finally:
            conn.close()
        return Result("SQLite", MESSAGES, load_s, *measured)


def bench_postgres() -> Result:
    with scratch_postgres(migrate=False) as url:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        workspace_id = prepare(url)
        load_s = load_postgres(dsn, workspace_id, random.Random(5))
        with psycopg.connect(dsn) as conn:
            def raw(terms: list[str]) -> int:
                return len(conn.execute(
                    "SELECT m.id, m.text FROM message_search s JOIN messages m ON m.id = s.message_id "
                    "WHERE s.document @@ plainto_tsquery('simple', %s) AND s.workspace_id = %s "
                    "ORDER BY s.message_id DESC LIMIT 51", (" ".join(terms), workspace_id)).fetchall())

            measured = measure(url, workspace_id, raw)
        return Result("PostgreSQL", MESSAGES, load_s, *measured)


HISTORY = """
## What the first runs taught (1,000,000 messages, same machine, 2026-11-30)

- First run: PostgreSQL p95 540 ms (siyu) and 524 ms (raw). A query word cut into a long word and its
  parts (`优惠券` → `优惠`, `优惠券`) was asked as both; the planner took them for independent words,
  expected ~100 matches instead of ~20,000, and chose a bitmap scan of every match plus a sort (130 ms
  at 300,000 messages, EXPLAIN ANALYZE). Asking for the long word alone (`text.query_terms`, the same
  matches since the parts are indexed with it) lets it walk the index backwards and stop after a page:
  1.6 ms.
- Pages are ordered by the search table's key (`message_search.message_id`), which the engine can walk
  backwards, rather than by `messages.id` through the join.
- SQLite's p50 went from 40 ms to 5 ms with the same two changes. The raw reference first joined the
  FTS table to messages and sorted every match (p95 421 ms, slower than siyu); it now has siyu's shape.
"""


def report(results: list[Result]) -> str:
    out = io.StringIO()
    out.write("# Archive search\n\n")
    out.write(f"`{'SCALE=full ' if SCALE == 'full' else ''}uv run python bench/bench_archive.py` — "
              f"{MESSAGES:,} messages per engine (mixed Chinese and English, Faker zh_CN / en_US sentences with "
              "shoppers' words mixed in), one workspace. Each of the queries below runs "
              f"{ROUNDS} times through `siyu.conversations.search.search` (ORM query, workspace scope, visibility, "
              "highlights, first page of 50) and as the same FTS query by hand on the driver (same match, "
              "workspace and order, 51 rows), one after the other.\n\n")
    out.write("| engine | messages | load (s) | siyu p50 ms | siyu p95 ms | raw p50 ms | raw p95 ms "
              "| p95 ratio raw/siyu |\n")
    out.write("|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for r in results:
        sp95, rp95 = Result.p(r.siyu_ms, 0.95), Result.p(r.raw_ms, 0.95)
        out.write(f"| {r.engine} | {r.messages:,} | {r.load_s:,.0f} | {statistics.median(r.siyu_ms):.1f} | "
                  f"{sp95:.1f} | {statistics.median(r.raw_ms):.1f} | {rp95:.1f} | {rp95 / sp95:.2f} |\n")
    out.write("\nHits on the first page per query: ")
    out.write("; ".join(f"{r.engine}: " + ", ".join(f"`{q}` {n}" for q, n in r.hits.items()) for r in results))
    out.write("\n\nA query no whole word matches (`" + FALLBACK + "`) falls back to a substring search; its median: "
              + "; ".join(f"{r.engine} {r.fallback_ms:,.0f} ms" for r in results)
              + " (SQLite scans the table; PostgreSQL answers from the pg_trgm index).")
    out.write(f"\n\nRun {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on:\n\n" + "\n".join(machine()) + "\n")
    out.write("\nLoading: PostgreSQL by COPY (messages; tokens COPYed to a temporary table and turned into the "
              "`tsvector` column by one INSERT ... SELECT per 50,000), the GIN and trigram indexes made after "
              "the load; SQLite by executemany, its FTS5 index filled by the triggers as rows arrive. The load "
              "time includes siyu's tokeniser (rjieba) on every message.\n")
    out.write(HISTORY)
    return out.getvalue()


def main() -> None:
    results = [bench_sqlite(), bench_postgres()]
    OUT.write_text(report(results))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
