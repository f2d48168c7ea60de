"""Tags in groups, put on and taken off contacts in bulk; every change a `tag.added` / `tag.removed` event.

Bulk changes are set-based: one INSERT ... ON CONFLICT DO NOTHING RETURNING (or DELETE ... RETURNING)
per chunk, so only pairs that really changed are counted and get an event, whatever ran concurrently.
A bulk act by a person is audited once, with the ids and the count, not once per contact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact, ContactTag, Tag, TagGroup
from siyu.core import clock
from siyu.core.audit import Actor, record, snapshot
from siyu.core.errors import Conflict, Invalid, NotFound, TenancyViolation
from siyu.core.events import record_events
from siyu.core.tenancy import MAX_ID, bound_workspace, get_scoped

# Rows per statement: well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 1000
# Most contacts one bulk call may touch (the API and the console send at most this many).
MAX_BULK = 10_000
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SOURCE = re.compile(r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_.-]+)?$")


@dataclass(frozen=True)
class TagChange:
    """What a bulk call did: pairs (contact, tag) that changed, and those that already were so."""

    changed: int
    unchanged: int


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("tags are changed through a session bound to a workspace")
    return workspace_id


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _name(value: Any, field: str = "name") -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise Invalid("enter a name", field=field)
    if len(name) > 80:
        raise Invalid("a name has at most 80 characters", field=field)
    return name


def _color(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _COLOR.match(value):
        raise Invalid("a colour is written #rrggbb, such as #1f8a70", field="color")
    return value.lower()


def _ids(values: Iterable[Any], field: str) -> list[int]:
    out: list[int] = []
    seen: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
            raise Invalid(f"{field} holds ids (positive integers)", field=field)
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


def _flush_unique(session: Session, field: str, message: str) -> None:
    """Flush in a savepoint so a concurrent duplicate becomes a Conflict, not a broken transaction."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(message, field=field) from None


# --- groups -----------------------------------------------------------------------------------------


def list_tag_groups(session: Session) -> list[TagGroup]:
    """The workspace's tag groups by name."""
    return list(session.execute(select(TagGroup).order_by(TagGroup.name, TagGroup.id)).scalars())


def get_tag_group(session: Session, group_id: Any) -> TagGroup:
    """One tag group of the bound workspace (404 for any other)."""
    return get_scoped(session, TagGroup, group_id, what="tag group")


def create_tag_group(session: Session, *, name: Any, actor: Actor) -> TagGroup:
    """A new group; its name is unique in the workspace."""
    workspace_id = _workspace(session)
    clean = _name(name)
    if session.execute(select(TagGroup.id).where(TagGroup.name == clean)).first():
        raise Conflict(f"a tag group named {clean!r} exists already", field="name")
    group = TagGroup(workspace_id=workspace_id, name=clean)
    session.add(group)
    _flush_unique(session, "name", f"a tag group named {clean!r} exists already")
    record(session, actor, workspace_id=workspace_id, action="tag_group.create", entity_type="tag_group",
           entity_id=group.id, after=snapshot(group))
    return group


def update_tag_group(session: Session, group: TagGroup, *, name: Any, actor: Actor) -> TagGroup:
    """Rename a group."""
    clean = _name(name)
    before = snapshot(group)
    clash = session.execute(select(TagGroup.id).where(TagGroup.name == clean, TagGroup.id != group.id)).first()
    if clash:
        raise Conflict(f"a tag group named {clean!r} exists already", field="name")
    group.name = clean
    _flush_unique(session, "name", f"a tag group named {clean!r} exists already")
    record(session, actor, workspace_id=group.workspace_id, action="tag_group.update", entity_type="tag_group",
           entity_id=group.id, before=before, after=snapshot(group))
    return group


def delete_tag_group(session: Session, group: TagGroup, *, actor: Actor) -> None:
    """Delete a group and its tags; contacts lose those tags (each loss an event)."""
    for tag in list_tags(session, group_id=group.id):
        delete_tag(session, tag, actor=actor)
    record(session, actor, workspace_id=group.workspace_id, action="tag_group.delete", entity_type="tag_group",
           entity_id=group.id, before=snapshot(group))
    session.delete(group)
    session.flush()


# --- tags -------------------------------------------------------------------------------------------


def list_tags(session: Session, *, group_id: int | None = None) -> list[Tag]:
    """The workspace's tags by name, optionally of one group."""
    stmt = select(Tag).order_by(Tag.name, Tag.id)
    if group_id is not None:
        stmt = stmt.where(Tag.group_id == group_id)
    return list(session.execute(stmt).scalars())


def get_tag(session: Session, tag_id: Any) -> Tag:
    """One tag of the bound workspace (404 for any other)."""
    return get_scoped(session, Tag, tag_id, what="tag")


def _group_for(session: Session, group_id: Any) -> TagGroup:
    try:
        return get_tag_group(session, group_id)
    except NotFound:
        raise NotFound("tag group not found", field="group_id") from None


