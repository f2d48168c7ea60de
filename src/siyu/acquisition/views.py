"""Console: acquisition — the source catalogue (list, create, edit, archive) and channel codes (list with
today's and all-time adds, the editor with members and rotation, the page of one code with its chart of
scans, adds and conversions per day, its members' WeCom errors and everyone who arrived through it)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from siyu.acquisition import posters, service
from siyu.acquisition.models import ChannelCode, Source
from siyu.channels import service as channels
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, explain, form_text, redirect
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.contacts import tags as tag_service
from siyu.core import clock
from siyu.core.errors import Invalid, SiyuError
from siyu.core.money import format_money, parse_decimal_to_minor, to_decimal

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

SOURCE_TYPE_NAMES = {
    "parcel_card": N_("Parcel card"), "store_poster": N_("Store poster"), "phone_call": N_("Phone call"),
    "sms": N_("SMS"), "ai_voice_call": N_("AI voice call"), "oa_article": N_("Official Account article"),
    "app": N_("App"), "short_video": N_("Short-video profile"), "live_stream": N_("Live stream"),
    "staff_card": N_("Staff business card"), "event": N_("Event"), "other": N_("Other"),
}
COST_KIND_NAMES = {
    "per_unit": N_("Per unit (cards, calls, messages)"), "per_period": N_("Per period (rent, retainer)"),
    "per_acquired": N_("Per new contact"), "fixed": N_("One fixed amount"),
}
PERIOD_NAMES = {"day": N_("a day"), "week": N_("a week"), "month": N_("a month")}
CODE_KIND_NAMES = {"wecom": N_("WeCom account"), "wechat_oa": N_("Official Account"), "link": N_("Tracked link")}
STATUS_NAMES = {"active": N_("Active"), "paused": N_("Paused"), "expired": N_("Expired")}
STRATEGY_NAMES = {"round_robin": N_("Round robin"), "random": N_("Random"), "weighted": N_("Weighted")}
ARRIVAL_KIND_NAMES = {"scan": N_("Scan"), "add": N_("Add"), "click": N_("Click")}
NOTE_NAMES = {
    "code_paused": N_("code was paused"), "code_expired": N_("code had expired"),
    "no_staff_available": N_("no staff member free: default owner"),
}
FLASHES.update({
    "source_saved": N_("Source saved."),
    "source_archived": N_("Source archived: its codes and spend keep their history."),
    "source_deleted": N_("Source deleted."),
    "source_restored": N_("Source restored."),
    "code_saved": N_("Channel code saved."),
    "code_paused": N_("Code paused. People who scan it still arrive, and their arrival says so."),
    "code_active": N_("Code resumed."),
    "code_expired": N_("Code expired. People who scan it still arrive, and their arrival says so."),
})
# What a person reads for a refused field, whatever the code of the refusal (the service's English
# message is the fallback for anything else).
FIELD_HELP: dict[str, str] = {
    "name": N_("Enter a name of at most 120 characters."),
    "type": N_("Choose the kind of placement."),
    "currency": N_("Use a three-letter ISO 4217 currency code, such as CNY."),
    "notes": N_("Notes are at most 2,000 characters."),
    "cost_model.kind": N_("Choose how this source costs money."),
    "cost_model.unit_cost": N_("Enter the cost of one unit, such as 0.05."),
    "cost_model.amount": N_("Enter the amount, such as 3000 or 3000.00."),
    "cost_model.units_per_day": N_("Enter how many units a day, a whole number."),
    "cost_model.period": N_("Choose a day, a week or a month."),
    "cost_model.starts_on": N_("Choose the day the cost starts (a fixed amount needs it)."),
    "cost_model.ends_on": N_("The cost ends on or after the day it starts."),
    "cost_model.currency": N_("The cost is in the source's currency."),
    "source_id": N_("Choose a source that is not archived."),
    "kind": N_("Choose what the code is: a WeCom account, an Official Account or a tracked link."),
    "account_id": N_("Choose the account the code belongs to."),
    "state": N_("A state is 1 to 30 letters, digits, _ or -, and unique."),
    "target_url": N_("Enter the link a click goes to, starting with http:// or https://."),
    "rotation": N_("Choose a rotation strategy."),
    "members": N_("Choose at least one staff member; a WeCom code's members need a WeCom userid."),
    "expires_at": N_("Enter a date and time such as 2026-12-31T23:59, or leave it empty."),
    "tag_ids": N_("Choose among the listed tags."),
    "welcome": N_("Write the welcome text (at most 2,000 characters), or leave it empty."),
    "weight": N_("A weight is a whole number from 1 to 100."),
    "daily_cap": N_("A daily cap is a whole number from 0 (takes nobody) up, or empty for no cap."),
    "hours": N_("Write shifts as days and times, such as 1-5 09:00-18:00; 6,7 10:00-16:00."),
    "staff_id": N_("This staff member can't be on the code: they are inactive, or have no WeCom userid."),
}
CONFLICTS: dict[str, str] = {
    "name": N_("This name is taken already."),
    "state": N_("Another code uses this state; choose another."),
    "currency": N_("The source has spend recorded in its currency; its currency can't change."),
}
MEMBERS_REFUSED = N_("WeCom refused every member: %(reasons)s")
SHIFT = re.compile(r"^\s*([1-7](?:\s*-\s*[1-7])?(?:\s*,\s*[1-7](?:\s*-\s*[1-7])?)*)\s+(\d{1,2}:\d{2})\s*-\s*"
                   r"(\d{1,2}:\d{2})\s*$")
ARRIVALS_PAGE = 50



def _int_or(value: str, default: Any) -> Any:
    """A whole number from a form field; something the service refuses (-1) when it is not one."""
    if value == "":
        return default
    return int(value) if value.lstrip("-").isdigit() and len(value) < 10 else -1


def _explain(console: Console, exc: SiyuError) -> str:
    field = exc.field or ""
    if exc.code == "members_refused":
        return console.gettext(MEMBERS_REFUSED) % {"reasons": exc.message.partition("(")[2].rstrip(")")}
    if exc.code == "conflict" and field in CONFLICTS:
        return console.gettext(CONFLICTS[field])
    if exc.code in ("invalid", "not_found", "unknown_field", "state_too_long", "wrong_currency", "duplicate",
                    "code_expired"):
        key = field.split(".")[-1] if field.startswith("members.") else field
        key = "welcome" if key.startswith("welcome") else key
        if key in FIELD_HELP:
            return console.gettext(FIELD_HELP[key])
    return explain(exc, console.locale)


def _editable(console: Console) -> bool:
    return console.can("acquisition", "write")


def _tz(console: Console) -> ZoneInfo:
    return ZoneInfo(console.workspace.timezone)


# --- sources ----------------------------------------------------------------------------------------


def _money(amount: Any, currency: str, locale: str) -> str:
    return format_money(int(amount), currency, locale) if isinstance(amount, int) else ""


def cost_summary(console: Console, source: Source) -> str:
    """A source's cost model in one line, in the reader's language."""
    model, cur, loc = source.cost_model or {}, source.currency, console.locale
    kind = model.get("kind")
    if kind == "per_unit":
        text = console.gettext("%(cost)s a unit") % {"cost": _money(model.get("unit_cost"), cur, loc)}
        if model.get("units_per_day"):
            text += " × " + console.gettext("%(units)s a day") % {"units": model["units_per_day"]}
        return text
    if kind == "per_period":
        return console.gettext("%(amount)s %(period)s") % {
            "amount": _money(model.get("amount"), cur, loc),
            "period": console.gettext(PERIOD_NAMES.get(model.get("period", ""), "a day"))}
    if kind == "per_acquired":
        return console.gettext("%(cost)s a new contact") % {"cost": _money(model.get("unit_cost"), cur, loc)}
    if kind == "fixed":
        return console.gettext("%(amount)s once, on %(day)s") % {
            "amount": _money(model.get("amount"), cur, loc), "day": model.get("starts_on", "")}
    return console.gettext("No cost recorded")


@router.get("/console/sources")
def sources_page(console: ConsoleDep, archived: bool = False) -> Response:
    """The source catalogue: each placement, what it costs and how many codes it has."""
    console.auth.require("acquisition", "read")
    rows = service.list_sources(console.db, archived=archived)
    return console.page("acquisition/sources.html", sources=rows, archived=archived,
                        counts={s.id: service.code_count(console.db, s) for s in rows},
                        costs={s.id: cost_summary(console, s) for s in rows}, type_names=SOURCE_TYPE_NAMES,
                        editable=_editable(console))


def _source_values(source: Source | None, console: Console) -> dict[str, str]:
    if source is None:
        return {"name": "", "type": "parcel_card", "currency": console.workspace.currency, "cost_kind": "",
                "unit_cost": "", "units_per_day": "", "amount": "", "period": "month", "starts_on": "",
                "ends_on": "", "notes": ""}
    model = source.cost_model or {}

    def major(key: str) -> str:
        value = model.get(key)
        return str(to_decimal(value, source.currency)) if isinstance(value, int) else ""

    return {"name": source.name, "type": source.type, "currency": source.currency,
            "cost_kind": str(model.get("kind", "")), "unit_cost": major("unit_cost"),
            "units_per_day": str(model.get("units_per_day", "")), "amount": major("amount"),
            "period": str(model.get("period", "month")), "starts_on": str(model.get("starts_on", "")),
            "ends_on": str(model.get("ends_on", "")), "notes": source.notes}


def _source_form(console: Console, *, source: Source | None, values: dict[str, str],
                 errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return console.page("acquisition/source_editor.html", status=status, source=source, values=values,
                        errors=errors or {}, type_names=SOURCE_TYPE_NAMES, cost_kind_names=COST_KIND_NAMES,
                        period_names=PERIOD_NAMES)


def _cost_model(values: dict[str, str]) -> dict[str, Any]:
    """The cost model the form describes (money typed in major units, such as 0.05)."""
    kind = values["cost_kind"]
    if not kind:
        return {}
    currency = values["currency"].upper() or "CNY"
    model: dict[str, Any] = {"kind": kind}
    for key in ("unit_cost", "amount"):
        if values[key]:
            model[key] = parse_decimal_to_minor(values[key], currency, field=f"cost_model.{key}")
    if values["units_per_day"] and kind == "per_unit":
        model["units_per_day"] = _int_or(values["units_per_day"], None)
    if kind == "per_period":
        model["period"] = values["period"]
    for key in ("starts_on", "ends_on"):
        if values[key] and not (kind == "fixed" and key == "ends_on"):
            model[key] = values[key]
    return model


def _source_changes(form: FormData) -> dict[str, str]:
    names = ("name", "type", "currency", "cost_kind", "unit_cost", "units_per_day", "amount", "period",
             "starts_on", "ends_on", "notes")
    return {name: form_text(form, name) for name in names}


@router.get("/console/sources/new")
def new_source_page(console: ConsoleDep) -> Response:
    """The form of a new source."""
    console.auth.require("acquisition", "write")
    return _source_form(console, source=None, values=_source_values(None, console))


@router.post("/console/sources")
def create_source(console: ConsoleDep, form: FormDep) -> Response:
    """Add a source; a refused field is shown next to it and nothing is written."""
    console.auth.require("acquisition", "write")
    values = _source_changes(form)
    try:
        with console.db.begin_nested():
            service.create_source(console.db, name=values["name"], type=values["type"],
                                  currency=values["currency"].upper() or None, cost_model=_cost_model(values),
                                  notes=values["notes"], actor=console.actor)
    except SiyuError as exc:
        return _source_form(console, source=None, values=values,
                            errors={exc.field or "_form": _explain(console, exc)}, status=exc.status)
    return redirect("/console/sources", flash="source_saved")


@router.get("/console/sources/{source_id}/edit")
def edit_source_page(source_id: int, console: ConsoleDep) -> Response:
    """The form of one source."""
    console.auth.require("acquisition", "write")
    source = service.get_source(console.db, source_id)
    return _source_form(console, source=source, values=_source_values(source, console))


@router.post("/console/sources/{source_id}")
def update_source(source_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save a source's changes."""
    console.auth.require("acquisition", "write")
    source = service.get_source(console.db, source_id)
    values = _source_changes(form)
    try:
        with console.db.begin_nested():
            service.update_source(console.db, source, changes={
                "name": values["name"], "type": values["type"], "currency": values["currency"].upper(),
                "cost_model": _cost_model(values), "notes": values["notes"]}, actor=console.actor)
    except SiyuError as exc:
        console.db.refresh(source)
        return _source_form(console, source=source, values=values,
                            errors={exc.field or "_form": _explain(console, exc)}, status=exc.status)
    return redirect("/console/sources", flash="source_saved")


