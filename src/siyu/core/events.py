"""Events: facts about people and the business, recorded by modules and ingested from shops in batches.

`record_event` is the one call a module uses to record a fact; `record_events` takes a batch (the REST
API, bulk producers such as demo data). Both check known types against the schema registry
(`siyu.core.event_schemas`), let a registered person resolver map identities to contacts, skip events
whose idempotency key the workspace has already seen, and enqueue one `event.dispatch` job per
(event, matching subscriber) in the caller's transaction. Ingestion is not audited: events are the
facts themselves, not changes made by a person.

A JSON batch with no bad item is decoded and checked in one msgspec pass (`siyu.core.event_input`);
any other batch, and every batch given as Python objects, is checked by pydantic item by item. Either
way the items reach the insert as columns, straight through the driver (PostgreSQL: COPY; SQLite: one
executemany): this path is measured against a raw insert in bench/bench_events.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import lru_cache
from itertools import repeat
from typing import Any, NamedTuple, cast
from uuid import uuid4

import psycopg
import pydantic_core
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock, jobs
from siyu.core.db import is_postgres
from siyu.core.errors import Invalid, SiyuError, TenancyViolation
from siyu.core.event_input import (
    BATCH,
    BATCH_SHAPE,
    EARLIEST,
    FUTURE_TOLERANCE,
    IDENTITY_TYPES,
    ITEM,
    ITEMS,
    MAX_BATCH,
    Checked,
    EventBatch,
    EventItem,
    decode_batch,
)
from siyu.core.event_schemas import register_event_schema, schema_for
from siyu.core.models import Event
from siyu.core.pagination import page
from siyu.core.schemas import NUL_REFUSED, nul_path
from siyu.core.tenancy import bind_workspace, bound_workspace, get_scoped

__all__ = [
    "IDENTITY_TYPES",
    "MAX_BATCH",
    "BatchResult",
    "EventBatch",
    "EventItem",
    "ItemError",
    "PersonError",
    "PersonRef",
    "StoredBatch",
    "get_event",
    "list_events",
    "on_batch",
    "on_event",
    "record_event",
    "record_events",
    "record_events_json",
    "register_event_schema",
    "register_person_resolver",
]

DISPATCH = "event.dispatch"


@dataclass(frozen=True)
class ItemError:
    """Why one item of a batch was refused; `field` is a dotted path such as `properties.items.0.qty`."""

    index: int
    code: str
    message: str
    field: str | None


@dataclass
class BatchResult:
    """What became of a batch: stored, already known, refused (by index)."""

    accepted: int = 0
    duplicates: int = 0
    errors: list[ItemError] = field(default_factory=list)
    # index in the batch -> id of the event stored for it (accepted items only)
    event_ids: dict[int, int] = field(default_factory=dict)


# --- person resolution ------------------------------------------------------------------------------


class PersonRef(NamedTuple):
    """The person an event names, as given: a contact id and/or an identity."""

    contact_id: int | None
    identity_type: str | None
    identity_value: str | None


@dataclass(frozen=True)
class PersonError:
    """A resolver's refusal of one event's person (a contact of another workspace, a bad phone number)."""

    code: str
    message: str
    field: str


# Gets the batch's refs in one call (so it can answer with one query) and returns, per ref, the
# contact id to store (None: no contact known, the identity stays on the event) or a PersonError.
PersonResolver = Callable[[Session, Sequence[PersonRef]], Sequence["int | PersonError | None"]]
_resolver: PersonResolver | None = None


def register_person_resolver(fn: PersonResolver | None) -> None:
    """Install the function mapping events' identities to contacts (the contacts module); None removes it."""
    global _resolver
    _resolver = fn


# --- subscribers ------------------------------------------------------------------------------------

EventHandler = Callable[[Session, Event], None]
# The event types a subscriber wants from the bound workspace right now, asked once per batch: a
# subscriber whose interest is data (auto-tagging rules on any event type) listens to "*" and still
# queues jobs only for the types some rule of that workspace is about.
EventInterest = Callable[[Session], Collection[str]]


