"""REST endpoints of contacts: CRUD, upsert by identity, identities, notes, consent, timeline and merges."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from siyu.contacts import service
from siyu.contacts.models import Contact
from siyu.contacts.schemas import (
    AttributeCreate,
    AttributeOut,
    AttributeUpdate,
    ConsentIn,
    ConsentOut,
    ContactCreate,
    ContactDetail,
    ContactOut,
    ContactUpdate,
    ContactUpsert,
    IdentityIn,
    IdentityOut,
    MergeIn,
    MergeProposalOut,
    MergeRecordOut,
    NoteIn,
    NoteOut,
    PermissionOut,
    SettingsOut,
    SettingsUpdate,
    UpsertOut,
)
from siyu.core.api_events import EventOut
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page

router = APIRouter(tags=["contacts"])
Read = Annotated[Auth, Depends(api_auth("contacts", "read"))]
Write = Annotated[Auth, Depends(api_auth("contacts", "write"))]
Limit = Annotated[int, Query(ge=1, le=200)]
_FIELDS = tuple(service.STANDARD_FIELDS)


def _detail(session: Session, contact: Contact) -> ContactDetail:
    identities = [IdentityOut.model_validate(i) for i in service.identities_of(session, contact)]
    return ContactDetail(**ContactOut.model_validate(contact).model_dump(), identities=identities)


@router.get("/contacts")
def list_contacts(
    auth: Read, session: SessionDep, q: Annotated[str | None, Query(max_length=200)] = None,
    tag_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    owner_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    stage: Annotated[str | None, Query(max_length=16)] = None, cursor: str | None = None, limit: Limit = 50,
) -> Page[ContactOut]:
    """Contacts, newest first: `q` searches name, nickname, phone and email; filter by tag, owner, stage."""
    rows, nxt = service.list_contacts(session, viewer=auth, q=q, tag_id=tag_id, owner_id=owner_id, stage=stage,
                                      cursor=cursor, limit=limit)
    return Page[ContactOut](items=[ContactOut.model_validate(c) for c in rows], next_cursor=nxt)


@router.post("/contacts", status_code=201)
def create_contact(body: ContactCreate, auth: Write, session: SessionDep) -> ContactDetail:
    """A new contact; 409 when one of its identities already belongs to a contact (upsert instead)."""
    data = body.model_dump(exclude_unset=True)
    contact = service.create_contact(
        session, fields={k: v for k, v in data.items() if k in _FIELDS},
        identities=[(i.type, i.value) for i in body.identities], attributes=body.attributes,
        owner_id=body.owner_id, actor=auth.actor,
    )
    return _detail(session, contact)


@router.put("/contacts/upsert")
def upsert_contact(body: ContactUpsert, auth: Write, session: SessionDep, response: Response) -> UpsertOut:
    """Find the contact by any of its identities or create it (201); fields fill empty values unless overwrite."""
    contact, created = service.upsert_contact(
        session, identities=[(i.type, i.value) for i in body.identities],
        fields=body.fields.model_dump(exclude_unset=True), attributes=body.attributes, actor=auth.actor,
        overwrite=body.overwrite,
    )
    if created:
        response.status_code = 201
    return UpsertOut(contact=_detail(session, contact), created=created)


@router.get("/contacts/{contact_id:int}")
def read_contact(contact_id: int, auth: Read, session: SessionDep) -> ContactDetail:
    """One contact with its identities."""
    return _detail(session, service.get_contact(session, contact_id, viewer=auth))


@router.patch("/contacts/{contact_id:int}")
def update_contact(contact_id: int, body: ContactUpdate, auth: Write, session: SessionDep) -> ContactDetail:
    """Change fields, attributes (null clears one) or the do-not-contact flag."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    data = body.model_dump(exclude_unset=True)
    fields = {k: v for k, v in data.items() if k in _FIELDS}
    if fields or body.attributes:
        service.update_contact(session, contact, fields=fields, attributes=body.attributes, actor=auth.actor)
    if body.do_not_contact is not None:
        service.set_do_not_contact(session, [contact], body.do_not_contact, actor=auth.actor)
    return _detail(session, contact)


@router.delete("/contacts/{contact_id:int}", status_code=204)
def delete_contact(contact_id: int, auth: Write, session: SessionDep) -> None:
    """Forget a contact: identities, tags, consent, notes and memberships go; its events stay, anonymised."""
    service.delete_contact(session, service.get_contact(session, contact_id, viewer=auth), actor=auth.actor)


