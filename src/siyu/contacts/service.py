"""Contacts: one per real person, found by any of their identities; the module's public face.

Other modules call these functions (and those re-exported below from attributes, merge and consent);
they never touch `siyu.contacts.models`. Every write is audited when a person or an API key makes it,
and records `contact.created` / `contact.updated` so subscribers hear of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.contacts.attributes import (
    STANDARD_FIELDS,
    create_attribute_definition,
    delete_attribute_definition,
    get_attribute_definition,
    list_attribute_definitions,
    update_attribute_definition,
    validate_fields,
)
from siyu.contacts.consent import (
    CHANNELS,
    Permission,
    contact_permission,
    contact_permissions,
    grant_from_channel,
    list_consents,
    may_contact,
    set_consent,
    set_do_not_contact,
    withdraw_from_channel,
)
from siyu.contacts.identities import IDENTITY_TYPES, canonical_type, normalize_identity
from siyu.contacts.merge import (
    accept_merge_proposal,
    forget_proposals,
    get_merge_proposal,
    get_merge_record,
    list_merge_proposals,
    list_merge_records,
    merge_contacts,
    older_first,
    propose_merge,
    reject_merge_proposal,
)
from siyu.contacts.models import Contact, ContactSettings, ContactTag, Identity, MergeRecord, Note, StaffMember
from siyu.contacts.staff import default_owner_id
from siyu.core import audit
from siyu.core.audit import Actor
from siyu.core.db import any_of
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.events import list_events, record_event
from siyu.core.models import Event
from siyu.core.pagination import page
from siyu.core.tenancy import bound_workspace, get_scoped, parse_id

__all__ = [
    "CHANNELS",
    "DEFAULT_ONE_PERSON_KEYS",
    "IDENTITY_TYPES",
    "STANDARD_FIELDS",
    "Permission",
    "accept_merge_proposal",
    "add_identity",
    "add_note",
    "any_of",
    "canonical_type",
    "contact_permission",
    "contact_permissions",
    "create_attribute_definition",
    "create_contact",
    "delete_attribute_definition",
    "delete_contact",
    "delete_note",
    "get_attribute_definition",
    "get_contact",
    "get_contacts",
    "get_merge_proposal",
    "get_merge_record",
    "get_note",
    "get_settings",
    "grant_from_channel",
    "identities_of",
    "identity_values",
    "list_attribute_definitions",
    "list_consents",
    "list_contacts",
    "list_merge_proposals",
    "list_merge_records",
    "list_notes",
    "may_contact",
    "merge_contacts",
    "normalize_identity",
    "older_first",
    "propose_merge",
    "reject_merge_proposal",
    "remove_identity",
    "set_consent",
    "set_do_not_contact",
    "timeline",
    "update_attribute_definition",
    "update_contact",
    "update_settings",
    "upsert_contact",
    "validate_fields",
    "visible_contacts",
    "withdraw_from_channel",
]

DEFAULT_ONE_PERSON_KEYS: tuple[str, ...] = ("unionid", "external_userid", "shop_customer_id", "phone", "email")
# How often an upsert starts over after a concurrent transaction took one of its identities first.
MAX_RACE_RETRIES = 5
MAX_IDENTITIES = 20


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    assert workspace_id is not None, "contacts are written through a session bound to a workspace"
    return workspace_id


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


# --- settings -------------------------------------------------------------------------------------


def get_settings(session: Session) -> ContactSettings:
    """The workspace's contact settings (defaults, not yet stored, until someone changes them)."""
    found = session.execute(select(ContactSettings)).scalar_one_or_none()
    if found is not None:
        return found
    return ContactSettings(
        workspace_id=_workspace(session), one_person_keys=list(DEFAULT_ONE_PERSON_KEYS), lifecycle_rules={},
        segment_refresh_minutes=15,
    )


