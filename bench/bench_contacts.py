"""Contact import from CSV (`siyu contacts import`'s path) against a raw insert of the same rows.

    uv run python bench/bench_contacts.py               # SCALE=small: 20,000 rows per engine
    SCALE=medium uv run python bench/bench_contacts.py  # 200,000 rows per engine
    SCALE=full uv run python bench/bench_contacts.py    # 1,000,000 rows per engine

Each engine gets a fresh database. The file (name, phone, email, city, gender, birthday, two tags) is
imported by `siyu.contacts.imports.import_file` in chunks of `CHUNK_ROWS` (2,000) rows, one transaction each, exactly as
the command line does — parsing, mapping, validation, identity lookup, inserts, events. Then the same
file again: every row finds its contact, nothing changes (the dedupe path). The raw limit is the same
rows already parsed and normalised, inserted straight through the driver into another workspace of the
same tables (contacts, identities, tags on contacts): SQLite `executemany`, PostgreSQL `COPY`, one
commit per chunk. Results go to docs/benchmarks_contacts.md.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from siyu.contacts import imports
from siyu.contacts.identities import normalize_email, normalize_phone
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SCALE", "small")
ROWS = {"small": 20_000, "medium": 200_000, "full": 1_000_000}[SCALE]
CHUNK = imports.CHUNK_ROWS
PG_ADMIN = os.environ.get("SIYU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CITIES = ("上海", "北京", "广州", "深圳", "杭州", "成都")
TAGS = ("VIP", "新客", "interest/tea", "interest/coffee")
ACTOR = Actor.cli("bench")


def make_file(rows: int) -> bytes:
    """A CSV as a brand would export it: Chinese headers, local phone numbers, two tags per row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机号", "邮箱", "城市", "性别", "生日", "标签"])
    for i in range(rows):
        writer.writerow([f"客户{i}", f"138{i:08d}", f"c{i}@example.com", CITIES[i % len(CITIES)],
                         "男" if i % 2 else "女", f"{1970 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                         f"{TAGS[i % 2]},{TAGS[2 + i % 2]}"])
    return out.getvalue().encode("utf-8")


@dataclass
class Normalised:
    contacts: list[tuple[Any, ...]]
    identities: list[tuple[Any, ...]]
    tags: list[tuple[int, int]]


def normalise(rows: int, base_id: int, tag_ids: list[int]) -> Normalised:
    """The rows the import stores, computed ahead so the raw insert times the database alone."""
    contacts, identities, tags = [], [], []
    for i in range(rows):
        cid = base_id + i
        phone, email = normalize_phone(f"138{i:08d}"), normalize_email(f"c{i}@example.com")
        born = date(1970 + i % 40, 1 + i % 12, 1 + i % 28)
        contacts.append((cid, f"客户{i}", CITIES[i % len(CITIES)], "male" if i % 2 else "female", born, phone, email))
        identities += [(cid, "phone", phone), (cid, "email", email)]
        tags += [(cid, tag_ids[i % 2]), (cid, tag_ids[2 + i % 2])]
    return Normalised(contacts, identities, tags)


def sessions_for(engine: Engine) -> Callable[[], Any]:
    maker = sessionmaker(bind=engine.execution_options(sqlite_immediate=True), expire_on_commit=False)

    @contextmanager
    def scope() -> Iterator[Session]:
        with maker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    return scope


def setup(engine: Engine) -> tuple[int, int]:
    """Two workspaces: one siyu imports into, one the raw insert fills."""
    from siyu.core import workspaces

    with Session(engine) as session:
        ws = workspaces.create_workspace(session, ACTOR, name="Bench import")
        raw = workspaces.create_workspace(session, ACTOR, name="Bench raw")
        session.commit()
        return ws.id, raw.id


def raw_tag_ids(engine: Engine, workspace_id: int) -> list[int]:
    """The raw workspace's four tags (made like the import makes them)."""
    from siyu.contacts.models import Tag, TagGroup
    from siyu.core.tenancy import bind_workspace

    with Session(engine) as session:
        bind_workspace(session, workspace_id)
        groups = {name: TagGroup(name=name) for name in ("import", "interest")}
        session.add_all(groups.values())
        session.flush()
        tags = [Tag(group_id=groups["import"].id, name="VIP"), Tag(group_id=groups["import"].id, name="新客"),
                Tag(group_id=groups["interest"].id, name="tea"), Tag(group_id=groups["interest"].id, name="coffee")]
        session.add_all(tags)
        session.commit()
        return [t.id for t in tags]


@dataclass
class Result:
    engine: str
    rows: int
    import_seconds: float
    again_seconds: float
    raw_seconds: float

    def rate(self, seconds: float) -> float:
        return self.rows / seconds


def timed_import(engine: Engine, workspace_id: int, content: bytes) -> tuple[float, Any]:
    started = time.perf_counter()
    imp = imports.import_file(workspace_id=workspace_id, content=content, filename="contacts.csv", mapping=None,
                              dry_run=False, actor=ACTOR, sessions=sessions_for(engine))
    return time.perf_counter() - started, imp


def run(name: str, url: str, raw_insert: Callable[[Normalised, int], None]) -> Result:
    upgrade(url)
    engine = make_engine(url)
    try:
        ws, raw_ws = setup(engine)
        content = make_file(ROWS)
        seconds, imp = timed_import(engine, ws, content)
        assert (imp.created_count, imp.error_count) == (ROWS, 0), (imp.created_count, imp.error_count, imp.errors[:3])
        again, imp2 = timed_import(engine, ws, content)
        assert (imp2.created_count, imp2.updated_count) == (0, ROWS)
        tag_ids = raw_tag_ids(engine, raw_ws)
        with engine.connect() as conn:
            top = conn.execute(text("SELECT coalesce(max(id), 0) FROM contacts")).scalar_one()
        data = normalise(ROWS, top + 1, tag_ids)
        started = time.perf_counter()
        raw_insert(data, raw_ws)
        raw = time.perf_counter() - started
        print(f"{name}: import {ROWS / seconds:,.0f} rows/s, again {ROWS / again:,.0f} rows/s, "
              f"raw {ROWS / raw:,.0f} rows/s", flush=True)
        return Result(name, ROWS, seconds, again, raw)
    finally:
        engine.dispose()


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def bench_sqlite() -> Result:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        path = Path(tmp) / "bench.db"

        def insert(data: Normalised, ws: int) -> None:
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
            for i in range(0, ROWS, CHUNK):
                contacts = data.contacts[i:i + CHUNK]
                conn.executemany(
                    "INSERT INTO contacts (id, workspace_id, name, city, gender, birthday, phone, email, attributes,"
                    " do_not_contact, stage, order_count, revenue, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,'{}',0,'new',0,0,?,?)",
                    [(c[0], ws, c[1], c[2], c[3], c[4].isoformat(), c[5], c[6], now, now) for c in contacts])
                conn.executemany(
                    "INSERT INTO contact_identities (workspace_id, contact_id, type, value, created_at)"
                    " VALUES (?,?,?,?,?)", [(ws, *r, now) for r in data.identities[2 * i:2 * (i + CHUNK)]])
                conn.executemany(
                    "INSERT INTO contact_tags (workspace_id, contact_id, tag_id, source, created_at)"
                    " VALUES (?,?,?,'import',?)", [(ws, *r, now) for r in data.tags[2 * i:2 * (i + CHUNK)]])
                conn.commit()
            conn.close()

        return run("SQLite", f"sqlite:///{path}", insert)


def bench_postgres() -> Result:
    name = f"siyu_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        import psycopg

        def insert(data: Normalised, ws: int) -> None:
            with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
                now = datetime.now(UTC)
                for i in range(0, ROWS, CHUNK):
                    with conn.cursor() as cur:
                        with cur.copy("COPY contacts (id, workspace_id, name, city, gender, birthday, phone, email,"
                                      " attributes, do_not_contact, stage, order_count, revenue, created_at,"
                                      " updated_at) FROM STDIN") as copy:
                            for c in data.contacts[i:i + CHUNK]:
                                copy.write_row((c[0], ws, c[1], c[2], c[3], c[4], c[5], c[6], "{}", False, "new",
                                                0, 0, now, now))
                        with cur.copy("COPY contact_identities (workspace_id, contact_id, type, value, created_at)"
                                      " FROM STDIN") as copy:
                            for r in data.identities[2 * i:2 * (i + CHUNK)]:
                                copy.write_row((ws, *r, now))
                        with cur.copy("COPY contact_tags (workspace_id, contact_id, tag_id, source, created_at)"
                                      " FROM STDIN") as copy:
                            for r in data.tags[2 * i:2 * (i + CHUNK)]:
                                copy.write_row((ws, *r, "import", now))
                    conn.commit()

        return run("PostgreSQL", url, insert)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    with create_engine(PG_ADMIN).connect() as c:
        pg = c.execute(text("SHOW server_version")).scalar_one()
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (shared with other work during the run)",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL {pg} "
        "(same machine, default settings)",
        "- load average at the end of the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        f"- siyu {version('siyu')}, SQLAlchemy {version('sqlalchemy')}, psycopg {version('psycopg')}, "
        f"openpyxl {version('openpyxl')}, phonenumbers {version('phonenumbers')}",
        f"- {platform.platform()}",
    ]


def main() -> None:
    results = [bench_sqlite(), bench_postgres()]
    lines = [
        "# Contact import from CSV: siyu vs raw insert",
        "",
        f"`SCALE={SCALE} uv run python bench/bench_contacts.py` — {ROWS:,} rows per engine (name, phone, "
        "email, city, gender, birthday, two tags), imported by `import_file` (the path of "
        f"`siyu contacts import`) in chunks of {CHUNK} rows, one transaction each; then the same file "
        "again (every row finds its contact: the dedupe path). The raw limit inserts the same rows, parsed "
        "and normalised beforehand, into the same tables (contacts, identities, tags on contacts): SQLite "
        f"`executemany`, PostgreSQL `COPY`, one commit per {CHUNK} rows.",
        "",
        "| engine | rows | import rows/s | re-import rows/s | raw rows/s | ratio import/raw |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.engine} | {r.rows:,} | {r.rate(r.import_seconds):,.0f} | {r.rate(r.again_seconds):,.0f}"
                     f" | {r.rate(r.raw_seconds):,.0f} | {r.raw_seconds / r.import_seconds:.2f} |")
    lines += ["", f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on:", "", *machine(), ""]
    lines += [
        "What the import does per row that the raw insert does not: decode and split the CSV, map the "
        "columns, normalise the phone (mainland mobiles through phonenumbers' own mobile pattern, others "
        "through `phonenumbers`) and the email, check every field and attribute (`validate_fields`), find "
        "existing identities (one query per chunk), create missing tags, and record a `contact.created` "
        "event and two `tag.added` events per new contact (one batch per chunk: COPY on PostgreSQL). "
        "PostgreSQL: contacts COPYed with ids from their sequence, identities and tags COPYed through a "
        "staging table with ON CONFLICT DO NOTHING, ANALYZE each time the import has doubled the tables. "
        "The re-import reads and checks the same rows but writes nothing.",
        "",
    ]
    text_out = "\n".join(lines)
    print(text_out)
    (ROOT / "docs" / "benchmarks_contacts.md").write_text(text_out, encoding="utf-8")


if __name__ == "__main__":
    main()
