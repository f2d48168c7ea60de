"""Console pages of segments: the list, the builder with a live count, and a segment with its members."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from siyu.console.nav import N_
from siyu.console.shell import (
    FLASHES,
    Console,
    ConsoleDep,
    ConsoleRoute,
    FormDep,
    explain,
    form_text,
    redirect,
)
from siyu.contacts import segments
from siyu.contacts import service as contacts_service
from siyu.contacts.models import AttributeDefinition, Segment, Tag, TagGroup
from siyu.contacts.segment_rules import CONSENT_CHANNELS, FIELDS, IDENTITY_TYPES, OPS, STAGES
from siyu.core.errors import Invalid, SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
EMPTY_RULE: dict[str, Any] = {"all": []}
# Event types the builder offers first; any other type can be typed in.
COMMON_EVENTS = ("order.paid", "order.refunded", "page.viewed", "message.clicked", "coupon.redeemed")

FIELD_NAMES = {
    "name": N_("Name"), "nickname": N_("Nickname"), "gender": N_("Gender"), "birthday": N_("Birthday"),
    "city": N_("City"), "locale": N_("Language"), "phone": N_("Phone"), "email": N_("Email"),
    "created_at": N_("Added on"), "owner_id": N_("Owner (staff id)"), "stage": N_("Lifecycle stage"),
    "order_count": N_("Orders"), "revenue": N_("Revenue (minor units)"), "last_order_at": N_("Last order"),
    "last_active_at": N_("Last active"), "rfm_recency": N_("RFM recency (1-5)"),
    "rfm_frequency": N_("RFM frequency (1-5)"), "rfm_monetary": N_("RFM monetary (1-5)"),
    "do_not_contact": N_("Do not contact"),
}
OP_NAMES = {
    "eq": N_("is"), "ne": N_("is not"), "in": N_("is one of"), "not_in": N_("is none of"),
    "contains": N_("contains"), "starts_with": N_("starts with"), "is_set": N_("is set"),
    "is_not_set": N_("is not set"), "gt": N_("more than"), "gte": N_("at least"), "lt": N_("less than"),
    "lte": N_("at most"), "between": N_("between"), "before": N_("before"), "after": N_("after"),
    "within_last_days": N_("within the last days"), "has": N_("has"), "has_not": N_("has not"),
    "granted": N_("granted"), "not_granted": N_("not granted"), "withdrawn": N_("withdrawn"),
    "at_least": N_("at least"), "at_most": N_("at most"), "exactly": N_("exactly"), "none": N_("never"),
    "not_in_segment": N_("not in"), "in_segment": N_("in"),
}
KIND_NAMES = {
    "field": N_("Field"), "attribute": N_("Custom attribute"), "tag": N_("Tag"), "event": N_("Did an event"),
    "consent": N_("Consent"), "identity": N_("Identity"), "segment": N_("Segment"),
}
WORDS = {
    "all": N_("all of"), "any": N_("any of"), "not": N_("not"), "match": N_("Contacts matching"),
    "add_condition": N_("Add condition"), "add_group": N_("Add group"), "remove": N_("Remove"),
    "times": N_("times"), "in_last": N_("in the last (days, optional)"), "sum": N_("sum of"),
    "count": N_("number of times"), "where": N_("where property"), "value": N_("value"),
    "any_activity": N_("any activity"), "and": N_("and"),
}
STAGE_NAMES = {"new": N_("New"), "engaged": N_("Engaged"), "customer": N_("Customer"), "repeat": N_("Repeat"),
               "dormant": N_("Dormant"), "churned": N_("Churned")}
CHANNEL_NAMES = {"wechat_oa": N_("WeChat Official Account"), "wecom": N_("WeCom"), "sms": N_("SMS"),
                 "email": N_("Email")}
GENDER_NAMES = {"male": N_("Male"), "female": N_("Female"), "other": N_("Other")}
FLASHES.update({
    "segment_saved": N_("Segment saved. Its members are counted in the background."),
    "segment_refreshed": N_("Segment refreshed."),
    "segment_deleted": N_("Segment deleted."),
    "member_removed_from_segment": N_("Contact taken out of the segment."),
})
_EXPLAINED: dict[tuple[str, str], str] = {
    ("invalid", "name"): N_("Enter a name of at most 120 characters."),
    ("conflict", "name"): N_("Another segment already has this name."),
    ("conflict", "segment_id"): N_("Another segment's rule refers to this one: change that rule first."),
}


def _vocabulary(console: Console) -> dict[str, Any]:
    """What the builder offers, translated: fields and their ops, attributes, tags, segments, events."""
    t = console.gettext
    db = console.db
    choices = {"stage": {k: t(v) for k, v in STAGE_NAMES.items() if k in STAGES},
               "gender": {k: t(v) for k, v in GENDER_NAMES.items()}}
    tags = db.execute(select(Tag.id, Tag.name, TagGroup.name).join(TagGroup, TagGroup.id == Tag.group_id)
                      .order_by(TagGroup.name, Tag.name)).all()
    attributes = db.execute(select(AttributeDefinition.key, AttributeDefinition.label, AttributeDefinition.type)
                            .order_by(AttributeDefinition.label)).all()
    segment_rows = db.execute(select(Segment.id, Segment.name).order_by(Segment.name)).all()
    return {
        "fields": [{"key": k, "label": t(FIELD_NAMES[k]), "type": s.type, "choices": choices.get(k, {})}
                   for k, s in FIELDS.items()],
        "ops": {k: list(v) for k, v in OPS.items()},
        "opNames": {k: t(v) for k, v in OP_NAMES.items()},
        "kinds": {k: t(v) for k, v in KIND_NAMES.items()},
        "words": {k: t(v) for k, v in WORDS.items()},
        "attributes": [{"key": k, "label": label, "type": kind} for k, label, kind in attributes],
        "tags": [{"id": i, "label": f"{group} / {name}"} for i, name, group in tags],
        "segments": [{"id": i, "label": name} for i, name in segment_rows],
        "events": list(COMMON_EVENTS),
        "channels": {k: t(CHANNEL_NAMES[k]) for k in CONSENT_CHANNELS},
        "identities": list(IDENTITY_TYPES),
    }


def _message(console: Console, exc: SiyuError) -> str:
    explained = _EXPLAINED.get((exc.code, exc.field or ""))
    if explained:
        return console.gettext(explained)
    if exc.field and exc.field.startswith("rule"):
        return console.gettext("This rule has a mistake at %(where)s: %(why)s") % {
            "where": exc.field, "why": exc.message}
    return explain(exc, console.locale)


def _rule_of(form: FormData) -> Any:
    raw = form.get("rule")
    try:
        return json.loads(raw) if isinstance(raw, str) and raw.strip() else EMPTY_RULE
    except ValueError:
        raise Invalid("the rule is not valid JSON", field="rule") from None



@router.get("/console/segments")
def segment_list(console: ConsoleDep, cursor: str | None = None) -> Response:
    """Every segment with its size and when it was last refreshed."""
    console.auth.require("contacts", "read")
    rows, next_cursor = segments.list_segments(console.db, cursor=cursor or None)
    visible = contacts_service.visible_contacts(console.db, console.auth)
    counts = {s.id: segments.visible_member_count(console.db, s, visible) for s in rows}
    return console.page("contacts/segments.html", segments=rows, counts=counts, next_cursor=next_cursor,
                        editable=console.can("contacts", "write"))


def _builder(console: Console, *, segment: Segment | None, values: dict[str, Any], error: str | None = None,
             status: int = 200) -> Response:
    return console.page(
        "contacts/segment_builder.html", status=status, segment=segment, values=values, error=error,
        rule_json=json.dumps(values.get("rule") or EMPTY_RULE, ensure_ascii=False),
        vocabulary=json.dumps(_vocabulary(console), ensure_ascii=False),
    )


@router.get("/console/segments/new")
def new_segment(console: ConsoleDep) -> Response:
    """The builder, empty."""
    console.auth.require("contacts", "write")
    return _builder(console, segment=None, values={"kind": "dynamic", "rule": EMPTY_RULE})


@router.post("/console/segments/count")
def live_count(console: ConsoleDep, form: FormDep) -> Response:
    """The builder's live answer: how many contacts match the rule as it stands, and a few of them."""
    console.auth.require("contacts", "read")
    visible = contacts_service.visible_contacts(console.db, console.auth)
    try:
        total, sample = segments.preview(console.db, _rule_of(form), limit=10, visible=visible)
    except Invalid as exc:
        return console.page("contacts/_segment_count.html", error=_message(console, exc), total=None, sample=[])
    return console.page("contacts/_segment_count.html", error=None, total=total, sample=sample)