def update_settings(
    session: Session, *, one_person_keys: Sequence[str] | None = None,
    segment_refresh_minutes: int | None = None, actor: Actor,
) -> ContactSettings:
    """Change which identity types name one person, or how often dynamic segments refresh."""
    settings = get_settings(session)
    before = audit.snapshot(settings)
    if one_person_keys is not None:
        keys: list[str] = []
        for key in one_person_keys:
            try:
                name = canonical_type(key)
            except Invalid as exc:
                raise Invalid(exc.message, field="one_person_keys") from None
            if name not in keys:
                keys.append(name)
        settings.one_person_keys = keys
    if segment_refresh_minutes is not None:
        if isinstance(segment_refresh_minutes, bool) or not 1 <= int(segment_refresh_minutes) <= 1440:
            raise Invalid("segment_refresh_minutes is between 1 and 1440", field="segment_refresh_minutes")
        settings.segment_refresh_minutes = int(segment_refresh_minutes)
    if settings not in session:
        session.add(settings)
    session.flush()
    audit.record(session, actor, workspace_id=settings.workspace_id, action="contact_settings.update",
                 entity_type="contact_settings", entity_id=settings.id, before=before,
                 after=audit.snapshot(settings))
    return settings


# --- who sees which contacts ----------------------------------------------------------------------


def visible_contacts(session: Session, auth_or_user: Any) -> ColumnElement[bool] | None:
    """A criterion limiting contacts to the caller's own for the staff role; None for everyone else."""
    auth = getattr(auth_or_user, "auth", auth_or_user)
    if getattr(auth, "role", None) != "staff":
        return None
    own = select(StaffMember.id).where(StaffMember.user_id == getattr(auth, "user_id", None))
    return Contact.owner_id.in_(own)


def get_contact(session: Session, contact_id: Any, *, viewer: Any = None) -> Contact:
    """One contact of the workspace (404 for other workspaces' ids and, for staff, others' contacts)."""
    if viewer is None:
        return get_scoped(session, Contact, contact_id, what="contact")
    stmt = select(Contact).where(Contact.id == parse_id(contact_id, "contact"))
    criterion = visible_contacts(session, viewer)
    if criterion is not None:
        stmt = stmt.where(criterion)
    found = session.execute(stmt).scalar_one_or_none()
    if found is None:
        raise NotFound("contact not found")
    return found


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_contacts(
    session: Session, *, viewer: Any = None, q: str | None = None, tag_id: int | None = None,
    owner_id: int | None = None, stage: str | None = None, cursor: str | None = None, limit: int = 50,
) -> tuple[Sequence[Contact], str | None]:
    """A page of contacts, newest first: search over name, nickname, phone and email, and filters."""
    stmt = select(Contact)
    criterion = visible_contacts(session, viewer)
    if criterion is not None:
        stmt = stmt.where(criterion)
    text = (q or "").strip()
    if text:
        pattern = _like(text)
        columns = (Contact.name, Contact.nickname, Contact.phone, Contact.email)
        options = [c.ilike(pattern, escape="\\") for c in columns]
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) >= 4 and len(digits) >= len(text.replace(" ", "").replace("-", "")) - 1:
            options.append(Contact.phone.like(_like(digits), escape="\\"))
        stmt = stmt.where(or_(*options))
    if tag_id is not None:
        stmt = stmt.where(Contact.id.in_(select(ContactTag.contact_id).where(ContactTag.tag_id == tag_id)))
    if owner_id is not None:
        stmt = stmt.where(Contact.owner_id == owner_id)
    if stage:
        stmt = stmt.where(Contact.stage == stage)
    return page(session, stmt, Contact.id, cursor=cursor, limit=limit)


def get_contacts(session: Session, contact_ids: Sequence[int]) -> dict[int, Contact]:
    """The bound workspace's contacts among these ids, by id, in one query (absent ids are left out)."""
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return {}
    return {c.id: c for c in session.execute(select(Contact).where(any_of(session, Contact.id, ids))).scalars()}


def identity_values(session: Session, contact_ids: Sequence[int], type: str) -> dict[int, str]:
    """Each contact's oldest identity of one type (a phone, an email), by contact id, in one query."""
    found: dict[int, str] = {}
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return found
    rows = session.execute(select(Identity.contact_id, Identity.value).where(
        any_of(session, Identity.contact_id, ids), Identity.type == type,
    ).order_by(Identity.id))
    for contact_id, value in rows:
        found.setdefault(int(contact_id), str(value))
    return found


def identities_of(session: Session, contact: Contact) -> list[Identity]:
    """A contact's identities, oldest first."""
    return list(session.execute(
        select(Identity).where(Identity.contact_id == contact.id).order_by(Identity.id)
    ).scalars())


# --- identities -----------------------------------------------------------------------------------

Pair = tuple[str, str]


