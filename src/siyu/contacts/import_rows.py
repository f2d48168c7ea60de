"""Writing a chunk of imported rows: the batched path through identity resolution.

`upsert_contact` resolves one person at a time. An import of a million rows can't afford a few queries
per row, so a chunk is written in bulk: one query finds every identity the chunk names, new contacts and
their identities are inserted in one statement each, events are recorded as one batch. The bulk path
takes only the plain cases — a row whose identities point to no contact or to exactly one. A row whose
identities point to several contacts (a merge or a merge proposal) goes through `upsert_contact`, and so
does the whole chunk when another transaction takes one of its identities first: identity resolution
itself is never written twice.

Rows of a chunk that name the same person (the same phone on two rows) are one group: the first row of
the group creates the contact, the others update it, as if upserted in file order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from siyu.contacts import import_sql
from siyu.contacts.import_mapping import RowInput, column_of
from siyu.contacts.models import AttributeDefinition, Contact, Tag, TagGroup
from siyu.contacts.service import lookup_identities, upsert_contact, validate_fields
from siyu.contacts.staff import default_owner_id
from siyu.core import clock
from siyu.core.db import any_of
from siyu.core.errors import Invalid, SiyuError
from siyu.core.events import record_events
from siyu.core.tenancy import bound_workspace

Pair = tuple[str, str]
SOURCE = "import"
CREATED, UPDATED, ERROR = "created", "updated", "error"
Event = dict[str, Any]  # an item for `record_events`


class _Raced(Exception):
    """Another transaction took one of the chunk's new identities: the chunk goes row by row instead."""