@router.post("/console/segments")
def create_segment(console: ConsoleDep, form: FormDep) -> Response:
    """Save a new segment from the builder."""
    console.auth.require("contacts", "write")
    values: dict[str, Any] = {"name": form_text(form, "name"), "kind": form_text(form, "kind") or "dynamic",
                              "description": form_text(form, "description")}
    try:
        values["rule"] = _rule_of(form)
        with console.db.begin_nested():
            segment = segments.create_segment(console.db, name=values["name"], kind=values["kind"],
                                              rule=values["rule"], description=values["description"] or None,
                                              actor=console.actor)
    except SiyuError as exc:
        return _builder(console, segment=None, values=values, error=_message(console, exc), status=exc.status)
    return redirect(f"/console/segments/{segment.id}", flash="segment_saved")


@router.get("/console/segments/{segment_id}")
def segment_detail(segment_id: int, console: ConsoleDep, cursor: str | None = None) -> Response:
    """A segment: its rule, size, last refresh and members."""
    console.auth.require("contacts", "read")
    segment = segments.get_segment(console.db, segment_id)
    visible = contacts_service.visible_contacts(console.db, console.auth)
    members, next_cursor = segments.list_members(console.db, segment, cursor=cursor or None, visible=visible)
    return console.page(
        "contacts/segment_detail.html", segment=segment, members=members, next_cursor=next_cursor,
        count=segments.visible_member_count(console.db, segment, visible),
        rule_text=json.dumps(segment.rule, ensure_ascii=False, indent=2) if segment.rule else "",
        editable=console.can("contacts", "write"), result=None,
    )