def _pairs(identities: Sequence[Any], *, region: str = "CN") -> list[Pair]:
    """Normalised (type, value) pairs, in order, without repeats; errors name `identities.<i>.<part>`."""
    if len(identities) > MAX_IDENTITIES:
        raise Invalid(f"at most {MAX_IDENTITIES} identities at once", field="identities")
    out: list[Pair] = []
    for i, item in enumerate(identities):
        kind, value = (item.get("type"), item.get("value")) if isinstance(item, Mapping) else item
        if not isinstance(value, str):
            raise Invalid("an identity's value is text", field=f"identities.{i}.value")
        try:
            name = canonical_type(str(kind or ""))
        except Invalid as exc:
            raise Invalid(exc.message, field=f"identities.{i}.type") from None
        try:
            pair = (name, normalize_identity(name, value, region=region))
        except Invalid as exc:
            raise Invalid(exc.message, field=f"identities.{i}.value") from None
        if pair not in out:
            out.append(pair)
    return out


def _field_pairs(fields: Mapping[str, Any]) -> list[Pair]:
    return [(key, fields[key]) for key in ("phone", "email") if fields.get(key)]


def lookup_identities(session: Session, pairs: Sequence[Pair]) -> dict[Pair, int]:
    """(type, value) -> contact id for the pairs the workspace knows, in one query."""
    if not pairs:
        return {}
    by_type: dict[str, list[str]] = {}
    for kind, value in dict.fromkeys(pairs):
        by_type.setdefault(kind, []).append(value)
    condition = or_(*(
        (Identity.type == kind) & any_of(session, Identity.value, values) for kind, values in by_type.items()
    ))
    rows = session.execute(select(Identity.type, Identity.value, Identity.contact_id).where(condition))
    return {(kind, value): contact_id for kind, value, contact_id in rows}


def insert_identities(session: Session, rows: Sequence[tuple[int, str, str]]) -> set[Pair]:
    """Insert (contact id, type, value) rows, skipping any pair already taken; the pairs this call stored.

    INSERT ... ON CONFLICT DO NOTHING: a concurrent transaction inserting the same pair makes this one
    wait for it and then skip the row, so the caller learns it lost the race instead of failing.
    """
    if not rows:
        return set()
    workspace_id = _workspace(session)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # One lock order for every writer: concurrent multi-identity upserts can't deadlock on each other.
    values = [
        {"workspace_id": workspace_id, "contact_id": c, "type": t, "value": v}
        for c, t, v in sorted(rows, key=lambda r: (r[1], r[2]))
    ]
    stmt = (
        dialect.insert(Identity)
        .values(values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "type", "value"])
        .returning(Identity.type, Identity.value)
    )
    return {(kind, value) for kind, value in session.execute(stmt)}


def add_identity(session: Session, contact: Contact, *, type: str, value: str, actor: Actor) -> Identity:
    """Give a contact one more identity; one another contact holds is refused (merge the two instead)."""
    (pair,) = _pairs([(type, value)])
    holder = lookup_identities(session, [pair]).get(pair)
    if holder == contact.id:
        raise Conflict(f"this contact already has {pair[0]} {pair[1]}", field="value")
    if holder is not None or not insert_identities(session, [(contact.id, *pair)]):
        raise Conflict(f"{pair[0]} {pair[1]} belongs to another contact: merge the two contacts instead",
                       field="value", code="identity_taken")
    identity = session.execute(
        select(Identity).where(Identity.type == pair[0], Identity.value == pair[1])
    ).scalar_one()
    _sync_field_from_identity(contact, pair)
    session.flush()
    audit.record(session, actor, workspace_id=contact.workspace_id, action="contact.identity_add",
                 entity_type="contact", entity_id=contact.id, after={"type": pair[0], "value": pair[1]})
    return identity


def _sync_field_from_identity(contact: Contact, pair: Pair) -> None:
    if pair[0] in ("phone", "email") and not getattr(contact, pair[0]):
        setattr(contact, pair[0], pair[1])


def remove_identity(session: Session, contact: Contact, identity_id: Any, *, actor: Actor) -> None:
    """Take an identity off a contact (its phone or email field is cleared when it was that value)."""
    identity = get_scoped(session, Identity, identity_id, what="identity")
    if identity.contact_id != contact.id:
        raise NotFound("identity not found")
    if identity.type in ("phone", "email") and getattr(contact, identity.type) == identity.value:
        setattr(contact, identity.type, None)
    before = {"type": identity.type, "value": identity.value}
    session.delete(identity)
    session.flush()
    audit.record(session, actor, workspace_id=contact.workspace_id, action="contact.identity_remove",
                 entity_type="contact", entity_id=contact.id, before=before)