def _check_tag_name(session: Session, group_id: int, name: str, tag_id: int | None = None) -> None:
    stmt = select(Tag.id).where(Tag.group_id == group_id, Tag.name == name)
    if tag_id is not None:
        stmt = stmt.where(Tag.id != tag_id)
    if session.execute(stmt).first():
        raise Conflict(f"this group has a tag named {name!r} already", field="name")


def create_tag(session: Session, *, group_id: Any, name: Any, color: Any = None, actor: Actor) -> Tag:
    """A new tag in a group; its name is unique in the group."""
    workspace_id = _workspace(session)
    group = _group_for(session, group_id)
    clean = _name(name)
    shade = _color(color)
    _check_tag_name(session, group.id, clean)
    tag = Tag(workspace_id=workspace_id, group_id=group.id, name=clean, color=shade)
    session.add(tag)
    _flush_unique(session, "name", f"this group has a tag named {clean!r} already")
    record(session, actor, workspace_id=workspace_id, action="tag.create", entity_type="tag", entity_id=tag.id,
           after=snapshot(tag))
    return tag


def update_tag(session: Session, tag: Tag, *, changes: dict[str, Any], actor: Actor) -> Tag:
    """Rename, recolour or move a tag to another group (keys: name, color, group_id)."""
    unknown = set(changes) - {"name", "color", "group_id"}
    if unknown:
        field = sorted(unknown)[0]
        raise Invalid(f"unknown field {field!r}", field=field, code="unknown_field")
    before = snapshot(tag)
    group_id = _group_for(session, changes["group_id"]).id if "group_id" in changes else tag.group_id
    name = _name(changes["name"]) if "name" in changes else tag.name
    _check_tag_name(session, group_id, name, tag.id)
    if "color" in changes:
        tag.color = _color(changes["color"])
    tag.name, tag.group_id = name, group_id
    _flush_unique(session, "name", f"this group has a tag named {name!r} already")
    record(session, actor, workspace_id=tag.workspace_id, action="tag.update", entity_type="tag", entity_id=tag.id,
           before=before, after=snapshot(tag))
    return tag


def delete_tag(session: Session, tag: Tag, *, actor: Actor) -> int:
    """Delete a tag; every contact wearing it loses it (each an event). The number of contacts that had it."""
    holders = list(session.execute(select(ContactTag.contact_id).where(ContactTag.tag_id == tag.id)).scalars())
    removed = _remove(session, holders, [tag], source="tag_deleted") if holders else 0
    record(session, actor, workspace_id=tag.workspace_id, action="tag.delete", entity_type="tag", entity_id=tag.id,
           before={**snapshot(tag), "contacts": removed})
    session.delete(tag)
    session.flush()
    return removed


def tag_counts(session: Session) -> dict[int, int]:
    """How many contacts wear each tag."""
    rows = session.execute(select(ContactTag.tag_id, func.count()).group_by(ContactTag.tag_id)).all()
    return {int(tag_id): int(n) for tag_id, n in rows}


def tags_of(session: Session, contact_ids: Sequence[int]) -> dict[int, list[Tag]]:
    """Each contact's tags, by contact id (contacts without tags are left out)."""
    out: dict[int, list[Tag]] = {}
    for chunk in _chunks(list(contact_ids)):
        rows = session.execute(
            select(ContactTag.contact_id, Tag)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .where(ContactTag.contact_id.in_(chunk))
            .order_by(Tag.name)
        ).all()
        for contact_id, tag in rows:
            out.setdefault(int(contact_id), []).append(tag)
    return out


# --- bulk tagging -----------------------------------------------------------------------------------


def _check_contacts(session: Session, contact_ids: list[int], viewer: Any) -> None:
    # A staff member tags only their own contacts: others' ids are as unknown to them as other workspaces'.
    from siyu.contacts.service import visible_contacts

    visible = visible_contacts(session, viewer) if viewer is not None else None
    for chunk in _chunks(contact_ids):
        stmt = select(Contact.id).where(Contact.id.in_(chunk))
        if visible is not None:
            stmt = stmt.where(visible)
        found = set(session.execute(stmt).scalars())
        missing = [i for i in chunk if i not in found]
        if missing:
            raise NotFound(f"contact {missing[0]} not found", field="contact_ids")


def _check_tags(session: Session, tag_ids: list[int]) -> list[Tag]:
    tags = {t.id: t for t in session.execute(select(Tag).where(Tag.id.in_(tag_ids))).scalars()}
    missing = [i for i in tag_ids if i not in tags]
    if missing:
        raise NotFound(f"tag {missing[0]} not found", field="tag_ids")
    return [tags[i] for i in tag_ids]