@router.post("/contacts/{contact_id:int}/identities", status_code=201)
def add_identity(contact_id: int, body: IdentityIn, auth: Write, session: SessionDep) -> IdentityOut:
    """Give the contact another identity; 409 if another contact holds it (merge them instead)."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    return IdentityOut.model_validate(
        service.add_identity(session, contact, type=body.type, value=body.value, actor=auth.actor)
    )


@router.delete("/contacts/{contact_id:int}/identities/{identity_id}", status_code=204)
def remove_identity(contact_id: int, identity_id: int, auth: Write, session: SessionDep) -> None:
    """Take an identity off the contact."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    service.remove_identity(session, contact, identity_id, actor=auth.actor)


@router.get("/contacts/{contact_id:int}/notes")
def list_notes(contact_id: int, auth: Read, session: SessionDep, cursor: str | None = None,
               limit: Limit = 50) -> Page[NoteOut]:
    """The contact's notes, newest first."""
    rows, nxt = service.list_notes(session, service.get_contact(session, contact_id, viewer=auth), cursor=cursor,
                                   limit=limit)
    return Page[NoteOut](items=[NoteOut.model_validate(n) for n in rows], next_cursor=nxt)


@router.post("/contacts/{contact_id:int}/notes", status_code=201)
def add_note(contact_id: int, body: NoteIn, auth: Write, session: SessionDep) -> NoteOut:
    """Add a note to the contact."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    return NoteOut.model_validate(service.add_note(session, contact, body=body.body, actor=auth.actor))


@router.delete("/contacts/{contact_id:int}/notes/{note_id}", status_code=204)
def delete_note(contact_id: int, note_id: int, auth: Write, session: SessionDep) -> None:
    """Delete one of the contact's notes."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    service.delete_note(session, service.get_note(session, contact, note_id), actor=auth.actor)


@router.get("/contacts/{contact_id:int}/consent")
def list_consent(contact_id: int, auth: Read, session: SessionDep) -> list[ConsentOut]:
    """The contact's consent per channel (channels never asked are absent)."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    return [ConsentOut.model_validate(c) for c in service.list_consents(session, contact)]


@router.post("/contacts/{contact_id:int}/consent")
def set_consent(contact_id: int, body: ConsentIn, auth: Write, session: SessionDep) -> ConsentOut:
    """Record a grant or a withdrawal on one channel, with its source and proof."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    return ConsentOut.model_validate(service.set_consent(
        session, contact, channel=body.channel, status=body.status, source=body.source, proof=body.proof,
        actor=auth.actor,
    ))


@router.get("/contacts/{contact_id:int}/permission")
def contact_permission(
    contact_id: int, auth: Read, session: SessionDep,
    channel: Literal["wechat_oa", "wecom", "sms", "email"] = "sms",
    purpose: Literal["marketing", "service"] = "marketing",
) -> PermissionOut:
    """Whether a message may go to the contact on a channel, and the rule that decided."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    answer = service.contact_permission(session, contact, channel, purpose)
    return PermissionOut(allowed=answer.allowed, reason=answer.reason)


@router.get("/contacts/{contact_id:int}/timeline")
def timeline(contact_id: int, auth: Read, session: SessionDep, cursor: str | None = None,
             limit: Limit = 50) -> Page[EventOut]:
    """Every event of the contact, newest first."""
    contact = service.get_contact(session, contact_id, viewer=auth)
    rows, nxt = service.timeline(session, contact, cursor=cursor, limit=limit)
    return Page[EventOut](items=[EventOut.of(e) for e in rows], next_cursor=nxt)


@router.post("/contacts/{contact_id:int}/merge")
def merge_contact(contact_id: int, body: MergeIn, auth: Write, session: SessionDep) -> MergeRecordOut:
    """Merge another contact with this one: the older of the two is kept, the other folded into it."""
    one = service.get_contact(session, contact_id, viewer=auth)
    other = service.get_contact(session, body.other_id, viewer=auth)
    keeper, merged = service.older_first(one, other)
    return MergeRecordOut.model_validate(
        service.merge_contacts(session, keeper, merged, actor=auth.actor, automatic=False)
    )


# --- attributes, settings, merges ------------------------------------------------------------------


@router.get("/contact-attributes")
def list_attributes(auth: Read, session: SessionDep) -> list[AttributeOut]:
    """The workspace's custom contact attributes."""
    return [AttributeOut.model_validate(d) for d in service.list_attribute_definitions(session)]


