"""Console: group live codes (list, new, detail with joins, leaves and size per day) and customer groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from siyu.acquisition import group_codes, groups
from siyu.acquisition.models import Source
from siyu.channels import service as channels
from siyu.channels.wecom import service as wecom
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, explain, form_text, redirect
from siyu.core.errors import SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

STATUS_NAMES = {"active": N_("active"), "paused": N_("paused"), "expired": N_("expired"),
                "dismissed": N_("dismissed")}
FLASHES.update({
    "group_code_saved": N_("Group code saved."),
    "group_code_deleted": N_("Group code deleted."),
    "group_code_status": N_("Group code status changed."),
    "groups_imported": N_("Customer groups imported; their members follow in a moment."),
})
EXPLAINED: dict[tuple[str, str | None], str] = {
    ("invalid", "name"): N_("Enter a name of at most 120 characters."),
    ("conflict", "name"): N_("This name is taken already."),
    ("invalid", "state"): N_("Enter a state of 1 to 30 characters: it tells which placement people came from."),
    ("conflict", "state"): N_("Another group code uses this state."),
    ("invalid", "group_ids"): N_("Choose 1 to 5 active groups of this WeCom account."),
    ("not_found", "group_ids"): N_("Choose 1 to 5 active groups of this WeCom account."),
    ("not_found", "account_id"): N_("Choose one of your WeCom accounts."),
    ("not_found", "source_id"): N_("Choose one of your sources."),
    ("invalid", "room_base_name"): N_("Name the groups WeCom creates when all are full (at most 40 characters)."),
    ("invalid", "welcome"): N_("Write the welcome text (at most 4,000 characters)."),
}


def _explain(exc: SiyuError, console: Console) -> str:
    message = EXPLAINED.get((exc.code, exc.field))
    if message:
        return console.gettext(message)
    if exc.code.startswith("wecom_"):
        return console.gettext(N_("WeCom refused: %(reason)s")) % {"reason": exc.message}
    return explain(exc, console.locale)



@router.get("/console/group-codes")
def code_list(console: ConsoleDep) -> Response:
    """The group codes with what they brought."""
    console.auth.require("acquisition", "read")
    db = console.db
    codes = group_codes.list_group_codes(db)
    return console.page(
        "acquisition/group_codes.html", codes=codes, status_names=STATUS_NAMES,
        status_of=group_codes.effective_status, totals={c.id: groups.code_totals(db, c.id) for c in codes},
        group_counts={c.id: len(group_codes.way_chat_ids(db, c)) for c in codes},
        editable=console.can("acquisition", "write"),
    )


def _form(console: Console, *, values: dict[str, Any], errors: dict[str, str] | None = None,
          status: int = 200) -> Response:
    db = console.db
    return console.page(
        "acquisition/group_code_new.html", status=status, values=values, errors=errors or {},
        accounts=channels.list_accounts(db, kind="wecom"), groups=groups.list_groups(db, status="active"),
        sources=list(db.execute(select(Source).where(Source.archived.is_(False)).order_by(Source.name)).scalars()),
    )


@router.get("/console/group-codes/new")
def new_code(console: ConsoleDep) -> Response:
    """An empty group code form."""
    console.auth.require("acquisition", "write")
    return _form(console, values={"group_ids": [], "auto_create_room": False})


@router.post("/console/group-codes")
def create_code(console: ConsoleDep, form: FormDep) -> Response:
    """Create a group code; a refused field is shown next to its input."""
    console.auth.require("acquisition", "write")
    group_ids = [g for g in form.getlist("group_ids") if isinstance(g, str) and g.isdigit()]
    values: dict[str, Any] = {name: form_text(form, name) for name in (
        "name", "account_id", "state", "source_id", "room_base_name", "room_base_id", "welcome_text")}
    values["group_ids"], values["auto_create_room"] = group_ids, form_text(form, "auto_create_room") == "on"
    try:
        with console.db.begin_nested():
            code = group_codes.create_group_code(
                console.db, name=values["name"], account_id=values["account_id"] or None, state=values["state"],
                group_ids=[int(g) for g in group_ids], source_id=values["source_id"] or None,
                auto_create_room=values["auto_create_room"], room_base_name=values["room_base_name"],
                room_base_id=int(values["room_base_id"]) if values["room_base_id"].isdigit() else None,
                welcome={"text": values["welcome_text"]} if values["welcome_text"] else None, actor=console.actor)
    except SiyuError as exc:
        return _form(console, values=values, errors={exc.field or "_form": _explain(exc, console)}, status=exc.status)
    return redirect(f"/console/group-codes/{code.id}", flash="group_code_saved")


@router.get("/console/group-codes/{group_code_id}")
def code_detail(group_code_id: int, console: ConsoleDep) -> Response:
    """A code: its QR, its groups, and customers who joined and left per day with its groups' size."""
    console.auth.require("acquisition", "read")
    db = console.db
    code = group_codes.get_group_code(db, group_code_id)
    series = groups.daily_series(db, code_id=code.id, days=30)
    account = channels.get_account(db, code.account_id) if code.account_id else None
    return console.page(
        "acquisition/group_code_detail.html", code=code, account=account,
        code_status=group_codes.effective_status(code),
        status_names=STATUS_NAMES, listed=group_codes.code_groups(db, code), totals=groups.code_totals(db, code.id),
        series=series, full_at=group_codes.FULL_AT, editable=console.can("acquisition", "write"),
        charts=[("joins", N_("Customers who joined per day")), ("leaves", N_("Customers who left per day")),
                ("size", N_("Customers in its groups at each day's end"))],
    )


@router.post("/console/group-codes/{group_code_id}/status")
def code_status(group_code_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Pause, resume or expire a code."""
    console.auth.require("acquisition", "write")
    code = group_codes.get_group_code(console.db, group_code_id)
    group_codes.set_status(console.db, code, form_text(form, "status"), actor=console.actor)
    return redirect(f"/console/group-codes/{code.id}", flash="group_code_status")


@router.post("/console/group-codes/{group_code_id}/delete")
def code_delete(group_code_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a code and its WeCom join way."""
    console.auth.require("acquisition", "write")
    group_codes.delete_group_code(console.db, group_codes.get_group_code(console.db, group_code_id),
                                  actor=console.actor)
    return redirect("/console/group-codes", flash="group_code_deleted")


@router.get("/console/customer-groups")
def group_list(console: ConsoleDep) -> Response:
    """The WeCom customer groups with their members and customers."""
    console.auth.require("acquisition", "read")
    db = console.db
    return console.page(
        "acquisition/customer_groups.html", groups=groups.list_groups(db), status_names=STATUS_NAMES,
        accounts={a.id: a for a in channels.list_accounts(db, kind="wecom")},
        series=groups.daily_series(db, days=30), editable=console.can("acquisition", "write"),
    )


@router.post("/console/customer-groups/import")
def group_import(console: ConsoleDep, form: FormDep) -> Response:
    """Learn a WeCom account's existing customer groups."""
    console.auth.require("acquisition", "write")
    account = wecom.wecom_account(console.db, form_text(form, "account_id") or 0)
    groups.import_groups(console.db, account, actor=console.actor)
    return redirect("/console/customer-groups", flash="groups_imported")
