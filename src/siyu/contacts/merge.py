"""Merging two contacts that turned out to be one person, and the proposals a person reviews first.

The keeper is the older contact. For every field and attribute the keeper's value wins unless it is
empty. Everything keyed by contact moves to the keeper (events, identities, tags, consent, notes,
segment memberships), and so does every other module's row with a `contact_id` (`move_other_modules`:
repointed, or by the table's own `info["on_contact_merge"]` policy) before the merged contact is
deleted, its snapshot kept in a MergeRecord; `contact.merged {keeper, merged}` is recorded for what
must be recomputed rather than moved (`@on_event("contact.merged", "<module>.<name>")`).

Proposals are kept once decided: an accepted one names the keeper and its merge record, a rejected
one stops the pair being proposed again. Pending proposals that a merge or a deletion makes moot go.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import UniqueConstraint, delete, select, tuple_, update
from sqlalchemy.orm import Session

from siyu.contacts.attributes import STANDARD_FIELDS
from siyu.contacts.models import (
    Consent,
    Contact,
    ContactTag,
    Identity,
    MergeProposal,
    MergeRecord,
    Note,
    SegmentMember,
)
from siyu.core import audit, clock
from siyu.core.audit import Actor
from siyu.core.db import Base
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.events import record_event
from siyu.core.models import Event
from siyu.core.pagination import page
from siyu.core.tenancy import get_scoped
from siyu.models_registry import import_all_models

SYSTEM_LABEL = "system (identity resolution)"
PROPOSAL_STATUSES = ("pending", "accepted", "rejected")
_NO_SYNC = {"synchronize_session": False}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def older_first(a: Contact, b: Contact) -> tuple[Contact, Contact]:
    """(keeper, merged): the contact created first keeps its id; ties go to the lower id."""
    return (a, b) if (a.created_at, a.id) <= (b.created_at, b.id) else (b, a)


def _snapshot(session: Session, contact: Contact) -> dict[str, Any]:
    """The contact as it was, with everything that hung off it, for the merge record."""
    cid = contact.id
    return {
        "contact": audit.snapshot(contact),
        "identities": [
            {"type": t, "value": v}
            for t, v in session.execute(select(Identity.type, Identity.value).where(Identity.contact_id == cid))
        ],
        "tag_ids": sorted(session.execute(select(ContactTag.tag_id).where(ContactTag.contact_id == cid)).scalars()),
        "consents": [
            {"channel": c.channel, "status": c.status, "source": c.source, "at": c.at.isoformat()}
            for c in session.execute(select(Consent).where(Consent.contact_id == cid)).scalars()
        ],
        "note_ids": sorted(session.execute(select(Note.id).where(Note.contact_id == cid)).scalars()),
    }


def _merge_fields(keeper: Contact, merged: Contact) -> None:
    for key in STANDARD_FIELDS:
        if _empty(getattr(keeper, key)) and not _empty(getattr(merged, key)):
            setattr(keeper, key, getattr(merged, key))
    attributes = dict(merged.attributes or {})
    attributes.update({k: v for k, v in (keeper.attributes or {}).items() if not _empty(v)})
    if attributes != (keeper.attributes or {}):
        keeper.attributes = attributes
    if keeper.owner_id is None:
        keeper.owner_id = merged.owner_id
    keeper.do_not_contact = keeper.do_not_contact or merged.do_not_contact
    # Orders, revenue, stage and RFM are not added up: an order paid under one contact and refunded
    # under the other is one order, not two. The lifecycle subscriber of `contact.merged` recomputes
    # them from the events the keeper now holds.


def _merge_consents(session: Session, keeper: Contact, merged: Contact) -> None:
    """Per channel: withdrawn beats granted (the person said no somewhere), otherwise the latest wins."""
    kept = {c.channel: c for c in session.execute(select(Consent).where(Consent.contact_id == keeper.id)).scalars()}
    for theirs in list(session.execute(select(Consent).where(Consent.contact_id == merged.id)).scalars()):
        ours = kept.get(theirs.channel)
        if ours is None:
            theirs.contact_id = keeper.id
            continue
        if (theirs.status == "withdrawn") != (ours.status == "withdrawn"):
            take = theirs.status == "withdrawn"
        else:
            take = theirs.at > ours.at
        if take:
            ours.status, ours.source, ours.proof, ours.at = theirs.status, theirs.source, theirs.proof, theirs.at
        session.delete(theirs)
    session.flush()


def _move_unique(session: Session, model: Any, key: Any, keeper: Contact, merged: Contact) -> None:
    """Move rows unique per (contact, key): the keeper's own row stays, the merged contact's repeat goes."""
    held = select(key).where(model.contact_id == keeper.id)
    session.execute(
        delete(model).where(model.contact_id == merged.id, key.in_(held)).execution_options(**_NO_SYNC)
    )
    session.execute(
        update(model).where(model.contact_id == merged.id).values(contact_id=keeper.id).execution_options(**_NO_SYNC)
    )


# The tables moved above, each in its own way.
_OWN_TABLES = {"events", "contact_identities", "contact_notes", "contact_tags", "segment_members", "contact_consents"}


def move_other_modules(session: Session, keeper_id: int, merged_id: int) -> None:
    """Every other module's rows keyed by contact follow the keeper, before the merged contact is deleted
    (its foreign keys would otherwise null or delete them: the archive, conversations, channel addresses,
    arrivals, broadcast recipients...). A table may hold its own policy in `info["on_contact_merge"]`
    (`fn(session, keeper_id, merged_id)`); the others are repointed, and where a unique key includes
    the contact, the merged contact's row that would repeat one of the keeper's goes."""
    import_all_models()
    for table in Base.metadata.sorted_tables:
        if table.name in _OWN_TABLES or "contact_id" not in table.c:
            continue
        policy = table.info.get("on_contact_merge")
        if policy is not None:
            policy(session, keeper_id, merged_id)
            continue
        contact = table.c.contact_id
        for unique in table.constraints:
            if isinstance(unique, UniqueConstraint) and "contact_id" in unique.columns:
                others = [c for c in unique.columns if c.name != "contact_id"]
                held = select(*others).where(contact == keeper_id)
                session.execute(delete(table).where(contact == merged_id, tuple_(*others).in_(held)))
        session.execute(update(table).where(contact == merged_id).values(contact_id=keeper_id))


def _pair_taken(session: Session, a: int, b: int, proposal_id: int) -> bool:
    return session.execute(
        select(MergeProposal.id).where(MergeProposal.contact_a_id == a, MergeProposal.contact_b_id == b,
                                       MergeProposal.id != proposal_id)
    ).first() is not None


def _repoint_proposals(session: Session, keeper: Contact, merged: Contact) -> None:
    """Proposals naming the merged contact name the keeper from now on.

    A pending proposal that the merge makes moot goes: it was about this very pair, or the keeper is
    already proposed with the same contact. Decided proposals stay as history: they follow the keeper
    unless that would repeat a pair, and otherwise keep NULL where the merged contact was.
    """
    proposals = session.execute(
        select(MergeProposal).where(
            (MergeProposal.contact_a_id == merged.id) | (MergeProposal.contact_b_id == merged.id)
        )
    ).scalars()
    for proposal in list(proposals):
        merged_side = "contact_a_id" if proposal.contact_a_id == merged.id else "contact_b_id"
        other = proposal.contact_b_id if merged_side == "contact_a_id" else proposal.contact_a_id
        if other is None or other == keeper.id:
            if proposal.status == "pending":
                session.delete(proposal)
            else:
                setattr(proposal, merged_side, keeper.id if other is None else None)
            continue
        a, b = sorted((keeper.id, other))
        if not _pair_taken(session, a, b, proposal.id):
            proposal.contact_a_id, proposal.contact_b_id = a, b
        elif proposal.status == "pending":
            session.delete(proposal)
        else:
            setattr(proposal, merged_side, None)
        session.flush()
    session.flush()


def forget_proposals(session: Session, contact_id: int) -> None:
    """A contact is deleted: its pending proposals go, decided ones stay with its side cleared."""
    for proposal in list(session.execute(
        select(MergeProposal).where(
            (MergeProposal.contact_a_id == contact_id) | (MergeProposal.contact_b_id == contact_id)
        )
    ).scalars()):
        if proposal.status == "pending":
            session.delete(proposal)
            continue
        if proposal.contact_a_id == contact_id:
            proposal.contact_a_id = None
        if proposal.contact_b_id == contact_id:
            proposal.contact_b_id = None
    session.flush()


def merge_contacts(
    session: Session, keeper: Contact, merged: Contact, *, actor: Actor | None, automatic: bool,
    identity: tuple[str, str] | None = None,
) -> MergeRecord:
    """Fold `merged` into `keeper`: fields, attributes and every row keyed by contact; `merged` is deleted."""
    if keeper.id == merged.id:
        raise Invalid("a contact can't be merged with itself", field="other_id")
    snapshot = _snapshot(session, merged)
    before = audit.snapshot(keeper)
    _merge_fields(keeper, merged)
    for model in (Event, Identity, Note):
        session.execute(
            update(model).where(model.contact_id == merged.id).values(contact_id=keeper.id)
            .execution_options(**_NO_SYNC)
        )
    _move_unique(session, ContactTag, ContactTag.tag_id, keeper, merged)
    _move_unique(session, SegmentMember, SegmentMember.segment_id, keeper, merged)
    _merge_consents(session, keeper, merged)
    _repoint_proposals(session, keeper, merged)
    session.execute(
        update(MergeRecord).where(MergeRecord.keeper_id == merged.id).values(keeper_id=keeper.id)
        .execution_options(**_NO_SYNC)
    )
    move_other_modules(session, keeper.id, merged.id)
    merged_id = merged.id
    session.delete(merged)
    session.flush()
    record = MergeRecord(
        keeper_id=keeper.id, merged_id=merged_id, identity_type=identity[0] if identity else None,
        identity_value=identity[1] if identity else None, automatic=automatic, merged_snapshot=snapshot,
        actor=actor.label if actor else SYSTEM_LABEL,
    )
    session.add(record)
    session.flush()
    record_event(session, type="contact.merged", contact_id=keeper.id,
                 properties={"keeper": keeper.id, "merged": merged_id, "automatic": automatic,
                             "merge_id": record.id},
                 source="contacts")
    if actor is not None:
        audit.record(session, actor, workspace_id=keeper.workspace_id, action="contact.merge",
                     entity_type="contact", entity_id=keeper.id,
                     before={**before, "merged_id": None}, after={**audit.snapshot(keeper), "merged_id": merged_id})
    return record


# --- proposals ------------------------------------------------------------------------------------


def propose_merge(
    session: Session, a: Contact, b: Contact, *, identity: tuple[str, str]
) -> MergeProposal | None:
    """Ask a person whether two contacts sharing a not-one-person identity are one; None if already asked."""
    low, high = sorted((a.id, b.id))
    existing = session.execute(
        select(MergeProposal).where(MergeProposal.contact_a_id == low, MergeProposal.contact_b_id == high)
    ).scalar_one_or_none()
    if existing is not None:
        return None
    proposal = MergeProposal(contact_a_id=low, contact_b_id=high, identity_type=identity[0],
                             identity_value=identity[1])
    session.add(proposal)
    session.flush()
    return proposal


def list_merge_proposals(
    session: Session, *, status: str | None = "pending", contact_id: int | None = None,
    cursor: str | None = None, limit: int = 50,
) -> tuple[Sequence[MergeProposal], str | None]:
    """Merge proposals, newest first (pending ones by default); optionally those naming one contact."""
    stmt = select(MergeProposal)
    if status is not None:
        if status not in PROPOSAL_STATUSES:
            raise Invalid(f"status is one of {', '.join(PROPOSAL_STATUSES)}", field="status")
        stmt = stmt.where(MergeProposal.status == status)
    if contact_id is not None:
        stmt = stmt.where((MergeProposal.contact_a_id == contact_id) | (MergeProposal.contact_b_id == contact_id))
    return page(session, stmt, MergeProposal.id, cursor=cursor, limit=limit)


def get_merge_proposal(session: Session, proposal_id: Any) -> MergeProposal:
    """One merge proposal of the workspace (404 otherwise)."""
    return get_scoped(session, MergeProposal, proposal_id, what="merge proposal")


def _pending(proposal: MergeProposal) -> None:
    if proposal.status != "pending":
        raise Conflict(f"this proposal is already {proposal.status}", field="proposal_id")


def accept_merge_proposal(session: Session, proposal: MergeProposal, *, actor: Actor) -> MergeRecord:
    """Merge the proposal's two contacts (the older keeps its id); the proposal stays, accepted, naming
    the keeper and the merge record (the merged contact's side is NULL: that contact is gone)."""
    _pending(proposal)
    ids = (proposal.contact_a_id, proposal.contact_b_id)
    contacts = {c.id: c for c in session.execute(select(Contact).where(Contact.id.in_(ids))).scalars()}
    if ids[0] is None or ids[1] is None or len(contacts) != 2:
        raise NotFound("contact not found")
    keeper, merged = older_first(contacts[ids[0]], contacts[ids[1]])
    proposal.status, proposal.decided_at = "accepted", clock.now()
    record = merge_contacts(session, keeper, merged, actor=actor, automatic=False,
                            identity=(proposal.identity_type, proposal.identity_value))
    proposal.merge_id = record.id
    session.flush()
    return record


def reject_merge_proposal(session: Session, proposal: MergeProposal, *, actor: Actor) -> MergeProposal:
    """Keep the two contacts apart; the same pair is not proposed again."""
    _pending(proposal)
    proposal.status, proposal.decided_at = "rejected", clock.now()
    session.flush()
    audit.record(session, actor, workspace_id=proposal.workspace_id, action="contact.merge_reject",
                 entity_type="contact_merge_proposal", entity_id=proposal.id,
                 after={"contact_a_id": proposal.contact_a_id, "contact_b_id": proposal.contact_b_id})
    return proposal


# --- records --------------------------------------------------------------------------------------


def list_merge_records(
    session: Session, *, contact_id: int | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[MergeRecord], str | None]:
    """Merges done, newest first; optionally those into one keeper."""
    stmt = select(MergeRecord)
    if contact_id is not None:
        stmt = stmt.where(MergeRecord.keeper_id == contact_id)
    return page(session, stmt, MergeRecord.id, cursor=cursor, limit=limit)


def get_merge_record(session: Session, merge_id: Any) -> MergeRecord:
    """One merge record of the workspace (404 otherwise)."""
    return get_scoped(session, MergeRecord, merge_id, what="merge record")
