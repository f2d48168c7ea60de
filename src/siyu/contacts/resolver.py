"""The person resolver: events that name a person by identity get their contact at ingestion.

Installed with `siyu.core.events.register_person_resolver` when `siyu.contacts` is imported (the app,
the worker and the CLI all import it). One query finds the contacts of every identity of a batch;
the people not known yet become new contacts with one insert, so a 1,000-event batch costs a few
statements whatever its size. A contact id names a contact of the bound workspace or the event is
refused; when an event gives both, the contact id wins and the identity stays on the event as sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from siyu.contacts.identities import event_identity_type, normalize_identity
from siyu.contacts.models import Contact
from siyu.contacts.service import any_of, insert_identities, lookup_identities
from siyu.contacts.staff import default_owner_id
from siyu.core.errors import Invalid
from siyu.core.events import PersonError, PersonRef, record_events, register_person_resolver

Pair = tuple[str, str]
MAX_ROUNDS = 5


def resolve_people(session: Session, refs: Sequence[PersonRef]) -> list[int | PersonError | None]:
    """Per ref: the contact id to store (an existing contact or a new one) or why the person was refused."""
    answers: list[int | PersonError | None] = [None] * len(refs)
    wanted_ids = {r.contact_id for r in refs if r.contact_id is not None}
    known_ids: set[int] = set()
    if wanted_ids:
        stmt = select(Contact.id).where(any_of(session, Contact.id, list(wanted_ids)))
        known_ids = set(session.execute(stmt).scalars())
    pair_of: dict[int, Pair] = {}
    for i, ref in enumerate(refs):
        if ref.contact_id is not None:
            answers[i] = ref.contact_id if ref.contact_id in known_ids else PersonError(
                "unknown_contact", "no contact with this id in this workspace", "contact_id"
            )
            continue
        if ref.identity_type is None or ref.identity_value is None:
            continue
        kind = event_identity_type(ref.identity_type)
        try:
            pair_of[i] = (kind, normalize_identity(kind, ref.identity_value))
        except Invalid as exc:
            answers[i] = PersonError("invalid", exc.message, "identity.value")
    if pair_of:
        contact_of = _contacts_for(session, list(dict.fromkeys(pair_of.values())))
        for i, pair in pair_of.items():
            answers[i] = contact_of.get(pair)
    return answers


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
