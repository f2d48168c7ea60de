"""Console pages of contacts: the list with search, filters and bulk actions, and a contact's profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import FormData

from siyu.console.nav import N_
from siyu.console.shell import (
    Console,
    ConsoleDep,
    ConsoleRoute,
    FormDep,
    explain,
    form_text,
    is_htmx,
    redirect,
)
from siyu.contacts import service
from siyu.contacts.models import Contact, ContactTag, StaffMember, Tag
from siyu.core.errors import Forbidden, SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE_SIZE = 50
TIMELINE_PAGE = 20
STAGES = ("new", "engaged", "customer", "repeat", "dormant", "churned")
STAGE_NAMES = {
    "new": N_("New"), "engaged": N_("Engaged"), "customer": N_("Customer"), "repeat": N_("Repeat"),
    "dormant": N_("Dormant"), "churned": N_("Churned"),
}
CHANNEL_NAMES = {"wechat_oa": N_("WeChat Official Account"), "wecom": N_("WeCom"), "sms": N_("SMS"),
                 "email": N_("Email")}
GENDER_NAMES = {"male": N_("Male"), "female": N_("Female"), "other": N_("Other")}
FIELD_LABELS = {
    "name": N_("Name"), "nickname": N_("Nickname"), "avatar_url": N_("Avatar URL"), "gender": N_("Gender"),
    "birthday": N_("Birthday"), "city": N_("City"), "locale": N_("Language"), "phone": N_("Phone"),
    "email": N_("Email"),
}
# What a person reads for the field errors of the profile form; the service's message otherwise.
FIELD_ERRORS = {
    "phone": N_("Enter a valid phone number, such as 138 0013 8000 or +1 201 555 0123."),
    "email": N_("Enter a valid email address."),
    "birthday": N_("Enter a date in the past, written YYYY-MM-DD."),
    "avatar_url": N_("Enter an address starting with http:// or https://."),
    "gender": N_("Choose one of the offered values."),
    "locale": N_("Enter a language tag such as zh_CN or en."),
}
FLASHES = {
    "contact_saved": N_("Contact saved."),
    "contacts_deleted": N_("Contacts deleted."),
    "contacts_dnc": N_("Do-not-contact updated."),
    "merged": N_("Contacts merged."),
}


def can_manage(console: Console) -> bool:
    """Owners, admins and operators shape the contact base (staff, rules, settings); staff work their own contacts."""
    return console.can("contacts", "write") and console.role != "staff"


def require_manager(console: Console) -> None:
    """Refuse a change to how the contact base is run unless `can_manage`."""
    console.auth.require("contacts", "write")
    if console.role == "staff":
        raise Forbidden("only owners, admins and operators change this", field=None)



def _int(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def _error_text(console: Console, exc: SiyuError) -> str:
    message = FIELD_ERRORS.get(exc.field or "")
    return console.gettext(message) if message else explain(exc, console.locale)


def _flash(console: Console) -> str | None:
    message = FLASHES.get(console.flash or "")
    return console.gettext(message) if message else None


def _owners(console: Console) -> list[StaffMember]:
    return list(console.db.execute(select(StaffMember).order_by(StaffMember.name)).scalars())


def _tags(console: Console) -> list[Tag]:
    return list(console.db.execute(select(Tag).order_by(Tag.name)).scalars())


@router.get("/console/contacts")
def contact_list(
    console: ConsoleDep, q: str | None = None, tag_id: str | None = None, owner_id: str | None = None,
    stage: str | None = None, cursor: str | None = None,
) -> Response:
    """Contacts with search, filters, paging and a bulk action bar."""
    console.auth.require("contacts", "read")
    filters: dict[str, Any] = {"q": (q or "").strip()[:200], "tag_id": _int(tag_id), "owner_id": _int(owner_id),
                               "stage": stage if stage in STAGES else None}
    contacts, next_cursor = service.list_contacts(
        console.db, viewer=console.auth, cursor=cursor, limit=PAGE_SIZE, q=filters["q"], tag_id=filters["tag_id"],
        owner_id=filters["owner_id"], stage=filters["stage"],
    )
    context: dict[str, Any] = {
        "contacts": contacts, "next_cursor": next_cursor, "filters": filters, "stage_names": STAGE_NAMES,
        "owner_names": {s.id: s.name for s in _owners(console)},
    }
    if cursor and is_htmx(console.request):
        return console.page("contacts/_rows.html", **context)
    return console.page(
        "contacts/list.html", owners=_owners(console), tags=_tags(console), stages=STAGES,
        editable=console.can("contacts", "write"), filtered=any(v for v in filters.values()),
        notice=_flash(console), **context,
    )


def _selected(console: Console, form: FormData) -> list[Contact]:
    ids = [i for i in (_int(v) for v in form.getlist("contact_ids") if isinstance(v, str)) if i]
    if not ids:
        return []
    stmt = select(Contact).where(Contact.id.in_(ids))
    criterion = service.visible_contacts(console.db, console.auth)
    if criterion is not None:
        stmt = stmt.where(criterion)
    return list(console.db.execute(stmt).scalars())


@router.post("/console/contacts/bulk/delete")
def bulk_delete(console: ConsoleDep, form: FormDep) -> Response:
    """Delete the selected contacts."""
    console.auth.require("contacts", "write")
    for contact in _selected(console, form):
        service.delete_contact(console.db, contact, actor=console.actor)
    return redirect("/console/contacts", flash="contacts_deleted")


@router.post("/console/contacts/bulk/do-not-contact")
def bulk_do_not_contact(console: ConsoleDep, form: FormDep) -> Response:
    """Set (or, with value=off, clear) do-not-contact on the selected contacts."""
    console.auth.require("contacts", "write")
    service.set_do_not_contact(console.db, _selected(console, form), form_text(form, "value") != "off",
                               actor=console.actor)
    return redirect("/console/contacts", flash="contacts_dnc")


@router.post("/console/contacts")
def create_contact(console: ConsoleDep, form: FormDep) -> Response:
    """Add one contact by hand."""
    console.auth.require("contacts", "write")
    values = {k: form_text(form, k) for k in ("name", "phone", "email")}
    try:
        with console.db.begin_nested():
            contact = service.create_contact(console.db, fields={k: v for k, v in values.items() if v},
                                             actor=console.actor, source="console")
    except SiyuError as exc:
        contacts, next_cursor = service.list_contacts(console.db, viewer=console.auth, limit=PAGE_SIZE)
        return console.page(
            "contacts/list.html", status=exc.status, contacts=contacts, next_cursor=next_cursor,
            filters={"q": "", "tag_id": None, "owner_id": None, "stage": None}, stage_names=STAGE_NAMES,
            owner_names={}, owners=_owners(console), tags=_tags(console), stages=STAGES, editable=True,
            filtered=False, notice=None, new_values=values,
            new_errors={exc.field or "_form": _error_text(console, exc)},
        )
    return redirect(f"/console/contacts/{contact.id}", flash="contact_saved")


# --- the profile ----------------------------------------------------------------------------------


def _profile(
    console: Console, contact: Contact, *, status: int = 200, values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    db = console.db
    events, next_cursor = service.timeline(db, contact, limit=TIMELINE_PAGE)
    tags = db.execute(
        select(Tag).join(ContactTag, ContactTag.tag_id == Tag.id).where(ContactTag.contact_id == contact.id)
        .order_by(Tag.name)
    ).scalars().all()
    owner = db.get(StaffMember, contact.owner_id) if contact.owner_id else None
    proposals, _ = service.list_merge_proposals(db, contact_id=contact.id)
    consents = {c.channel: c for c in service.list_consents(db, contact)}
    permissions = {ch: service.contact_permission(db, contact, ch) for ch in service.CHANNELS}
    return console.page(
        "contacts/profile.html", status=status, contact=contact, identities=service.identities_of(db, contact),
        tags=tags, owner=owner, proposals=proposals, consents=consents, permissions=permissions,
        notes=service.list_notes(db, contact, limit=50)[0], events=events, next_cursor=next_cursor,
        attributes=service.list_attribute_definitions(db), values=values or _values(contact), errors=errors or {},
        field_labels=FIELD_LABELS, gender_names=GENDER_NAMES, channel_names=CHANNEL_NAMES, stage_names=STAGE_NAMES,
        editable=console.can("contacts", "write"), notice=_flash(console),
    )


def _values(contact: Contact) -> dict[str, Any]:
    values: dict[str, Any] = {k: getattr(contact, k) or "" for k in service.STANDARD_FIELDS}
    values["birthday"] = contact.birthday.isoformat() if contact.birthday else ""
    for key, value in (contact.attributes or {}).items():
        values[f"attributes.{key}"] = ", ".join(value) if isinstance(value, list) else str(value)
    return values


@router.get("/console/contacts/{contact_id:int}")
def profile(contact_id: int, console: ConsoleDep) -> Response:
    """A contact's profile: fields, identities, tags, owner, consent, notes, timeline, merge proposals."""
    console.auth.require("contacts", "read")
    return _profile(console, service.get_contact(console.db, contact_id, viewer=console.auth))


