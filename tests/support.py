"""Test helpers shared by the suite: databases of their own, committed data, factories."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from siyu.core.migrate import upgrade

PG_URL = os.environ.get("SIYU_TEST_DATABASE_URL") or None
# The suite's Redis; `make test` gives the SQLite run another database number, as both runs go side by side.
REDIS_URL = os.environ.get("SIYU_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def on_postgres() -> bool:
    """True when this run of the suite targets PostgreSQL."""
    return PG_URL is not None


def reset_postgres(url: str) -> None:
    """Empty a PostgreSQL database's public schema."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A migrated database of its own (a new PostgreSQL database or SQLite file), dropped afterwards.

    For tests that need committed data: crashes, concurrency, a server in another process.
    """
    if PG_URL:
        name = f"siyu_t_{secrets.token_hex(6)}"
        admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        try:
            upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        with tempfile.TemporaryDirectory(prefix="siyu-db-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'siyu.db'}"
            upgrade(url)
            yield url
