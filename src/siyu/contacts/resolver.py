"""The person resolver: events that name a person by identity get their contact at ingestion.

Installed with `siyu.core.events.register_person_resolver` when `siyu.contacts` is imported (the app,
the worker and the CLI all import it). One query finds the contacts of every identity of a batch;
the people not known yet become new contacts with one insert, so a 1,000-event batch costs a few
statements whatever its size. A contact id names a contact of the bound workspace or the event is
refused; when an event gives both, the contact id wins and the identity stays on the event as sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from siyu.contacts.identities import event_identity_type, normalize_identity
from siyu.contacts.models import Contact
from siyu.contacts.service import insert_identities, lookup_identities
from siyu.contacts.staff import default_owner_id
from siyu.core.db import any_of
from siyu.core.errors import Invalid
from siyu.core.events import PersonError, PersonRef, record_events, register_person_resolver

Pair = tuple[str, str]
MAX_ROUNDS = 5


def resolve_people(session: Session, refs: Sequence[PersonRef]) -> list[int | PersonError | None]:
    """Per ref: the contact id to store (an existing contact or a new one) or why the person was refused."""
    answers: list[int | PersonError | None] = [None] * len(refs)
    by_id: list[int] = []
    by_identity: list[int] = []
    for i, ref in enumerate(refs):
        if ref.contact_id is not None:
            by_id.append(i)
        elif ref.identity_type is not None and ref.identity_value is not None:
            by_identity.append(i)
    if by_id:
        wanted = {refs[i].contact_id for i in by_id}
        stmt = select(Contact.id).where(any_of(session, Contact.id, list(wanted)))
        known = set(session.execute(stmt).scalars())
        for i in by_id:
            cid = refs[i].contact_id
            answers[i] = cid if cid in known else _UNKNOWN_CONTACT
    if by_identity:
        pair_of: dict[int, Pair] = {}
        for i in by_identity:
            ref = refs[i]
            pair = _pair(ref.identity_type, ref.identity_value)
            if isinstance(pair, PersonError):
                answers[i] = pair
            else:
                pair_of[i] = pair
        if pair_of:
            contact_of = _contacts_for(session, list(dict.fromkeys(pair_of.values())))
            for i, pair in pair_of.items():
                answers[i] = contact_of.get(pair)
    return answers


_UNKNOWN_CONTACT = PersonError("unknown_contact", "no contact with this id in this workspace", "contact_id")


@lru_cache(maxsize=65_536)
def _pair(identity_type: str, value: str) -> Pair | PersonError:
    """An event's identity as stored, or why it is refused. Cached: a shop's events name the same
    customers again and again, and normalising (a phone to E.164) is a pure function of the text."""
    kind = event_identity_type(identity_type)
    try:
        return kind, normalize_identity(kind, value)
    except Invalid as exc:
        return PersonError("invalid", exc.message, "identity.value")


def _contacts_for(session: Session, pairs: list[Pair]) -> dict[Pair, int]:
    """The contact of every pair, creating one contact per unknown pair."""
    found = lookup_identities(session, pairs)
    created: list[int] = []
    owner_id = default_owner_id(session) if len(found) < len(pairs) else None
    for _ in range(MAX_ROUNDS):
        missing = [p for p in pairs if p not in found]
        if not missing:
            break
        contacts = [Contact(attributes={}, owner_id=owner_id, **_fields_of(p)) for p in missing]
        session.add_all(contacts)
        session.flush()
        stored = insert_identities(session, [(c.id, *p) for c, p in zip(contacts, missing, strict=True)])
        lost = [c.id for c, p in zip(contacts, missing, strict=True) if p not in stored]
        if lost:
            # A concurrent batch created these people first: drop ours and read theirs.
            for contact in contacts:
                if contact.id in lost:
                    session.expunge(contact)
            session.execute(delete(Contact).where(Contact.id.in_(lost)).execution_options(synchronize_session=False))
        for contact, pair in zip(contacts, missing, strict=True):
            if pair in stored:
                found[pair] = contact.id
                created.append(contact.id)
        found.update(lookup_identities(session, [p for p in missing if p not in stored]))
    if created:
        record_events(
            session,
            [{"type": "contact.created", "contact_id": cid, "properties": {"source": "events"}} for cid in created],
            source="contacts",
        )
    return found


def _fields_of(pair: Pair) -> dict[str, str]:
    return {pair[0]: pair[1]} if pair[0] in ("phone", "email") else {}


def install() -> None:
    """Make this the events' person resolver (idempotent)."""
    register_person_resolver(resolve_people)


install()