@router.post("/console/sources/{source_id}/archive")
def archive_source(source_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Archive a source (deleted instead when it never had codes or spend)."""
    console.auth.require("acquisition", "write")
    source = service.get_source(console.db, source_id)
    deleted = service.delete_source(console.db, source, actor=console.actor)
    return redirect("/console/sources", flash="source_deleted" if deleted else "source_archived")


@router.post("/console/sources/{source_id}/restore")
def restore_source(source_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Bring an archived source back."""
    console.auth.require("acquisition", "write")
    source = service.get_source(console.db, source_id)
    service.update_source(console.db, source, changes={"archived": False}, actor=console.actor)
    return redirect("/console/sources", flash="source_restored")


# --- codes: the list --------------------------------------------------------------------------------


@router.get("/console/channel-codes")
def codes_page(console: ConsoleDep, source_id: str = "", status: str = "") -> Response:
    """Every code with its status, source and adds today and in all."""
    console.auth.require("acquisition", "read")
    chosen_source = int(source_id) if source_id.isdigit() and len(source_id) < 19 else None
    chosen_status = status if status in STATUS_NAMES else None
    rows = service.list_codes(console.db, source_id=chosen_source)
    if chosen_status is not None:
        rows = [c for c in rows if service.live_status(c) == chosen_status]
    ids = [c.id for c in rows]
    today = service.local_now(console.db).date()
    sources = {s.id: s for s in service.list_sources(console.db, archived=None)}
    return console.page("acquisition/codes.html", codes=rows, sources=sources,
                        live={c.id: service.live_status(c) for c in rows},
                        totals=service.totals(console.db, ids), today=service.totals(console.db, ids, day=today),
                        chosen_source=chosen_source, chosen_status=chosen_status or "", status_names=STATUS_NAMES,
                        kind_names=CODE_KIND_NAMES, editable=_editable(console))


# --- codes: the editor ------------------------------------------------------------------------------


def format_hours(windows: list[dict[str, Any]]) -> str:
    """Working hours as the editor writes them: `1-5 09:00-18:00; 6,7 10:00-16:00`."""
    parts = []
    for w in windows or []:
        days = sorted(w.get("days") or [])
        runs: list[str] = []
        start = prev = None
        for d in [*days, None]:
            if d is not None and prev is not None and d == prev + 1:
                prev = d
                continue
            if start is not None:
                runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = d
        parts.append(f"{','.join(runs)} {w.get('start', '')}-{w.get('end', '')}")
    return "; ".join(parts)


def parse_hours(text: str, field: str) -> list[dict[str, Any]]:
    """Working hours from the editor's text (empty: always); the rotation checks the times themselves."""
    windows = []
    for part in re.split(r"[;\n]", text):
        if not part.strip():
            continue
        found = SHIFT.match(part)
        if found is None:
            raise Invalid("shifts are written as days and times, such as 1-5 09:00-18:00", field=field)
        days: set[int] = set()
        for run in found.group(1).replace(" ", "").split(","):
            low, _, high = run.partition("-")
            if high and int(high) < int(low):
                raise Invalid("a run of days goes up, such as 1-5", field=field)
            days.update(range(int(low), int(high or low) + 1))
        start, end = (t.zfill(5) for t in (found.group(2), found.group(3)))
        windows.append({"days": sorted(days), "start": start, "end": end})
    return windows


def _member_rows(console: Console, code: ChannelCode | None) -> list[Any]:
    """The editor's member rows: the code's members in rotation order, then every other active staff member."""
    members = service.members_of(console.db, code) if code is not None else []
    on = {m.staff_id: m for m in members}
    everyone = {s.id: s for s in staff_service.list_staff(console.db)}
    rows: list[tuple[Any, Any]] = [(everyone[m.staff_id], m) for m in members if m.staff_id in everyone]
    rows += [(s, None) for s in sorted(everyone.values(), key=lambda s: s.name) if s.active and s.id not in on]
    return rows


def _code_values(console: Console, code: ChannelCode | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "", "source_id": "", "kind": "wecom", "account_id": "", "state": "", "target_url": "",
        "rotation": "round_robin", "welcome_text": "", "tag_ids": [], "expires_at": "", "skip_verify": True,
    }
    if code is not None:
        values.update(name=code.name, source_id=str(code.source_id), kind=code.kind,
                      account_id=str(code.account_id or ""), state=code.state, target_url=code.target_url or "",
                      rotation=code.rotation, welcome_text=str((code.welcome or {}).get("text", "")),
                      tag_ids=[str(t) for t in code.tag_ids or []], skip_verify=code.skip_verify,
                      expires_at=code.expires_at.astimezone(_tz(console)).strftime("%Y-%m-%dT%H:%M")
                      if code.expires_at else "")
    for staff, member in _member_rows(console, code):
        key = f"m{staff.id}"
        values[f"{key}_on"] = member is not None
        values[f"{key}_weight"] = str(member.weight) if member else "1"
        values[f"{key}_cap"] = str(member.daily_cap) if member and member.daily_cap is not None else ""
        values[f"{key}_hours"] = format_hours(member.hours) if member else ""
        values[f"{key}_backup"] = bool(member and member.backup)
    return values


def _form_values(form: FormData) -> dict[str, Any]:
    names = ("name", "source_id", "kind", "account_id", "state", "target_url", "rotation", "welcome_text",
             "expires_at")
    values: dict[str, Any] = {name: form_text(form, name) for name in names}
    values["tag_ids"] = [t for t in form.getlist("tag_ids") if isinstance(t, str)]
    values["skip_verify"] = form.get("skip_verify") == "on"
    values["member_order"] = [s for s in form.getlist("member_row") if isinstance(s, str) and s.isdigit()]
    for staff_id in values["member_order"]:
        key = f"m{staff_id}"
        values[f"{key}_on"] = form.get(f"{key}_on") == "on"
        values[f"{key}_backup"] = form.get(f"{key}_backup") == "on"
        for part in ("weight", "cap", "hours"):
            values[f"{key}_{part}"] = form_text(form, f"{key}_{part}")
    return values


def _members(values: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
    """The members the form describes, in its row order; `keys` receives each one's row key (for errors)."""
    members: list[dict[str, Any]] = []
    if values.get("kind") == "link":
        return members  # a click has no contact to own
    for staff_id in values["member_order"]:
        key = f"m{staff_id}"
        if not values.get(f"{key}_on"):
            continue
        i = len(members)
        keys.append(key)  # first, so a refusal of this row's hours finds the row
        members.append({"staff_id": int(staff_id), "weight": _int_or(values[f"{key}_weight"], 1),
                        "daily_cap": _int_or(values[f"{key}_cap"], None),
                        "hours": parse_hours(values[f"{key}_hours"], f"members.{i}.hours"),
                        "backup": values[f"{key}_backup"]})
    return members


def _expires(text: str, tz: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid("a date and time such as 2026-12-31T23:59", field="expires_at") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(ZoneInfo("UTC"))


def _code_changes(console: Console, values: dict[str, Any]) -> dict[str, Any]:
    tags = [int(t) for t in values["tag_ids"] if t.isdigit() and len(t) < 19]
    welcome = {"type": "text", "text": values["welcome_text"]} if values["welcome_text"] else {}
    return {"name": values["name"], "source_id": _int_or(values["source_id"], None),
            "rotation": values["rotation"] or "round_robin",
            "welcome": welcome, "tag_ids": tags, "expires_at": _expires(values["expires_at"], _tz(console)),
            "skip_verify": values["skip_verify"]}


def _error_key(field: str | None, member_keys: list[str]) -> str:
    """Where an error shows: a member's on their row (`m<staff id>`), the rest on their field."""
    field = field or "_form"
    found = re.match(r"^members\.(\d+)\.", field)
    if found is not None and int(found.group(1)) < len(member_keys):
        return member_keys[int(found.group(1))]
    if field.startswith("welcome"):
        return "welcome"
    return field


def _editor(console: Console, *, code: ChannelCode | None, values: dict[str, Any],
            errors: dict[str, str] | None = None, status: int = 200) -> Response:
    rows = _member_rows(console, code)
    groups = tag_service.list_tag_groups(console.db)
    tags = tag_service.list_tags(console.db)
    return console.page(
        "acquisition/code_editor.html", status=status, code=code, values=values, errors=errors or {},
        member_rows=rows, sources=service.list_sources(console.db),
        accounts={k: channels.list_accounts(console.db, kind=k) for k in ("wecom", "wechat_oa")},
        tag_groups=[(g, [t for t in tags if t.group_id == g.id]) for g in groups], kind_names=CODE_KIND_NAMES,
        strategy_names=STRATEGY_NAMES, tz=console.workspace.timezone,
    )


@router.get("/console/channel-codes/new")
def new_code_page(console: ConsoleDep, source_id: str = "") -> Response:
    """The editor of a new code (of a source when one is given)."""
    console.auth.require("acquisition", "write")
    values = _code_values(console, None)
    if source_id.isdigit():
        values["source_id"] = source_id
    return _editor(console, code=None, values=values)


@router.post("/console/channel-codes")
def create_code(console: ConsoleDep, form: FormDep) -> Response:
    """Make a code (on WeCom and the Official Account its QR is made on the platform now)."""
    console.auth.require("acquisition", "write")
    values = _form_values(form)
    keys: list[str] = []
    try:
        with console.db.begin_nested():
            members = _members(values, keys)
            changes = _code_changes(console, values)
            kind = values["kind"]
            code = service.create_code(
                console.db, name=changes["name"], source_id=changes["source_id"], kind=kind,
                account_id=_int_or(values["account_id"], None) if kind != "link" else None,
                state=values["state"] or None, members=members, rotation_strategy=changes["rotation"],
                welcome=changes["welcome"], tag_ids=changes["tag_ids"],
                target_url=values["target_url"] if kind == "link" else None, expires_at=changes["expires_at"],
                skip_verify=changes["skip_verify"], actor=console.actor)
    except SiyuError as exc:
        return _editor(console, code=None, values=values,
                       errors={_error_key(exc.field, keys): _explain(console, exc)}, status=exc.status)
    return redirect(f"/console/channel-codes/{code.id}", flash="code_saved")


@router.get("/console/channel-codes/{code_id}/edit")
def edit_code_page(code_id: int, console: ConsoleDep) -> Response:
    """The editor of one code (its kind, account and state are printed in its QR and stay)."""
    console.auth.require("acquisition", "write")
    code = service.get_code(console.db, code_id)
    return _editor(console, code=code, values=_code_values(console, code))


@router.post("/console/channel-codes/{code_id}")
def update_code(code_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Re-point a code: its printed QR stays the same (a WeCom code updates the same contact way)."""
    console.auth.require("acquisition", "write")
    code = service.get_code(console.db, code_id)
    values = _form_values(form)
    values.update(kind=code.kind, state=code.state, account_id=str(code.account_id or ""))
    keys: list[str] = []
    try:
        with console.db.begin_nested():
            members = _members(values, keys)
            changes = _code_changes(console, values)
            if code.kind == "link":
                changes["target_url"] = values["target_url"]
            if code.kind != "wecom" or changes["skip_verify"] == code.skip_verify:
                del changes["skip_verify"]  # unchanged: WeCom is not called for nothing
            old = [(m.staff_id, m.weight, m.daily_cap, m.hours, m.backup) for m in service.members_of(console.db, code)]
            new = [(m["staff_id"], m["weight"], m["daily_cap"], m["hours"], m["backup"]) for m in members]
            if old != new:
                changes["members"] = members
            service.update_code(console.db, code, changes=changes, actor=console.actor)
    except SiyuError as exc:
        console.db.expire(code)
        return _editor(console, code=code, values=values,
                       errors={_error_key(exc.field, keys): _explain(console, exc)}, status=exc.status)
    return redirect(f"/console/channel-codes/{code.id}", flash="code_saved")


# --- codes: one code --------------------------------------------------------------------------------


def chart_data(console: Console, series: service.Series) -> dict[str, Any]:
    """The code's chart: one bar per day for scans, adds and conversions."""
    return {"days": series.days, "series": [
        {"name": console.gettext("Scans"), "counts": series.scans},
        {"name": console.gettext("Adds"), "counts": series.adds},
        {"name": console.gettext("Conversions"), "counts": series.conversions},
    ]}


@router.get("/console/channel-codes/{code_id}")
def code_page(code_id: int, console: ConsoleDep, days: int = 30, cursor: str | None = None) -> Response:
    """One code: what it is, its downloads, scans, adds and conversions per day, its members and arrivals."""
    console.auth.require("acquisition", "read")
    code = service.get_code(console.db, code_id)
    days = days if days in (7, 30, 90) else 30
    series = service.daily_series(console.db, code, days=days)
    rows, next_cursor = service.list_arrivals(console.db, code, cursor=cursor, limit=ARRIVALS_PAGE)
    people = contacts.get_contacts(console.db, [a.contact_id for a in rows if a.contact_id is not None])
    staff = {s.id: s for s in staff_service.list_staff(console.db)}
    today = service.local_now(console.db).date()
    account = channels.get_account(console.db, code.account_id) if code.account_id else None
    tags = {t.id: t for t in tag_service.list_tags(console.db)}
    tz = _tz(console)
    return console.page(
        "acquisition/code.html", code=code, code_status=service.live_status(code), source=service.get_source(
            console.db, code.source_id), account=account, members=service.members_of(console.db, code),
        day_counts=service.day_counts(console.db, code, today), totals=service.totals(console.db, [code.id])[code.id],
        series=series, chart=chart_data(console, series), days=days,
        period={"scans": sum(series.scans), "adds": sum(series.adds), "conversions": sum(series.conversions)},
        active_days=[(d, s, a, c) for d, s, a, c in zip(series.days, series.scans, series.adds,
                                                        series.conversions, strict=True) if s or a or c][::-1],
        arrivals=rows, next_cursor=next_cursor, people=people, staff=staff, tags=[tags[t] for t in code.tag_ids
                                                                                   if t in tags],
        tz=tz, format_hours=format_hours, status_names=STATUS_NAMES, kind_names=CODE_KIND_NAMES,
        strategy_names=STRATEGY_NAMES, arrival_kind_names=ARRIVAL_KIND_NAMES, note_names=NOTE_NAMES,
        editable=_editable(console), poster_templates=posters.list_templates(console.db),
        # an expired code resumes only once its expiry is moved (in the editor)
        can_resume=code.expires_at is None or code.expires_at > clock.now(),
    )


@router.post("/console/channel-codes/{code_id}/{action}")
def act(code_id: int, action: str, console: ConsoleDep, form: FormDep) -> Response:
    """Pause, resume or expire a code."""
    console.auth.require("acquisition", "write")
    code = service.get_code(console.db, code_id)
    status = {"pause": "paused", "resume": "active", "expire": "expired"}.get(action)
    if status is None:
        raise Invalid("unknown action", field="action")
    service.set_status(console.db, code, status, actor=console.actor)
    return redirect(f"/console/channel-codes/{code.id}", flash=f"code_{status}")