# --- create, update, delete -----------------------------------------------------------------------


def _check_owner(session: Session, owner_id: int | None) -> None:
    if owner_id is None:
        return
    found = session.execute(
        select(StaffMember.id).where(StaffMember.id == parse_id(owner_id, "staff member"))
    ).scalar_one_or_none()
    if found is None:
        raise Invalid("owner_id is not a staff member of this workspace", field="owner_id")


def _record_change(
    session: Session, contact: Contact, *, created: bool, changed: Sequence[str], source: str,
    actor: Actor | None, before: dict[str, Any] | None,
) -> None:
    if created:
        record_event(session, type="contact.created", contact_id=contact.id, properties={"source": source},
                     source="contacts")
    elif changed:
        record_event(session, type="contact.updated", contact_id=contact.id,
                     properties={"fields": sorted(changed), "source": source}, source="contacts")
    if actor is not None and (created or changed):
        audit.record(session, actor, workspace_id=contact.workspace_id,
                     action="contact.create" if created else "contact.update", entity_type="contact",
                     entity_id=contact.id, before=before, after=audit.snapshot(contact))


def create_contact(
    session: Session, *, fields: Mapping[str, Any] | None = None, identities: Sequence[Any] = (),
    attributes: Mapping[str, Any] | None = None, owner_id: int | None = None, actor: Actor,
    source: str = "api",
) -> Contact:
    """A new contact; refused (409) when one of its identities already belongs to another contact."""
    clean_fields, clean_attributes = validate_fields(session, fields, attributes)
    pairs = _pairs(list(identities) + _field_pairs(clean_fields))
    _check_owner(session, owner_id)
    taken = lookup_identities(session, pairs)
    if taken:
        kind, value = next(iter(taken))
        raise Conflict(f"{kind} {value} belongs to contact {taken[(kind, value)]}: update or upsert it instead",
                       field="identities", code="identity_taken")
    contact = Contact(
        **{k: v for k, v in clean_fields.items() if v is not None},
        attributes={k: v for k, v in clean_attributes.items() if v is not None},
        owner_id=owner_id if owner_id is not None else default_owner_id(session),
    )
    for pair in pairs:
        _sync_field_from_identity(contact, pair)
    session.add(contact)
    session.flush()
    if len(insert_identities(session, [(contact.id, *p) for p in pairs])) < len(pairs):
        raise Conflict("another request took one of these identities just now: upsert instead",
                       field="identities", code="identity_taken")
    _record_change(session, contact, created=True, changed=(), source=source, actor=actor, before=None)
    return contact


def _apply(
    contact: Contact, fields: Mapping[str, Any], attributes: Mapping[str, Any], *, fill_only: bool
) -> list[str]:
    """Set fields and attributes; with `fill_only`, only empty ones and never clearing. The names changed."""
    changed: list[str] = []
    for key, value in fields.items():
        current = getattr(contact, key)
        if fill_only and (value is None or not _empty(current)):
            continue
        if current != value:
            setattr(contact, key, value)
            changed.append(key)
    merged = dict(contact.attributes or {})
    for key, value in attributes.items():
        current = merged.get(key)
        if fill_only and (value is None or not _empty(current)):
            continue
        if current != value:
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
            changed.append(f"attributes.{key}")
    if merged != (contact.attributes or {}):
        contact.attributes = merged
    return changed


def update_contact(
    session: Session, contact: Contact, *, fields: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None, actor: Actor, source: str = "api",
) -> Contact:
    """Change fields and attributes (None clears one); a new phone or email becomes an identity too."""
    clean_fields, clean_attributes = validate_fields(session, fields, attributes)
    before = audit.snapshot(contact)
    new_pairs = [p for p in _field_pairs(clean_fields) if p[1] != getattr(contact, p[0])]
    holders = lookup_identities(session, new_pairs)
    for pair in new_pairs:
        holder = holders.get(pair)
        if holder is not None and holder != contact.id:
            raise Conflict(f"{pair[1]} belongs to contact {holder}: merge the two contacts instead",
                           field=pair[0], code="identity_taken")
    missing = [p for p in new_pairs if p not in holders]
    if len(insert_identities(session, [(contact.id, *p) for p in missing])) < len(missing):
        raise Conflict("another request took this identity just now", field=missing[0][0], code="identity_taken")
    changed = _apply(contact, clean_fields, clean_attributes, fill_only=False)
    session.flush()
    _record_change(session, contact, created=False, changed=changed, source=source, actor=actor, before=before)
    return contact