@router.post("/contact-attributes", status_code=201)
def create_attribute(body: AttributeCreate, auth: Write, session: SessionDep) -> AttributeOut:
    """Define a custom attribute (text, number, date, choice or multi_choice)."""
    return AttributeOut.model_validate(service.create_attribute_definition(
        session, key=body.key, label=body.label, type=body.type, choices=body.choices, actor=auth.actor
    ))


@router.get("/contact-attributes/{attribute_id}")
def read_attribute(attribute_id: int, auth: Read, session: SessionDep) -> AttributeOut:
    """One custom attribute."""
    return AttributeOut.model_validate(service.get_attribute_definition(session, attribute_id))


@router.patch("/contact-attributes/{attribute_id}")
def update_attribute(attribute_id: int, body: AttributeUpdate, auth: Write, session: SessionDep) -> AttributeOut:
    """Rename a custom attribute or change its choices."""
    definition = service.get_attribute_definition(session, attribute_id)
    return AttributeOut.model_validate(service.update_attribute_definition(
        session, definition, label=body.label, choices=body.choices, actor=auth.actor
    ))


@router.delete("/contact-attributes/{attribute_id}", status_code=204)
def delete_attribute(attribute_id: int, auth: Write, session: SessionDep) -> None:
    """Forget a custom attribute definition."""
    service.delete_attribute_definition(session, service.get_attribute_definition(session, attribute_id),
                                        actor=auth.actor)


@router.get("/contact-settings")
def read_settings(auth: Read, session: SessionDep) -> SettingsOut:
    """Which identity types name one person, and how often dynamic segments refresh."""
    return SettingsOut.model_validate(service.get_settings(session))


@router.patch("/contact-settings")
def update_settings(body: SettingsUpdate, auth: Write, session: SessionDep) -> SettingsOut:
    """Change the contact settings."""
    return SettingsOut.model_validate(service.update_settings(
        session, one_person_keys=body.one_person_keys, segment_refresh_minutes=body.segment_refresh_minutes,
        actor=auth.actor,
    ))


@router.get("/contact-merges")
def list_merges(auth: Read, session: SessionDep, contact_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                cursor: str | None = None, limit: Limit = 50) -> Page[MergeRecordOut]:
    """Merges done, newest first, each with the merged contact's snapshot."""
    rows, nxt = service.list_merge_records(session, contact_id=contact_id, cursor=cursor, limit=limit)
    return Page[MergeRecordOut](items=[MergeRecordOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.get("/contact-merges/{merge_id}")
def read_merge(merge_id: int, auth: Read, session: SessionDep) -> MergeRecordOut:
    """One merge record."""
    return MergeRecordOut.model_validate(service.get_merge_record(session, merge_id))


@router.get("/merge-proposals")
def list_proposals(
    auth: Read, session: SessionDep, status: Literal["pending", "accepted", "rejected"] = "pending",
    cursor: str | None = None, limit: Limit = 50,
) -> Page[MergeProposalOut]:
    """Pairs of contacts that share an identity not marked one-person: pending ones to review, decided ones
    as history (a side is null once its contact was merged away or deleted)."""
    rows, nxt = service.list_merge_proposals(session, status=status, cursor=cursor, limit=limit)
    return Page[MergeProposalOut](items=[MergeProposalOut.model_validate(p) for p in rows], next_cursor=nxt)


@router.post("/merge-proposals/{proposal_id}/accept")
def accept_proposal(proposal_id: int, auth: Write, session: SessionDep) -> MergeRecordOut:
    """Merge the proposal's two contacts; the answer is the merge record."""
    proposal = service.get_merge_proposal(session, proposal_id)
    return MergeRecordOut.model_validate(service.accept_merge_proposal(session, proposal, actor=auth.actor))


@router.post("/merge-proposals/{proposal_id}/reject")
def reject_proposal(proposal_id: int, auth: Write, session: SessionDep) -> MergeProposalOut:
    """Keep the two contacts apart; the pair is not proposed again."""
    proposal = service.get_merge_proposal(session, proposal_id)
    return MergeProposalOut.model_validate(service.reject_merge_proposal(session, proposal, actor=auth.actor))