@dataclass(frozen=True)
class Subscriber:
    name: str
    pattern: str
    fn: EventHandler
    wants: EventInterest | None = None


_subscribers: dict[str, Subscriber] = {}


def on_event(
    pattern: str, name: str, *, wants: EventInterest | None = None
) -> Callable[[EventHandler], EventHandler]:
    """Register an in-process handler for events whose type matches `pattern` (`order.paid`, `order.*`).

    Each stored event that matches gets its own `event.dispatch` job, so the handler runs once per
    event in a worker, in the worker's transaction, after the recording transaction committed.
    `wants`, if given, narrows the matching types per workspace and batch (see EventInterest).
    """

    def register(fn: EventHandler) -> EventHandler:
        _subscribers[name] = Subscriber(name, pattern, fn, wants)
        _subscribers_of.cache_clear()
        return fn

    return register


def remove_subscriber(name: str) -> None:
    """Forget a subscriber (plugins unloading, tests)."""
    _subscribers.pop(name, None)
    _subscribers_of.cache_clear()


@lru_cache(maxsize=1024)
def _subscribers_of(event_type: str) -> tuple[str, ...]:
    return tuple(s.name for s in _subscribers.values() if fnmatchcase(event_type, s.pattern))


@jobs.handler(DISPATCH)
def dispatch_event(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Run one subscriber on one event (a database-only job: exactly once with the job's commit)."""
    bind_workspace(session, ctx.workspace_id)
    name = str(ctx.payload["subscriber"])
    subscriber = _subscribers.get(name)
    if subscriber is None:
        # The subscriber left the code base after the event was stored: nothing is owed to it.
        return {"skipped": f"no subscriber named {name!r} in this process"}
    event = get_scoped(session, Event, ctx.payload["event_id"], what="event")
    subscriber.fn(session, event)
    return {"subscriber": name, "event_id": event.id}


@dataclass(frozen=True)
class StoredBatch:
    """What one batch stored: how many events of each type, and the contacts they name per type."""

    counts: Mapping[str, int]
    contact_ids: Mapping[str, frozenset[int]]

    def contacts_of(self, types: Collection[str]) -> set[int]:
        """The contacts named by this batch's events of any of `types`."""
        return {cid for t in types for cid in self.contact_ids.get(t, ())}


# A batch listener sees each stored batch once, in the recording transaction: for reactions that
# depend on which kinds of thing happened and to whom, not on each event (the contacts module
# schedules one refresh per affected segment, and one lifecycle refresh per batch of orders, instead
# of one job per event).
BatchListener = Callable[[Session, int, StoredBatch], None]
_batch_listeners: dict[str, BatchListener] = {}


def on_batch(name: str) -> Callable[[BatchListener], BatchListener]:
    """Register `fn(session, workspace_id, batch: StoredBatch)`, called after each batch that stored events."""

    def register(fn: BatchListener) -> BatchListener:
        _batch_listeners[name] = fn
        return fn

    return register


def remove_batch_listener(name: str) -> None:
    """Forget a batch listener (plugins unloading, tests)."""
    _batch_listeners.pop(name, None)


# --- recording --------------------------------------------------------------------------------------


def _workspace_of(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("events are recorded through a session bound to a workspace")
    return workspace_id


def _dotted(prefix: str | None, loc: tuple[int | str, ...]) -> str | None:
    parts = ([prefix] if prefix else []) + [str(p) for p in loc]
    return ".".join(parts) or None


def _error_of(index: int, exc: ValidationError, prefix: str | None = None) -> ItemError:
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    where = _dotted(prefix, tuple(first["loc"]))
    kind = first["type"]
    if kind == "extra_forbidden":
        return ItemError(index, "unknown_field", f"unknown field {where!r}", where)
    if kind == "missing":
        return ItemError(index, "missing", f"{where} is required", where)
    if kind in ("dict_type", "model_type", "typed_dict_type") and where is None:
        return ItemError(index, "invalid", "an event is a JSON object", None)
    return ItemError(index, "invalid", f"{where}: {first['msg']}" if where else str(first["msg"]), where)


def _validate_all(one: TypeAdapter[Any], many: TypeAdapter[list[Any]], values: list[Any]) -> list[Any]:
    """Validate all values in one call; if some are bad, one by one to tell which (errors in their place)."""
    try:
        return many.validate_python(values)
    except ValidationError:
        out: list[Any] = []
        for value in values:
            try:
                out.append(one.validate_python(value))
            except ValidationError as exc:
                out.append(exc)
        return out


def _sqlite_time(value: datetime) -> str:
    # The text SQLAlchemy's SQLite DATETIME stores, so ORM reads and range filters see the same thing.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


_COLUMNS = (
    "workspace_id, type, occurred_at, received_at, idempotency_key, contact_id, identity_type, "
    "identity_value, source, properties"
)
_CONFLICT = " ON CONFLICT (workspace_id, idempotency_key) DO NOTHING"
_RETURNING = " RETURNING id, idempotency_key"
# PostgreSQL: COPY the batch into a session temp table (created on first use, emptied at every
# commit: no index, no constraint, no WAL), then move it into events with one INSERT ... SELECT ...
# ON CONFLICT DO NOTHING. Its DELETE empties the staging table at once, so a second batch in the same
# transaction starts from nothing. (A COPY straight into events measured no faster, and a retried
# batch would fail it on the unique key, leaving an error in the server's log each time.)
_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS siyu_events_in "
    "(t text, o timestamptz, k text, c bigint, it text, iv text, p jsonb) ON COMMIT DELETE ROWS"
)
_PG_COPY_STAGE = "COPY siyu_events_in (t, o, k, c, it, iv, p) FROM STDIN"
_PG_INSERT_COUNT = (
    f"WITH r AS (DELETE FROM siyu_events_in RETURNING *) INSERT INTO events ({_COLUMNS}) "
    "SELECT %s, r.t, r.o, %s, r.k, r.c, r.it, r.iv, %s, r.p FROM r" + _CONFLICT
)
_PG_INSERT = _PG_INSERT_COUNT + _RETURNING
_SQLITE_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)" + _CONFLICT


def _insert(
    session: Session,
    workspace_id: int,
    received_at: datetime,
    source: str,
    checked: Checked,
    occurred: list[datetime],
    *,
    with_ids: bool,
) -> list[tuple[int, str]] | int:
    """Insert the items (each with a key) skipping known keys: the (id, key) of each stored row in
    insertion order, or only their count."""
    conn = session.connection()
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if is_postgres(session):
        return _insert_postgres(
            cast("psycopg.Connection[tuple[Any, ...]]", dbapi), workspace_id, received_at, source, checked, occurred,
            with_ids,
        )
    # SQLite: executemany of a one-row INSERT (no RETURNING, which makes SQLite buffer every row it
    # returns). From its first row the insert holds SQLite's only write lock until the commit, and a
    # rowid primary key takes max(id) + 1: the rows it stored are the last `count` ids of the table.
    cursor = cast("sqlite3.Connection", dbapi).cursor()
    try:
        # _sqlite_time's text, written out: a function call per row shows at 1,000 rows a batch.
        times = [o.astimezone(UTC).isoformat(" ", "microseconds")[:26] for o in occurred]
        cursor.executemany(
            _SQLITE_INSERT,
            # The rows are made one at a time in C as the driver takes them.
            zip(
                repeat(workspace_id),
                checked.type,
                times,
                repeat(_sqlite_time(received_at)),
                checked.key,
                checked.contact_id,
                checked.identity_type,
                checked.identity_value,
                repeat(source),
                checked.properties,
            ),
        )
        # The rows inserted, skipped keys not counted.
        count = int(cursor.rowcount)
        if not with_ids:
            return count
        if count == 0:
            return []
        last = int(cursor.execute("SELECT max(id) FROM events").fetchone()[0])
        if count == len(checked.key):
            # No key was skipped: the ids follow the items' order.
            return list(zip(range(last - count + 1, last + 1), cast("list[str]", checked.key), strict=True))
        cursor.execute("SELECT id, idempotency_key FROM events WHERE id > ? ORDER BY id", (last - count,))
        return cast("list[tuple[int, str]]", cursor.fetchall())
    finally:
        cursor.close()


def _insert_postgres(
    conn: psycopg.Connection[tuple[Any, ...]],
    workspace_id: int,
    received_at: datetime,
    source: str,
    checked: Checked,
    occurred: list[datetime],
    with_ids: bool,
) -> list[tuple[int, str]] | int:
    with conn.cursor() as cursor:
        cursor.execute(_PG_STAGE)
        with cursor.copy(_PG_COPY_STAGE) as copy:
            write_row = copy.write_row
            for row in zip(
                checked.type,
                occurred,
                checked.key,
                checked.contact_id,
                checked.identity_type,
                checked.identity_value,
                checked.properties,
                strict=True,
            ):
                write_row(row)
        if not with_ids:
            cursor.execute(_PG_INSERT_COUNT, (workspace_id, received_at, source))
            return int(cursor.rowcount)
        cursor.execute(_PG_INSERT, (workspace_id, received_at, source))
        return cast("list[tuple[int, str]]", cursor.fetchall())


def record_events(session: Session, items: Sequence[Any], *, source: str = "module") -> BatchResult:
    """Store a batch: good items inserted (known keys skipped), bad ones reported by index, none raised."""
    return _record(session, _validate_all(ITEM, ITEMS, list(items)), source, maybe_nul=True)


def record_events_json(
    session: Session, body: bytes, *, source: str = "api", with_ids: bool = True
) -> BatchResult:
    """Store a batch sent as JSON `{"events": [...]}` (the REST API); a malformed body raises, items don't.

    `with_ids=False` leaves `event_ids` empty for a caller that only reports the counts (the REST API),
    which spares reading 1,000 ids back.
    """
    workspace_id = _workspace_of(session)
    _check_source(source)
    now = clock.now()
    # The common case, a batch with no bad item, is decoded and checked in one pass of msgspec; any
    # other body takes pydantic's path below, which tells each bad item's index and reason.
    checked = decode_batch(body, now + FUTURE_TOLERANCE)
    if checked is not None:
        return _store(session, workspace_id, source, now, checked, [], with_ids=with_ids)
    try:
        # JSON can only carry a NUL character as the escape \u0000, so most bodies skip that search.
        events = BATCH.validate_json(body)["events"]
        return _record(session, events, source, maybe_nul=b"\\u0000" in body, with_ids=with_ids)
    except ValidationError:
        pass
    try:
        raw = json.loads(body)
    except ValueError:
        raise SiyuError("the body is not valid JSON", field="body", code="malformed_json") from None
    try:
        batch = BATCH_SHAPE.validate_python(raw)
    except ValidationError as exc:
        error = _error_of(0, exc)
        if error.field is None:
            raise Invalid('the body is a JSON object {"events": [...]}', field="body") from None
        raise Invalid(error.message, field=error.field, code=error.code) from None
    return _record(session, _validate_all(ITEM, ITEMS, batch["events"]), source, maybe_nul=True, with_ids=with_ids)


def _check_source(source: str) -> None:
    if not source or len(source) > 40:
        raise Invalid("source is 1 to 40 characters", field="source")


def _record(
    session: Session, parsed: list[Any], source: str, *, maybe_nul: bool, with_ids: bool = True
) -> BatchResult:
    """Store items already checked against the envelope (ValidationErrors in place of bad ones)."""
    workspace_id = _workspace_of(session)
    _check_source(source)
    now = clock.now()
    latest = now + FUTURE_TOLERANCE
    errors: list[ItemError] = []
    good: list[tuple[int, EventItem]] = []
    by_type: dict[str, list[int]] = {}
    for index, value in enumerate(parsed):
        if isinstance(value, ValidationError):
            errors.append(_error_of(index, value))
            continue
        if maybe_nul and (where := nul_path(value)) is not None:
            # PostgreSQL stores no NUL in text or jsonb; refused on every engine so both behave alike.
            errors.append(ItemError(index, "invalid", NUL_REFUSED, where or None))
            continue
        occurred = value.get("occurred_at")
        if occurred is not None:
            if occurred > latest:
                errors.append(ItemError(index, "invalid", "occurred_at is in the future", "occurred_at"))
                continue
            if occurred < EARLIEST:
                errors.append(ItemError(index, "invalid", "occurred_at is before 1970", "occurred_at"))
                continue
            # Stored in UTC; offsets PostgreSQL cannot hold (beyond ±15:59) are valid ISO-8601 too.
            value["occurred_at"] = occurred.astimezone(UTC)
        schema = schema_for(value["type"])
        if schema is not None:
            if schema.key_required and not value.get("idempotency_key"):
                message = f"{value['type']} events need an idempotency_key"
                errors.append(ItemError(index, "missing", message, "idempotency_key"))
                continue
            by_type.setdefault(value["type"], []).append(len(good))
        good.append((index, value))

    # Known types: one validation call per type for the whole batch.
    refused: set[int] = set()
    for event_type, positions in by_type.items():
        schema = schema_for(event_type)
        assert schema is not None
        props = [good[p][1].get("properties", {}) for p in positions]
        for p, model in zip(positions, _validate_all(schema.one, schema.many, props), strict=True):
            if isinstance(model, ValidationError):
                errors.append(_error_of(good[p][0], model, "properties"))
                refused.add(p)
            else:
                good[p][1]["properties"] = model

    to_json = pydantic_core.to_json
    checked = Checked()
    for p, (index, value) in enumerate(good):
        if p in refused:
            continue
        identity = value.get("identity")
        checked.index.append(index)
        checked.type.append(value["type"])
        checked.occurred_at.append(value.get("occurred_at"))
        checked.key.append(value.get("idempotency_key"))
        checked.contact_id.append(value.get("contact_id"))
        checked.identity_type.append(identity["type"] if identity else None)
        checked.identity_value.append(identity["value"] if identity else None)
        # A known type's model serialises as it dumps itself, with no intermediate dict.
        checked.properties.append(to_json(value.get("properties", {})).decode())
    return _store(session, workspace_id, source, now, checked, errors, with_ids=with_ids)


def _store(
    session: Session,
    workspace_id: int,
    source: str,
    now: datetime,
    checked: Checked,
    errors: list[ItemError],
    *,
    with_ids: bool = True,
) -> BatchResult:
    """Insert checked items and account for the batch; `errors` are the items refused so far."""
    if _resolver is not None:
        _resolve_people(session, checked, errors)
    keys = checked.key
    if None in keys or len(set(keys)) < len(keys):
        _settle_keys(checked)
    occurred = [now if o is None else o for o in checked.occurred_at]
    # Ids are read back only for a caller that asks for them, to queue jobs for subscribers, or to tell
    # batch listeners what was stored.
    wanted = with_ids or bool(_batch_listeners) or any(_subscribers_of(t) for t in set(checked.type))
    stored = _insert(session, workspace_id, now, source, checked, occurred, with_ids=wanted) if checked.index else []
    accepted = stored if isinstance(stored, int) else len(stored)
    result = BatchResult(
        accepted=accepted,
        duplicates=len(checked.index) + checked.repeats - accepted,
        errors=sorted(errors, key=lambda e: e.index),
    )
    if isinstance(stored, int):
        return result
    if len(stored) == len(checked.key):
        # Every item was stored, in order: its columns are the stored rows'.
        rows = list(zip((event_id for event_id, _ in stored), checked.index, checked.type, checked.contact_id,
                        strict=True))
    else:
        position = {key: p for p, key in enumerate(checked.key)}
        rows = [(event_id, checked.index[p], checked.type[p], checked.contact_id[p])
                for event_id, key in stored for p in (position[key],)]
    if with_ids:
        result.event_ids = {index: event_id for event_id, index, _, _ in rows}
    if _subscribers:
        interest: dict[str, Collection[str]] = {}
        # Who gets each type, asked once per type of the batch (a subscriber's `wants` once per batch).
        takers: dict[str, list[str]] = {}
        for kind in set(checked.type):
            takers[kind] = []
            for name in _subscribers_of(kind):
                subscriber = _subscribers.get(name)
                if subscriber is not None and subscriber.wants is not None:
                    if name not in interest:
                        interest[name] = subscriber.wants(session)
                    if kind not in interest[name]:
                        continue
                takers[kind].append(name)
        for event_id, _, kind, _ in rows:
            for name in takers[kind]:
                payload = {"event_id": event_id, "subscriber": name}
                jobs.enqueue(session, DISPATCH, f"{event_id}:{name}", payload, workspace_id=workspace_id)
    if _batch_listeners and rows:
        counts: dict[str, int] = {}
        named: dict[str, set[int]] = {}
        for _, _, kind, cid in rows:
            counts[kind] = counts.get(kind, 0) + 1
            if cid is not None:
                named.setdefault(kind, set()).add(cid)
        batch = StoredBatch(counts, {kind: frozenset(ids) for kind, ids in named.items()})
        for listener in list(_batch_listeners.values()):
            listener(session, workspace_id, batch)
    return result


def _settle_keys(checked: Checked) -> None:
    """Give keyless items a fresh key; drop repeats of a key inside the batch (the first one wins)."""
    seen: set[str] = set()
    repeats: set[int] = set()
    for p, key in enumerate(checked.key):
        if key is None:
            checked.key[p] = uuid4().hex
        elif key in seen:
            repeats.add(p)
        else:
            seen.add(key)
    if repeats:
        checked.drop(repeats)
        # Counted as duplicates in the result.
        checked.repeats += len(repeats)


def _resolve_people(session: Session, checked: Checked, errors: list[ItemError]) -> None:
    """Let the resolver map each named person to a contact id, or refuse the item."""
    assert _resolver is not None
    contacts, identity_types, values = checked.contact_id, checked.identity_type, checked.identity_value
    named = [p for p, (c, t) in enumerate(zip(contacts, identity_types, strict=True)) if c is not None or t is not None]
    if not named:
        return
    if len(named) == len(contacts):
        refs = list(map(PersonRef, contacts, identity_types, values))
    else:
        refs = [PersonRef(contacts[p], identity_types[p], values[p]) for p in named]
    answers = _resolver(session, refs)
    if len(answers) != len(refs):
        raise RuntimeError("the person resolver must answer once per ref")
    refused: set[int] = set()
    for p, answer in zip(named, answers, strict=True):
        if type(answer) is PersonError:
            errors.append(ItemError(checked.index[p], answer.code, answer.message, answer.field))
            refused.add(p)
        else:
            contacts[p] = answer  # type: ignore[assignment]
    if refused:
        checked.drop(refused)


def record_event(
    session: Session,
    *,
    type: str,
    properties: Mapping[str, Any] | None = None,
    contact_id: int | None = None,
    identity: Mapping[str, str] | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    source: str = "module",
) -> Event | None:
    """Record one fact; None when the workspace already has an event with this idempotency key."""
    item: dict[str, Any] = {"type": type, "properties": dict(properties or {})}
    for name, value in (
        ("contact_id", contact_id),
        ("identity", dict(identity) if identity else None),
        ("occurred_at", occurred_at),
        ("idempotency_key", idempotency_key),
    ):
        if value is not None:
            item[name] = value
    result = record_events(session, [item], source=source)
    if result.errors:
        error = result.errors[0]
        raise Invalid(error.message, field=error.field, code=error.code)
    if not result.event_ids:
        return None
    return session.get(Event, result.event_ids[0])


# --- reading ----------------------------------------------------------------------------------------


def get_event(session: Session, event_id: Any) -> Event:
    """One event of the bound workspace (404 for any other)."""
    return get_scoped(session, Event, event_id, what="event")


def list_events(
    session: Session,
    *,
    type: str | None = None,
    contact_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[Event], str | None]:
    """A page of the bound workspace's events, newest first; `since` inclusive, `until` exclusive."""
    _workspace_of(session)
    stmt = select(Event)
    if type is not None:
        stmt = stmt.where(Event.type == type)
    if contact_id is not None:
        stmt = stmt.where(Event.contact_id == contact_id)
    if since is not None:
        stmt = stmt.where(Event.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(Event.occurred_at < until)
    return page(session, stmt, Event.id, cursor=cursor, limit=limit)
