"""A chunk's inserts in the form each engine takes fastest: PostgreSQL COPY, SQLite `executemany`.

An import of a million rows writes a million contacts, two million identities and as many tags. Through
SQLAlchemy's multi-row INSERT each chunk's statement is built and parsed anew (psycopg caches no query
that long); here the rows go as data. PostgreSQL: the contacts' ids are drawn from their sequence and the
rows COPYed straight in (nothing can conflict with a new id); identities and tags are COPYed into a
temp table and moved with one INSERT ... SELECT ... ON CONFLICT DO NOTHING, so a pair another
transaction stored first is skipped and reported as before, never an error. SQLite takes the same rows
as parameters of one cached statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from siyu.contacts.models import ContactTag
from siyu.core.db import is_postgres

if TYPE_CHECKING:
    import psycopg

# SQLite refuses a statement with more than 32,766 parameters.
_SQLITE_BATCH = 10_000
# Every column a new contact's row sets; the others keep their NULL.
CONTACT_FIELDS = ("name", "nickname", "avatar_url", "gender", "birthday", "city", "locale", "phone", "email")
_CONTACT_COLUMNS = (
    "id", "workspace_id", *CONTACT_FIELDS, "attributes", "owner_id", "do_not_contact", "stage", "order_count",
    "revenue", "created_at", "updated_at",
)
_COPY_CONTACTS = f"COPY contacts ({', '.join(_CONTACT_COLUMNS)}) FROM STDIN"
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) FROM generate_series(1, %s)"

# Staging tables: created on first use in a session, emptied at every commit (no index, no WAL). The
# INSERT's DELETE ... RETURNING empties them at once, so the next chunk of the transaction starts clean.
_STAGE_IDENTITIES = (
    "CREATE TEMP TABLE IF NOT EXISTS siyu_import_identities "
    "(contact_id bigint, type text, value text) ON COMMIT DELETE ROWS"
)
_COPY_IDENTITIES = "COPY siyu_import_identities (contact_id, type, value) FROM STDIN"
# One lock order for every writer (ORDER BY type, value), as `service.insert_identities` keeps.
_MOVE_IDENTITIES = (
    "WITH r AS (DELETE FROM siyu_import_identities RETURNING *) "
    "INSERT INTO contact_identities (workspace_id, contact_id, type, value, created_at) "
    "SELECT %s, r.contact_id, r.type, r.value, %s FROM r ORDER BY r.type, r.value "
    "ON CONFLICT (workspace_id, type, value) DO NOTHING RETURNING id"
)
_SQLITE_CONTACTS = (
    f"INSERT INTO contacts ({', '.join(_CONTACT_COLUMNS)}) VALUES ({', '.join('?' * len(_CONTACT_COLUMNS))})"
)
_SQLITE_IDENTITIES = (
    "INSERT INTO contact_identities (workspace_id, contact_id, type, value, created_at) VALUES (?,?,?,?,?) "
    "ON CONFLICT (workspace_id, type, value) DO NOTHING"
)
_SQLITE_TAGS = (
    "INSERT INTO contact_tags (workspace_id, contact_id, tag_id, source, created_at) VALUES (?,?,?,?,?) "
    "ON CONFLICT (workspace_id, contact_id, tag_id) DO NOTHING"
)
_STAGE_TAGS = (
    "CREATE TEMP TABLE IF NOT EXISTS siyu_import_tags (contact_id bigint, tag_id bigint) ON COMMIT DELETE ROWS"
)
_COPY_TAGS = "COPY siyu_import_tags (contact_id, tag_id) FROM STDIN"
_MOVE_TAGS = (
    "WITH r AS (DELETE FROM siyu_import_tags RETURNING *) "
    "INSERT INTO contact_tags (workspace_id, contact_id, tag_id, source, created_at) "
    "SELECT %s, r.contact_id, r.tag_id, %s, %s FROM r ORDER BY r.contact_id, r.tag_id "
    "ON CONFLICT (workspace_id, contact_id, tag_id) DO NOTHING RETURNING contact_id, tag_id"
)


def _pg(session: Session) -> psycopg.Connection[tuple[Any, ...]]:
    session.flush()  # the ORM's pending changes go first: the driver's statements bypass it
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    return cast("psycopg.Connection[tuple[Any, ...]]", dbapi)


def insert_contacts(session: Session, workspace_id: int, rows: Sequence[Mapping[str, Any]], *,
                    owner_id: int | None, now: datetime) -> list[int]:
    """Insert new contacts (their fields and `attributes`); their ids, in the order given."""
    if not rows:
        return []
    if not is_postgres(session):
        return _sqlite_contacts(session, workspace_id, rows, owner_id=owner_id, now=now)
    conn = _pg(session)
    with _driver_errors(_COPY_CONTACTS), conn.cursor() as cursor:
        cursor.execute(_NEXT_IDS, (len(rows),))
        ids = sorted(int(r[0]) for r in cursor.fetchall())
        with cursor.copy(_COPY_CONTACTS) as copy:
            for contact_id, row in zip(ids, rows, strict=True):
                copy.write_row((
                    contact_id, workspace_id, *(row.get(f) for f in CONTACT_FIELDS),
                    _json(row.get("attributes")), owner_id, False, "new", 0, 0, now, now,
                ))
    return ids


def _sqlite_contacts(session: Session, workspace_id: int, rows: Sequence[Mapping[str, Any]], *,
                     owner_id: int | None, now: datetime) -> list[int]:
    # The chunk's transaction holds SQLite's only write lock (siyu's writers BEGIN IMMEDIATE), so the
    # ids after the largest one are free: given explicitly, they need no RETURNING, which would make
    # the driver run the statement once per row.
    conn = session.connection()
    first = int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) + 1 FROM contacts").scalar_one())
    stamp = _sqlite_time(now)
    values = [
        (first + i, workspace_id, *(_sqlite_value(row.get(f)) for f in CONTACT_FIELDS), _json(row.get("attributes")),
         owner_id, 0, "new", 0, 0, stamp, stamp)
        for i, row in enumerate(rows)
    ]
    conn.exec_driver_sql(_SQLITE_CONTACTS, values)
    return list(range(first, first + len(rows)))


def _sqlite_time(value: datetime) -> str:
    # The text SQLAlchemy's SQLite DATETIME stores, so ORM reads and range filters see the same thing.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _sqlite_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _json(value: Mapping[str, Any] | None) -> str:
    return json.dumps(value or {}, ensure_ascii=False, default=_json_default)


@contextmanager
def _driver_errors(statement: str) -> Iterator[None]:
    """The driver's own errors as SQLAlchemy's, which the chunk answers by going row by row."""
    try:
        yield
    except DBAPIError:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("psycopg", "sqlite3"):
            raise
        raise DBAPIError(statement, None, exc) from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def insert_identities(session: Session, workspace_id: int, rows: Sequence[tuple[int, str, str]], *,
                      now: datetime) -> int:
    """Insert (contact id, type, value) rows, skipping pairs already taken; how many were stored."""
    if not rows:
        return 0
    if is_postgres(session):
        with _driver_errors(_MOVE_IDENTITIES), _pg(session).cursor() as cursor:
            cursor.execute(_STAGE_IDENTITIES)
            with cursor.copy(_COPY_IDENTITIES) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_MOVE_IDENTITIES, (workspace_id, now))
            return len(cursor.fetchall())
    stamp = _sqlite_time(now)
    values = [(workspace_id, c, t, v, stamp) for c, t, v in sorted(rows, key=lambda r: (r[1], r[2]))]
    return int(session.connection().exec_driver_sql(_SQLITE_IDENTITIES, values).rowcount)


def insert_contact_tags(session: Session, workspace_id: int, pairs: Sequence[tuple[int, int]], *, source: str,
                        now: datetime) -> list[tuple[int, int]]:
    """Put tags on contacts, skipping pairs already there; the (contact id, tag id) pairs added."""
    if not pairs:
        return []
    if is_postgres(session):
        with _driver_errors(_MOVE_TAGS), _pg(session).cursor() as cursor:
            cursor.execute(_STAGE_TAGS)
            with cursor.copy(_COPY_TAGS) as copy:
                for pair in pairs:
                    copy.write_row(pair)
            cursor.execute(_MOVE_TAGS, (workspace_id, source, now))
            return [(int(c), int(t)) for c, t in cursor.fetchall()]
    # The pairs already there are read first; the chunk holds SQLite's write lock, so no one adds one
    # between that read and the insert, and the rest is exactly what the insert adds.
    contact_ids = sorted({c for c, _ in pairs})
    there: set[tuple[int, int]] = set()
    for i in range(0, len(contact_ids), _SQLITE_BATCH):
        batch = contact_ids[i:i + _SQLITE_BATCH]
        rows = session.execute(
            select(ContactTag.contact_id, ContactTag.tag_id).where(ContactTag.contact_id.in_(batch))
        )
        there.update((int(c), int(t)) for c, t in rows)
    added = sorted(p for p in set(pairs) if p not in there)
    if added:
        stamp = _sqlite_time(now)
        session.connection().exec_driver_sql(_SQLITE_TAGS, [(workspace_id, c, t, source, stamp) for c, t in added])
    return added



# Statistics are refreshed when an import has created 2,000, 4,000, 8,000... contacts.
_FIRST_ANALYZE = 2_000


def keep_statistics(session: Session, created_before: int, created_after: int) -> None:
    """Refresh PostgreSQL's statistics of the tables an import fills each time it has doubled them.

    A table the planner believes small (new, or a new workspace in it) is searched through its
    workspace index and filtered: every chunk's identity lookup would then read the whole workspace,
    and an import would slow down as it grows. Autovacuum catches up only after a minute or more; an
    ANALYZE at each doubling costs a few hundred milliseconds over a million rows, and keeps every
    lookup on the unique (workspace, type, value) index. A role that doesn't own the tables gets a
    warning from PostgreSQL, not an error, and the import goes on.
    """
    if is_postgres(session) and doubled(created_before, created_after):
        session.execute(text("ANALYZE contacts, contact_identities, contact_tags"))


def doubled(before: int, after: int) -> bool:
    """True when going from `before` to `after` passed 2,000, 4,000, 8,000... (one of them, or more)."""
    if after < _FIRST_ANALYZE:
        return False
    threshold = _FIRST_ANALYZE
    while threshold * 2 <= after:
        threshold *= 2
    return before < threshold