@router.get("/console/contacts/{contact_id:int}/timeline")
def timeline(contact_id: int, console: ConsoleDep, cursor: str | None = None) -> Response:
    """One more page of the contact's timeline (an htmx fragment, or the profile without htmx)."""
    console.auth.require("contacts", "read")
    contact = service.get_contact(console.db, contact_id, viewer=console.auth)
    if not is_htmx(console.request):
        return redirect(f"/console/contacts/{contact.id}")
    events, next_cursor = service.timeline(console.db, contact, cursor=cursor, limit=TIMELINE_PAGE)
    return console.page("contacts/_timeline.html", contact=contact, events=events, next_cursor=next_cursor)


@router.post("/console/contacts/{contact_id:int}")
def save_profile(contact_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save the profile form; errors come back next to their field."""
    console.auth.require("contacts", "write")
    contact = service.get_contact(console.db, contact_id, viewer=console.auth)
    values = {k: form_text(form, k) for k in service.STANDARD_FIELDS}
    fields = {k: (v or None) for k, v in values.items()}
    definitions = service.list_attribute_definitions(console.db)
    attributes: dict[str, Any] = {}
    for definition in definitions:
        name = f"attributes.{definition.key}"
        if definition.type == "multi_choice":
            picked = [v for v in form.getlist(name) if isinstance(v, str) and v]
            attributes[definition.key] = picked or None
            values[name] = ", ".join(picked)
        else:
            values[name] = form_text(form, name)
            attributes[definition.key] = values[name] or None
    try:
        with console.db.begin_nested():
            service.update_contact(console.db, contact, fields=fields, attributes=attributes, actor=console.actor,
                                   source="console")
    except SiyuError as exc:
        console.db.refresh(contact)
        return _profile(console, contact, status=exc.status, values=values,
                        errors={exc.field or "_form": _error_text(console, exc)})
    return redirect(f"/console/contacts/{contact.id}", flash="contact_saved")


@router.post("/console/contacts/{contact_id:int}/consent")
def save_consent(contact_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Grant or withdraw one channel, saying where the consent came from."""
    console.auth.require("contacts", "write")
    contact = service.get_contact(console.db, contact_id, viewer=console.auth)
    service.set_consent(console.db, contact, channel=form_text(form, "channel"), status=form_text(form, "status"),
                        source=form_text(form, "source") or "console", proof=form_text(form, "proof") or None,
                        actor=console.actor)
    return redirect(f"/console/contacts/{contact.id}#consent", flash="contact_saved")


@router.post("/console/contacts/{contact_id:int}/do-not-contact")
def save_do_not_contact(contact_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Set or clear the contact's do-not-contact flag."""
    console.auth.require("contacts", "write")
    contact = service.get_contact(console.db, contact_id, viewer=console.auth)
    service.set_do_not_contact(console.db, [contact], form_text(form, "value") != "off", actor=console.actor)
    return redirect(f"/console/contacts/{contact.id}#consent", flash="contact_saved")


@router.post("/console/contacts/{contact_id:int}/notes")
def add_note(contact_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Add a note."""
    console.auth.require("contacts", "write")
    contact = service.get_contact(console.db, contact_id, viewer=console.auth)
    service.add_note(console.db, contact, body=form_text(form, "body"), actor=console.actor)
    return redirect(f"/console/contacts/{contact.id}#notes")


@router.post("/console/contacts/{contact_id:int}/notes/{note_id}/delete")
def delete_note(contact_id: int, note_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a note."""
    console.auth.require("contacts", "write")
    contact = service.get_contact(console.db, contact_id, viewer=console.auth)
    service.delete_note(console.db, service.get_note(console.db, contact, note_id), actor=console.actor)
    return redirect(f"/console/contacts/{contact.id}#notes")


@router.post("/console/contacts/{contact_id:int}/delete")
def delete_contact(contact_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete the contact."""
    console.auth.require("contacts", "write")
    service.delete_contact(console.db, service.get_contact(console.db, contact_id, viewer=console.auth),
                           actor=console.actor)
    return redirect("/console/contacts", flash="contacts_deleted")


@router.post("/console/contacts/{contact_id:int}/proposals/{proposal_id}/{decision}")
def decide_proposal(contact_id: int, proposal_id: int, decision: str, console: ConsoleDep, form: FormDep) -> Response:
    """Accept (merge) or reject a merge proposal naming this contact."""
    console.auth.require("contacts", "write")
    contact = service.get_contact(console.db, contact_id, viewer=console.auth)
    proposal = service.get_merge_proposal(console.db, proposal_id)
    if contact.id not in (proposal.contact_a_id, proposal.contact_b_id) or decision not in ("accept", "reject"):
        return redirect(f"/console/contacts/{contact.id}")
    if decision == "reject":
        service.reject_merge_proposal(console.db, proposal, actor=console.actor)
        return redirect(f"/console/contacts/{contact.id}", flash="contact_saved")
    # Staff may merge only contacts they can both see.
    for other in (proposal.contact_a_id, proposal.contact_b_id):
        service.get_contact(console.db, other, viewer=console.auth)
    record = service.accept_merge_proposal(console.db, proposal, actor=console.actor)
    return redirect(f"/console/contacts/{record.keeper_id}", flash="merged")