@router.get("/console/segments/{segment_id}/edit")
def edit_segment(segment_id: int, console: ConsoleDep) -> Response:
    """The builder, holding a segment's rule."""
    console.auth.require("contacts", "write")
    segment = segments.get_segment(console.db, segment_id)
    values = {"name": segment.name, "kind": segment.kind, "description": segment.description or "",
              "rule": segment.rule or EMPTY_RULE}
    return _builder(console, segment=segment, values=values)


@router.post("/console/segments/{segment_id}")
def update_segment(segment_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save changes to a segment."""
    console.auth.require("contacts", "write")
    segment = segments.get_segment(console.db, segment_id)
    values: dict[str, Any] = {"name": form_text(form, "name"), "kind": segment.kind,
                              "description": form_text(form, "description")}
    try:
        values["rule"] = _rule_of(form) if segment.kind == "dynamic" else segment.rule
        with console.db.begin_nested():
            segments.update_segment(console.db, segment, name=values["name"], description=values["description"],
                                    rule=values["rule"] if segment.kind == "dynamic" else None, actor=console.actor)
    except SiyuError as exc:
        console.db.refresh(segment)
        return _builder(console, segment=segment, values=values, error=_message(console, exc), status=exc.status)
    return redirect(f"/console/segments/{segment.id}", flash="segment_saved")


@router.post("/console/segments/{segment_id}/refresh")
def refresh_segment(segment_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Re-evaluate a dynamic segment now."""
    console.auth.require("contacts", "write")
    segments.refresh_now(console.db, segments.get_segment(console.db, segment_id), actor=console.actor)
    return redirect(f"/console/segments/{segment_id}", flash="segment_refreshed")


@router.post("/console/segments/{segment_id}/delete")
def delete_segment(segment_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a segment."""
    console.auth.require("contacts", "write")
    segment = segments.get_segment(console.db, segment_id)
    try:
        with console.db.begin_nested():
            segments.delete_segment(console.db, segment, actor=console.actor)
    except SiyuError as exc:
        console.db.refresh(segment)
        raise SiyuError(_message(console, exc), field=exc.field, code=exc.code) from None
    return redirect("/console/segments", flash="segment_deleted")


@router.post("/console/segments/{segment_id}/members")
async def upload_members(segment_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Add the contacts an uploaded CSV names (by phone, email, contact_id...) to a static segment."""
    console.auth.require("contacts", "write")
    segment = segments.get_segment(console.db, segment_id)
    upload = form.get("file")
    content = await upload.read() if isinstance(upload, UploadFile) else b""
    visible = contacts_service.visible_contacts(console.db, console.auth)
    members, next_cursor = segments.list_members(console.db, segment, visible=visible)
    rule_text = json.dumps(segment.rule, ensure_ascii=False, indent=2) if segment.rule else ""
    context: dict[str, Any] = {"segment": segment, "next_cursor": next_cursor, "editable": True,
                               "rule_text": rule_text}
    try:
        with console.db.begin_nested():
            ids, identities = segments.parse_upload(content)
            change = segments.add_members(console.db, segment, contact_ids=ids, identities=identities,
                                          actor=console.actor)
    except SiyuError as exc:
        console.db.refresh(segment)
        return console.page("contacts/segment_detail.html", status=exc.status, members=members, result=None,
                            count=segments.visible_member_count(console.db, segment, visible),
                            upload_error=console.gettext("The list was not added: %(why)s") % {"why": exc.message},
                            **context)
    members, next_cursor = segments.list_members(console.db, segment, visible=visible)
    context["next_cursor"] = next_cursor
    return console.page("contacts/segment_detail.html", members=members, result=change,
                        count=segments.visible_member_count(console.db, segment, visible), **context)


@router.post("/console/segments/{segment_id}/members/remove")
def remove_member(segment_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Take one contact out of a static segment."""
    console.auth.require("contacts", "write")
    segment = segments.get_segment(console.db, segment_id)
    segments.remove_members(console.db, segment, contact_ids=[form_text(form, "contact_id")], actor=console.actor)
    return redirect(f"/console/segments/{segment_id}", flash="member_removed_from_segment")