@dataclass
class ChunkResult:
    """What a chunk did: per row its outcome, and the problems of the rows that changed nothing."""

    outcomes: dict[int, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(1 for o in self.outcomes.values() if o == CREATED)

    @property
    def updated(self) -> int:
        return sum(1 for o in self.outcomes.values() if o == UPDATED)

    def fail(self, row: RowInput, column: str | None, message: str) -> None:
        self.outcomes[row.row] = ERROR
        self.errors.append({"row": row.row, "column": column, "message": message, "values": row.values})


@dataclass
class ChunkContext:
    """What stays the same for every chunk of one import."""

    mapping: Mapping[str, str]
    definitions: Mapping[str, AttributeDefinition]
    overwrite: bool = False
    import_id: int | None = None


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("imports write through a session bound to a workspace")
    return workspace_id


def _validated(session: Session, rows: Sequence[RowInput], ctx: ChunkContext, result: ChunkResult) -> list[RowInput]:
    good: list[RowInput] = []
    for row in rows:
        if row.errors:
            for column, message in row.errors:
                result.fail(row, column, message)
            continue
        try:
            fields, attributes = validate_fields(session, row.fields, row.attributes, definitions=ctx.definitions)
        except Invalid as exc:
            result.fail(row, column_of(exc.field, ctx.mapping), exc.message)
            continue
        row.fields = {k: v for k, v in fields.items() if v is not None}
        row.attributes = {k: v for k, v in attributes.items() if v is not None}
        good.append(row)
    return good


def _groups(rows: Sequence[RowInput]) -> list[list[RowInput]]:
    """Rows joined when they share an identity, each group in file order."""
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Pair, int] = {}
    for i, row in enumerate(rows):
        for pair in row.pairs:
            if pair in owner:
                a, b = root(owner[pair]), root(i)
                parent[max(a, b)] = min(a, b)
            else:
                owner[pair] = i
    groups: dict[int, list[RowInput]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(root(i), []).append(row)
    return list(groups.values())


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _fill(target: dict[str, Any], values: Mapping[str, Any], *, overwrite: bool) -> list[str]:
    changed = []
    for key, value in values.items():
        if (overwrite or _empty(target.get(key))) and target.get(key) != value:
            target[key] = value
            changed.append(key)
    return changed


def _tag_ids(session: Session, names: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Tag ids for (group, name) pairs; groups and tags a file names that don't exist yet are created."""
    if not names:
        return {}
    workspace_id = _workspace(session)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = clock.now()
    group_names = sorted({g for g, _ in names})
    session.execute(
        dialect.insert(TagGroup).values([{"workspace_id": workspace_id, "name": g, "created_at": now}
                                         for g in group_names])
        .on_conflict_do_nothing(index_elements=["workspace_id", "name"])
    )
    groups = dict(session.execute(select(TagGroup.name, TagGroup.id).where(TagGroup.name.in_(group_names))).all())
    session.execute(
        dialect.insert(Tag).values([{"workspace_id": workspace_id, "group_id": groups[g], "name": n,
                                     "created_at": now} for g, n in sorted(names)])
        .on_conflict_do_nothing(index_elements=["workspace_id", "group_id", "name"])
    )
    found = session.execute(
        select(Tag.group_id, Tag.name, Tag.id).where(Tag.group_id.in_(groups.values()),
                                                    Tag.name.in_({n for _, n in names}))
    ).all()
    group_of = {gid: name for name, gid in groups.items()}
    return {(group_of[g], n): i for g, n, i in found if (group_of[g], n) in names}


def _tag_contacts(session: Session, pairs: set[tuple[int, int]], tag_names: Mapping[int, str]) -> list[Event]:
    """Put tags on contacts (pairs already there stay); a `tag.added` event for each new one, to record."""
    if not pairs:
        return []
    added = import_sql.insert_contact_tags(session, _workspace(session), sorted(pairs), source=SOURCE,
                                           now=clock.now())
    return [
        {"type": "tag.added", "contact_id": c, "properties": {"tag_id": t, "tag": tag_names[t], "source": SOURCE}}
        for c, t in added
    ]


def _insert_identities(session: Session, rows: Sequence[tuple[int, str, str]]) -> int:
    """Insert (contact id, type, value) rows, skipping pairs already taken; how many were stored."""
    return import_sql.insert_identities(session, _workspace(session), rows, now=clock.now())


def _events(session: Session, items: list[Event]) -> None:
    if items:
        outcome = record_events(session, items, source="contacts")
        if outcome.errors:
            raise Invalid(outcome.errors[0].message, field=outcome.errors[0].field)


def _bulk(
    session: Session, rows: list[RowInput], ctx: ChunkContext, result: ChunkResult, start: int
) -> tuple[list[list[RowInput]], list[Event]]:
    """Write the plain groups in bulk; the groups left for `upsert_contact` (several contacts found),
    and the events of what was written, for the caller to record with the chunk's others in one batch.

    In a dry run, earlier chunks were rolled back: a group naming a person an earlier chunk's row
    named (`earliest` before `start`) is counted as an update, as the real run would do, and not written.
    """
    workspace_id = _workspace(session)
    groups = _groups(rows)
    wanted = [p for row in rows for p in row.pairs]
    found = lookup_identities(session, wanted)
    new: list[tuple[list[RowInput], dict[str, Any]]] = []
    existing: dict[int, list[list[RowInput]]] = {}
    remembered: list[list[RowInput]] = []
    slow: list[list[RowInput]] = []
    for group in groups:
        ids = {found[p] for row in group for p in row.pairs if p in found}
        if len(ids) > 1:
            slow.append(group)
        elif ids:
            existing.setdefault(ids.pop(), []).append(group)
        elif any(row.earliest is not None and row.earliest < start for row in group):
            remembered.append(group)
        else:
            new.append((group, {}))

    # New people: one INSERT for the contacts, one for their identities.
    events: list[Event] = []
    if new:
        values = []
        for group, _ in new:
            fields: dict[str, Any] = {}
            attributes: dict[str, Any] = {}
            for row in group:
                for kind, value in row.pairs:
                    if kind in ("phone", "email") and not fields.get(kind):
                        fields[kind] = value
                _fill(fields, row.fields, overwrite=ctx.overwrite)
                _fill(attributes, row.attributes, overwrite=ctx.overwrite)
            values.append({**fields, "attributes": attributes})
        new_ids = import_sql.insert_contacts(session, workspace_id, values, owner_id=default_owner_id(session),
                                         now=clock.now())
        identity_rows = []
        for (group, _), contact_id in zip(new, new_ids, strict=True):
            pairs = list(dict.fromkeys(p for row in group for p in row.pairs))
            identity_rows += [(contact_id, kind, value) for kind, value in pairs]
            for i, row in enumerate(group):
                result.outcomes[row.row] = CREATED if i == 0 else UPDATED
                row.contact_id = contact_id
            events.append({"type": "contact.created", "contact_id": contact_id,
                           "properties": {"source": SOURCE}})
        if _insert_identities(session, identity_rows) < len(identity_rows):
            raise _Raced()

    # Known people: fill their fields, add the identities they lack.
    if existing:
        found_contacts = select(Contact).where(any_of(session, Contact.id, list(existing)))
        contacts = {c.id: c for c in session.execute(found_contacts).scalars()}
        missing_rows: list[tuple[int, str, str]] = []
        for contact_id, contact_groups in existing.items():
            contact = contacts.get(contact_id)
            if contact is None:
                raise _Raced()  # merged away by a concurrent transaction
            current = {k: getattr(contact, k) for k in ("name", "nickname", "avatar_url", "gender", "birthday",
                                                        "city", "locale", "phone", "email")}
            attributes = dict(contact.attributes or {})
            changed: list[str] = []
            for group in contact_groups:
                for row in group:
                    for pair in row.pairs:
                        if pair not in found:
                            found[pair] = contact_id
                            missing_rows.append((contact_id, *pair))
                            if pair[0] in ("phone", "email") and not current[pair[0]]:
                                current[pair[0]] = pair[1]
                                changed.append(pair[0])
                    changed += _fill(current, row.fields, overwrite=ctx.overwrite)
                    changed += [f"attributes.{k}" for k in _fill(attributes, row.attributes,
                                                                 overwrite=ctx.overwrite)]
                    result.outcomes[row.row] = UPDATED
                    row.contact_id = contact_id
            if changed:
                for key in dict.fromkeys(c for c in changed if not c.startswith("attributes.")):
                    setattr(contact, key, current[key])
                if attributes != (contact.attributes or {}):
                    contact.attributes = attributes
                events.append({"type": "contact.updated", "contact_id": contact_id,
                               "properties": {"fields": sorted(set(changed)), "source": SOURCE}})
        session.flush()
        if _insert_identities(session, missing_rows) < len(missing_rows):
            raise _Raced()
    for group in remembered:
        for row in group:
            result.outcomes[row.row] = UPDATED
    return slow, events


def _upsert_rows(session: Session, rows: Sequence[RowInput], ctx: ChunkContext, result: ChunkResult) -> None:
    """The careful path: one `upsert_contact` per row, each in its own savepoint."""
    for row in rows:
        try:
            with session.begin_nested():
                contact, created = upsert_contact(
                    session, identities=row.pairs, fields=row.fields, attributes=row.attributes, actor=None,
                    source=SOURCE, overwrite=ctx.overwrite,
                )
        except SiyuError as exc:
            result.fail(row, column_of(exc.field, ctx.mapping), exc.message)
            continue
        except DBAPIError as exc:
            result.fail(row, None, f"the database refused this row: {str(exc.orig).splitlines()[0]}")
            continue
        result.outcomes[row.row] = CREATED if created else UPDATED
        row.contact_id = contact.id


def _apply_tags(session: Session, rows: Sequence[RowInput], result: ChunkResult) -> list[Event]:
    tagged = [r for r in rows if r.tags and result.outcomes.get(r.row) in (CREATED, UPDATED)
              and r.contact_id is not None]
    ids = _tag_ids(session, {t for r in tagged for t in r.tags})
    pairs = {(r.contact_id, ids[t]) for r in tagged if r.contact_id is not None for t in r.tags}
    return _tag_contacts(session, pairs, {i: name for (_, name), i in ids.items()})


def write_rows(session: Session, rows: Sequence[RowInput], ctx: ChunkContext) -> ChunkResult:
    """Import a chunk of rows: a row that fails changes nothing, the others are written."""
    result = ChunkResult()
    good = _validated(session, rows, ctx, result)
    if not good:
        return result
    start = min(row.row for row in rows)
    try:
        with session.begin_nested():
            attempt = ChunkResult(outcomes=dict(result.outcomes), errors=list(result.errors))
            slow, events = _bulk(session, good, ctx, attempt, start)
            _upsert_rows(session, [row for group in slow for row in group], ctx, attempt)
            # One batch of events per chunk: each call checks its contacts and stages its rows once.
            _events(session, events + _apply_tags(session, good, attempt))
        result = attempt
    except (_Raced, DBAPIError):
        # Someone else wrote one of these people meanwhile, or the database refused a row the checks
        # let through: row by row, so only the row at fault is refused.
        _upsert_rows(session, good, ctx, result)
        _events(session, _apply_tags(session, good, result))
    result.errors.sort(key=lambda e: e["row"])
    return result