def _checked(
    session: Session, contact_ids: Iterable[Any], tag_ids: Iterable[Any], source: str, viewer: Any = None
) -> tuple[list[int], list[Tag]]:
    if not isinstance(source, str) or not _SOURCE.match(source) or len(source) > 80:
        raise Invalid("source is a word such as manual, import or rule:12", field="source")
    contacts = _ids(contact_ids, "contact_ids")
    tag_list = _ids(tag_ids, "tag_ids")
    if not contacts:
        raise Invalid("choose at least one contact", field="contact_ids")
    if not tag_list:
        raise Invalid("choose at least one tag", field="tag_ids")
    if len(contacts) > MAX_BULK:
        raise Invalid(f"at most {MAX_BULK} contacts at a time", field="contact_ids")
    _check_contacts(session, contacts, viewer)
    return contacts, _check_tags(session, tag_list)


def _events(
    session: Session, kind: str, pairs: list[tuple[int, int]], tags: dict[int, Tag], source: str
) -> None:
    if not pairs:
        return
    result = record_events(
        session,
        [
            {"type": kind, "contact_id": contact_id,
             "properties": {"tag_id": tag_id, "tag": tags[tag_id].name, "source": source}}
            for contact_id, tag_id in pairs
        ],
        source="contacts",
    )
    if result.errors:
        error = result.errors[0]
        raise Invalid(error.message, field=error.field, code=error.code)


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(ContactTag)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["workspace_id", "contact_id", "tag_id"])
        .returning(ContactTag.contact_id, ContactTag.tag_id)
    )
    return [(int(c), int(t)) for c, t in session.execute(stmt).all()]


def _add(session: Session, contact_ids: list[int], tags: list[Tag], *, source: str) -> int:
    workspace_id = _workspace(session)
    now = clock.now()
    by_id = {t.id: t for t in tags}
    added: list[tuple[int, int]] = []
    pairs = [(c, t.id) for c in contact_ids for t in tags]
    for chunk in _chunks(pairs):
        rows = [
            {"workspace_id": workspace_id, "contact_id": c, "tag_id": t, "source": source, "created_at": now}
            for c, t in chunk
        ]
        added.extend(_insert(session, rows))
    _events(session, "tag.added", added, by_id, source)
    return len(added)


def _remove(session: Session, contact_ids: list[int], tags: list[Tag], *, source: str) -> int:
    by_id = {t.id: t for t in tags}
    removed: list[tuple[int, int]] = []
    for chunk in _chunks(contact_ids):
        stmt = (
            delete(ContactTag)
            .where(ContactTag.contact_id.in_(chunk), ContactTag.tag_id.in_(list(by_id)))
            .returning(ContactTag.contact_id, ContactTag.tag_id)
            .execution_options(synchronize_session=False)
        )
        removed.extend((int(c), int(t)) for c, t in session.execute(stmt).all())
    _events(session, "tag.removed", sorted(removed), by_id, source)
    return len(removed)


def add_tags(
    session: Session, contact_ids: Iterable[Any], tag_ids: Iterable[Any], *, source: str = "manual",
    actor: Actor | None, viewer: Any = None,
) -> TagChange:
    """Put tags on contacts; pairs already there are left alone. Audited once when a person or key acts.

    `viewer` (a console Auth) limits a staff member to their own contacts.
    """
    contacts, tags = _checked(session, contact_ids, tag_ids, source, viewer)
    changed = _add(session, contacts, tags, source=source)
    if actor is not None:
        _audit(session, actor, "tag.bulk_add", contacts, tags, changed, source)
    return TagChange(changed=changed, unchanged=len(contacts) * len(tags) - changed)


def remove_tags(
    session: Session, contact_ids: Iterable[Any], tag_ids: Iterable[Any], *, source: str = "manual",
    actor: Actor | None, viewer: Any = None,
) -> TagChange:
    """Take tags off contacts; pairs not there are left alone. Audited once when a person or key acts."""
    contacts, tags = _checked(session, contact_ids, tag_ids, source, viewer)
    changed = _remove(session, contacts, tags, source=source)
    if actor is not None:
        _audit(session, actor, "tag.bulk_remove", contacts, tags, changed, source)
    return TagChange(changed=changed, unchanged=len(contacts) * len(tags) - changed)


def _audit(
    session: Session, actor: Actor, action: str, contacts: list[int], tags: list[Tag], changed: int, source: str
) -> None:
    record(
        session, actor, workspace_id=_workspace(session), action=action, entity_type="tag",
        entity_id=tags[0].id if len(tags) == 1 else None,
        after={"tag_ids": [t.id for t in tags], "contact_ids": contacts, "contacts": len(contacts),
               "changed": changed, "source": source},
    )


def contact_has_tags(session: Session, contact_id: int, tag_ids: Sequence[int]) -> set[int]:
    """Which of `tag_ids` the contact wears."""
    if not tag_ids:
        return set()
    rows = session.execute(
        select(ContactTag.tag_id).where(ContactTag.contact_id == contact_id, ContactTag.tag_id.in_(list(tag_ids)))
    ).scalars()
    return {int(t) for t in rows}

