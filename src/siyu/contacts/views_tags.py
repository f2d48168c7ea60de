"""Console: the tag manager (groups, tags, auto-tagging rules) and bulk tagging from the contact list."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.console.nav import N_
from siyu.console.shell import (
    FLASHES,
    Console,
    ConsoleDep,
    ConsoleRoute,
    FormDep,
    explain,
    form_text,
    is_htmx,
    redirect,
    safe_next,
)
from siyu.contacts import tag_rules, tags
from siyu.contacts.models import Segment
from siyu.core.errors import Invalid, SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
T = TypeVar("T")

CONDITION_ROWS = 3
OP_NAMES = {
    "eq": N_("equals"),
    "ne": N_("is not"),
    "gt": N_("greater than"),
    "gte": N_("at least"),
    "lt": N_("less than"),
    "lte": N_("at most"),
    "contains": N_("contains"),
    "in": N_("is one of (comma-separated)"),
}
TRIGGER_NAMES = {
    "event": N_("An event happens"),
    "segment_entered": N_("A contact enters a segment"),
    # Registered by the messaging module's keyword replies; shown only where that module is loaded.
    "keyword": N_("A keyword reply answers the contact"),
}
FLASHES.update({
    "tag_group_created": N_("Tag group created."),
    "tag_group_deleted": N_("Tag group deleted."),
    "tag_created": N_("Tag created."),
    "tag_deleted": N_("Tag deleted."),
    "tag_rule_created": N_("Rule created."),
    "tag_rule_saved": N_("Rule saved."),
    "tag_rule_deleted": N_("Rule deleted."),
    "contacts_tagged": N_("Tags updated on the selected contacts."),
})


# What a person reads for this module's refusals, by (code, field with indexes dropped).
EXPLAINED: dict[tuple[str, str], str] = {
    ("invalid", "name"): N_("Enter a name of at most 80 characters."),
    ("conflict", "name"): N_("This name is taken already."),
    ("invalid", "color"): N_("Write a colour as #rrggbb, such as #1f8a70."),
    ("not_found", "group_id"): N_("This tag group does not exist any more."),
    ("invalid", "trigger"): N_("Choose when the rule runs."),
    ("invalid", "config.event_type"): N_("Enter an event type such as order.paid."),
    ("invalid", "config.conditions[].property"): N_("Enter a property such as amount or items.0.sku."),
    ("invalid", "config.conditions[].op"): N_("Choose a comparison."),
    ("invalid", "config.conditions[].value"): N_(
        "This comparison needs another kind of value: a number or a text, or a list for “is one of”."
    ),
    ("invalid", "config.segment_id"): N_("Choose a segment."),
    ("invalid", "config.keywords"): N_("Write the keywords that tag, separated by commas."),
    ("invalid", "config.rule_ids"): N_("Write the keywords that tag, separated by commas."),
    ("not_found", "config.segment_id"): N_("Choose a segment."),
    ("invalid", "add_tag_ids"): N_("Choose at least one tag to add or remove."),
    ("not_found", "add_tag_ids"): N_("One of the chosen tags does not exist any more."),
    ("invalid", "remove_tag_ids"): N_("A tag can't be both added and removed by one rule."),
    ("not_found", "remove_tag_ids"): N_("One of the chosen tags does not exist any more."),
    ("invalid", "contact_ids"): N_("Tick at least one contact (at most 10,000)."),
    ("not_found", "contact_ids"): N_("One of the ticked contacts does not exist any more."),
    ("invalid", "tag_ids"): N_("Choose a tag."),
    ("not_found", "tag_ids"): N_("This tag does not exist any more."),
    ("invalid", "action"): N_("Choose whether to add or remove the tag."),
}


def explain_here(exc: SiyuError, console: Console) -> str:
    """A translated sentence for a refusal of the tags or staff pages (the console's own as a fallback)."""
    field = re.sub(r"\[\d+\]", "[]", exc.field or "")
    message = EXPLAINED.get((exc.code, field))
    return console.gettext(message) if message else explain(exc, console.locale)



def _attempt(db: Session, write: Callable[[], T]) -> T:
    """One service call in a savepoint: a refused write leaves nothing behind and the form re-renders."""
    with db.begin_nested():
        return write()


def _ints(form: FormData, name: str) -> list[int]:
    out = []
    for value in form.getlist(name):
        if isinstance(value, str) and value.strip().isdigit():
            out.append(int(value.strip()))
        elif isinstance(value, str) and value.strip():
            raise Invalid(f"{name} holds ids", field=name)
    return out


def _value(raw: str, op: str) -> Any:
    """A condition's value as typed: JSON when it reads as a number, true, false or null, else text."""
    if op == "in":
        return [_value(part.strip(), "eq") for part in raw.split(",") if part.strip()]
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    return parsed if parsed is None or isinstance(parsed, bool | int | float | str) else raw


def _rule_values(form: FormData) -> dict[str, Any]:
    trigger = form_text(form, "trigger")
    config: dict[str, Any]
    if trigger == "segment_entered":
        segment = form_text(form, "segment_id")
        config = {"segment_id": int(segment) if segment.isdigit() else segment}
    elif trigger == "keyword":
        config = {"keywords": [k.strip() for k in re.split(r"[,，]", form_text(form, "keywords")) if k.strip()]}
    else:
        conditions = []
        for i in range(CONDITION_ROWS):
            prop, op = form_text(form, f"property_{i}"), form_text(form, f"op_{i}")
            if prop or form_text(form, f"value_{i}"):
                conditions.append({"property": prop, "op": op, "value": _value(form_text(form, f"value_{i}"), op)})
        config = {"event_type": form_text(form, "event_type"), "conditions": conditions}
    return {
        "name": form_text(form, "name"),
        "trigger": trigger,
        "config": config,
        "add_tag_ids": _ints(form, "add_tag_ids"),
        "remove_tag_ids": _ints(form, "remove_tag_ids"),
    }


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def _form_of(values: dict[str, Any]) -> dict[str, Any]:
    """A rule's values as the editor's fields."""
    config = values.get("config") or {}
    out: dict[str, Any] = {
        "name": values.get("name", ""), "trigger": values.get("trigger", "event"),
        "event_type": config.get("event_type", ""), "segment_id": config.get("segment_id", ""),
        "keywords": ", ".join(config.get("keywords") or []),
        "add_tag_ids": values.get("add_tag_ids", []), "remove_tag_ids": values.get("remove_tag_ids", []),
    }
    for i, condition in enumerate((config.get("conditions") or [])[:CONDITION_ROWS]):
        out[f"property_{i}"] = condition.get("property", "")
        out[f"op_{i}"] = condition.get("op", "eq")
        out[f"value_{i}"] = _shown(condition.get("value", ""))
    return out


def _page(
    console: Console, *, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    db = console.db
    groups = tags.list_tag_groups(db)
    all_tags = tags.list_tags(db)
    return console.page(
        "contacts/tags.html",
        status=status,
        groups=groups,
        tags_by_group={g.id: [t for t in all_tags if t.group_id == g.id] for g in groups},
        tag_names={t.id: t.name for t in all_tags},
        counts=tags.tag_counts(db),
        rules=tag_rules.list_rules(db),
        segments=list(db.execute(select(Segment.id, Segment.name).order_by(Segment.name)).all()),
        triggers=[t for t in tag_rules.trigger_names() if t in TRIGGER_NAMES],
        trigger_names=TRIGGER_NAMES,
        op_names=OP_NAMES,
        condition_rows=range(CONDITION_ROWS),
        editable=console.can("contacts", "write"),
        errors=errors or {},
        values=values or {"trigger": "event"},
        shown=_shown,
    )


def _refused(console: Console, exc: SiyuError, prefix: str, values: dict[str, Any] | None = None) -> Response:
    field = f"{prefix}.{exc.field}" if exc.field else f"{prefix}._form"
    return _page(console, errors={field: explain_here(exc, console)}, values=values, status=exc.status)


@router.get("/console/tags")
def tag_manager(console: ConsoleDep) -> Response:
    """Tag groups and their tags, with how many contacts wear each, and the auto-tagging rules."""
    console.auth.require("contacts", "read")
    return _page(console)


@router.post("/console/tags/groups")
def create_group(console: ConsoleDep, form: FormDep) -> Response:
    """Add a tag group."""
    console.auth.require("contacts", "write")
    try:
        name = form_text(form, "name")
        _attempt(console.db, lambda: tags.create_tag_group(console.db, name=name, actor=console.actor))
    except SiyuError as exc:
        return _refused(console, exc, "group")
    return redirect("/console/tags", flash="tag_group_created")


@router.post("/console/tags/groups/{group_id}/delete")
def delete_group(group_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a tag group and its tags."""
    console.auth.require("contacts", "write")
    tags.delete_tag_group(console.db, tags.get_tag_group(console.db, group_id), actor=console.actor)
    return redirect("/console/tags", flash="tag_group_deleted")


@router.post("/console/tags/tags")
def create_tag(console: ConsoleDep, form: FormDep) -> Response:
    """Add a tag to a group."""
    console.auth.require("contacts", "write")
    group_id = form_text(form, "group_id")
    try:
        _attempt(console.db, lambda: tags.create_tag(
            console.db, group_id=group_id, name=form_text(form, "name"), color=form_text(form, "color") or None,
            actor=console.actor,
        ))
    except SiyuError as exc:
        return _refused(console, exc, f"tag-{group_id}")
    return redirect("/console/tags", flash="tag_created")


@router.post("/console/tags/tags/{tag_id}/delete")
def delete_tag(tag_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a tag; contacts wearing it lose it."""
    console.auth.require("contacts", "write")
    tags.delete_tag(console.db, tags.get_tag(console.db, tag_id), actor=console.actor)
    return redirect("/console/tags", flash="tag_deleted")


@router.post("/console/tags/rules")
def create_rule(console: ConsoleDep, form: FormDep) -> Response:
    """Add an auto-tagging rule; a refused field is shown next to its input."""
    console.auth.require("contacts", "write")
    try:
        values = _rule_values(form)
        _attempt(console.db, lambda: tag_rules.create_rule(console.db, values=values, actor=console.actor))
    except SiyuError as exc:
        return _refused(console, exc, "rule", values=_form_of(_rule_values_safe(form)))
    return redirect("/console/tags", flash="tag_rule_created")


def _rule_values_safe(form: FormData) -> dict[str, Any]:
    try:
        return _rule_values(form)
    except SiyuError:
        return {"name": form_text(form, "name"), "trigger": form_text(form, "trigger")}


@router.post("/console/tags/rules/{rule_id}/active")
def toggle_rule(rule_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Pause or resume a rule."""
    console.auth.require("contacts", "write")
    rule = tag_rules.get_rule(console.db, rule_id)
    tag_rules.update_rule(console.db, rule, changes={"active": not rule.active}, actor=console.actor)
    return redirect("/console/tags", flash="tag_rule_saved")


@router.post("/console/tags/rules/{rule_id}/delete")
def delete_rule(rule_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a rule; the tags it put on contacts stay."""
    console.auth.require("contacts", "write")
    tag_rules.delete_rule(console.db, tag_rules.get_rule(console.db, rule_id), actor=console.actor)
    return redirect("/console/tags", flash="tag_rule_deleted")


# --- bulk tagging from the contact list -------------------------------------------------------------


@router.post("/console/contacts/bulk-tag")
def bulk_tag(console: ConsoleDep, form: FormDep) -> Response:
    """Add a tag to (or remove it from) the contacts ticked on the list; back to the list after."""
    console.auth.require("contacts", "write")
    back = safe_next(form_text(form, "next"), "/console/contacts")
    action = form_text(form, "action")
    tag_id = form_text(form, "tag_id")
    if action not in ("add", "remove"):
        raise Invalid(console.gettext(EXPLAINED[("invalid", "action")]), field="action")
    if not tag_id.isdigit():
        raise Invalid(console.gettext(EXPLAINED[("invalid", "tag_ids")]), field="tag_ids")
    try:
        contact_ids = _ints(form, "contact_ids")
        change = _attempt(console.db, lambda: (tags.add_tags if action == "add" else tags.remove_tags)(
            console.db, contact_ids, [int(tag_id)], source="manual", actor=console.actor, viewer=console.auth
        ))
    except SiyuError as exc:
        exc.message = explain_here(exc, console)
        raise
    if is_htmx(console.request):
        message = console.gettext("%(changed)d contacts changed, %(unchanged)d already were so.") % {
            "changed": change.changed, "unchanged": change.unchanged}
        return console.page("contacts/_bulk_tag_result.html", message=message)
    return redirect(back, flash="contacts_tagged")