# What the audit entry of a deletion keeps: nothing that names or reaches the person.
_DELETION_FACTS = ("id", "workspace_id", "owner_id", "stage", "order_count", "created_at")


def delete_contact(session: Session, contact: Contact, *, actor: Actor) -> None:
    """Forget a person: the contact goes with its identities, tags, consent, notes and segment memberships;
    its events stay for the figures but anonymised.

    Events lose their contact and identity (consent events their proof too), so orders still count in
    the workspace's revenue but lead to nobody. Merge records into the contact lose the merged snapshot
    and identity value (the same person's data); pending merge proposals naming it go, decided ones
    keep their history with this side cleared. `contact.deleted {contact_id}` tells other modules to
    drop their own rows of the contact.
    """
    cid = contact.id
    before = {k: v for k, v in audit.snapshot(contact).items() if k in _DELETION_FACTS}
    for event in session.execute(
        select(Event).where(Event.contact_id == cid, Event.type.startswith("consent."))
    ).scalars():
        if "proof" in (event.properties or {}):
            event.properties = {k: v for k, v in event.properties.items() if k != "proof"}
    session.flush()
    session.execute(
        update(Event).where(Event.contact_id == cid)
        .values(contact_id=None, identity_type=None, identity_value=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(MergeRecord).where(MergeRecord.keeper_id == cid)
        .values(keeper_id=None, identity_value=None, merged_snapshot={})
        .execution_options(synchronize_session=False)
    )
    forget_proposals(session, cid)
    session.delete(contact)
    session.flush()
    record_event(session, type="contact.deleted", properties={"contact_id": cid}, source="contacts")
    audit.record(session, actor, workspace_id=before["workspace_id"], action="contact.delete",
                 entity_type="contact", entity_id=cid, before=before)


class _Raced(Exception):
    """A concurrent transaction took one of the upsert's identities first: start over."""


@dataclass
class _Outcome:
    contact: Contact
    created: bool


def upsert_contact(
    session: Session, *, identities: Sequence[Any], fields: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None, actor: Actor | None, source: str = "api",
    overwrite: bool = False, region: str = "CN",
) -> tuple[Contact, bool]:
    """Find the contact by any identity (merging or proposing a merge when they point to several),
    or create it; fields fill only empty values unless `overwrite`. Returns (contact, created)."""
    clean_fields, clean_attributes = validate_fields(session, fields, attributes)
    pairs = _pairs(identities, region=region)
    pairs += [p for p in _field_pairs(clean_fields) if p not in pairs]
    if not pairs:
        raise Invalid("name the person by at least one identity", field="identities")
    for _ in range(MAX_RACE_RETRIES):
        try:
            with session.begin_nested():
                outcome = _upsert_once(session, pairs, clean_fields, clean_attributes, actor=actor,
                                       source=source, overwrite=overwrite)
        except _Raced:
            continue
        return outcome.contact, outcome.created
    raise Conflict("these identities kept changing under concurrent writes: try again", field="identities")


def _upsert_once(
    session: Session, pairs: list[Pair], fields: dict[str, Any], attributes: dict[str, Any], *,
    actor: Actor | None, source: str, overwrite: bool,
) -> _Outcome:
    found = lookup_identities(session, pairs)
    if not found:
        contact = Contact(attributes={}, owner_id=default_owner_id(session))
        session.add(contact)
        session.flush()
        if len(insert_identities(session, [(contact.id, *p) for p in pairs])) < len(pairs):
            raise _Raced()
        for pair in pairs:
            _sync_field_from_identity(contact, pair)
        _apply(contact, fields, attributes, fill_only=True)
        session.flush()
        _record_change(session, contact, created=True, changed=(), source=source, actor=actor, before=None)
        return _Outcome(contact, True)

    contact = _resolve_found(session, pairs, found, actor=actor)
    before = audit.snapshot(contact)
    missing = [p for p in pairs if p not in found]
    if len(insert_identities(session, [(contact.id, *p) for p in missing])) < len(missing):
        raise _Raced()
    changed = []
    for pair in missing:
        if pair[0] in ("phone", "email") and not getattr(contact, pair[0]):
            setattr(contact, pair[0], pair[1])
            changed.append(pair[0])
    changed += _apply(contact, fields, attributes, fill_only=not overwrite)
    session.flush()
    _record_change(session, contact, created=False, changed=changed, source=source, actor=actor, before=before)
    return _Outcome(contact, False)


def _resolve_found(session: Session, pairs: list[Pair], found: dict[Pair, int], *, actor: Actor | None) -> Contact:
    """The one contact an upsert lands on when its identities point to one or more contacts.

    Contacts reached through a one-person key (the workspace's settings) are the same person: they are
    merged into the oldest of them. Contacts reached only through other keys get a merge proposal.
    """
    one_person = set(get_settings(session).one_person_keys)
    contacts = {
        c.id: c for c in session.execute(select(Contact).where(Contact.id.in_(set(found.values())))).scalars()
    }
    if len(contacts) < len(set(found.values())):
        raise _Raced()  # a concurrent merge deleted one of them
    strong_ids = {cid for (kind, _), cid in found.items() if kind in one_person}

    def age(c: Contact) -> tuple[Any, int]:
        return (c.created_at, c.id)

    strong = sorted((contacts[i] for i in strong_ids), key=age)
    target = strong[0] if strong else min(contacts.values(), key=age)
    for other in strong[1:]:
        via = next(p for p, cid in found.items() if cid == other.id and p[0] in one_person)
        merge_contacts(session, target, other, actor=actor, automatic=True, identity=via)
    for other in sorted((c for i, c in contacts.items() if i not in strong_ids and i != target.id), key=age):
        via = next(p for p, cid in found.items() if cid == other.id)
        propose_merge(session, target, other, identity=via)
    return target


# --- notes and timeline ---------------------------------------------------------------------------


def add_note(session: Session, contact: Contact, *, body: str, actor: Actor) -> Note:
    """A free-text note on a contact by a person or an API key."""
    text = (body or "").strip() if isinstance(body, str) else ""
    if not text:
        raise Invalid("a note may not be empty", field="body")
    if len(text) > 10_000 or "\x00" in text:
        raise Invalid("a note is at most 10,000 characters of text", field="body")
    note = Note(contact_id=contact.id, body=text, author=actor.label)
    session.add(note)
    session.flush()
    record_event(session, type="contact.note_added", contact_id=contact.id, properties={"note_id": note.id},
                 source="contacts")
    audit.record(session, actor, workspace_id=contact.workspace_id, action="contact.note_add",
                 entity_type="contact_note", entity_id=note.id, after=audit.snapshot(note))
    return note


def list_notes(
    session: Session, contact: Contact, *, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[Note], str | None]:
    """A contact's notes, newest first."""
    return page(session, select(Note).where(Note.contact_id == contact.id), Note.id, cursor=cursor, limit=limit)


def get_note(session: Session, contact: Contact, note_id: Any) -> Note:
    """One note of the contact (404 otherwise)."""
    note = get_scoped(session, Note, note_id, what="note")
    if note.contact_id != contact.id:
        raise NotFound("note not found")
    return note


def delete_note(session: Session, note: Note, *, actor: Actor) -> None:
    """Delete a note."""
    before = audit.snapshot(note)
    session.delete(note)
    session.flush()
    audit.record(session, actor, workspace_id=before["workspace_id"], action="contact.note_delete",
                 entity_type="contact_note", entity_id=before["id"], before=before)


def timeline(
    session: Session, contact: Contact, *, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[Event], str | None]:
    """Every event of the contact, newest first, a page at a time."""
    return list_events(session, contact_id=contact.id, cursor=cursor, limit=limit)


def delete_contacts(session: Session, contact_ids: Sequence[int], *, viewer: Any = None, actor: Actor) -> int:
    """Delete several contacts at once (those the viewer may see); how many went."""
    stmt = select(Contact).where(Contact.id.in_(list(contact_ids)))
    criterion = visible_contacts(session, viewer)
    if criterion is not None:
        stmt = stmt.where(criterion)
    contacts = list(session.execute(stmt).scalars())
    for contact in contacts:
        delete_contact(session, contact, actor=actor)
    return len(contacts)

