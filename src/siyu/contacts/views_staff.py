"""Console: staff members, handing their contacts over, and the handover history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, form_text, redirect
from siyu.contacts import staff as staff_service
from siyu.contacts.views import can_manage, require_manager
from siyu.contacts.views_tags import EXPLAINED, explain_here
from siyu.core import workspaces
from siyu.core.errors import SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

REASON_NAMES = {"leaving": N_("Leaving the company"), "reassignment": N_("Reassignment")}
FLASHES.update({
    "staff_created": N_("Staff member added."),
    "staff_saved": N_("Staff member saved."),
    "handover_done": N_("Contacts handed over."),
})
EXPLAINED.update({
    ("invalid", "user_id"): N_("Choose a member of this workspace."),
    ("conflict", "user_id"): N_("This user is linked to another staff member already."),
    ("invalid", "wecom_userid"): N_("A WeCom userid is 1 to 64 letters, digits or _ . @ -."),
    ("conflict", "wecom_userid"): N_("Another staff member has this WeCom userid."),
    ("owns_contacts", "active"): N_("This staff member still owns contacts: hand them over first."),
    ("invalid", "reason"): N_("Choose why the contacts move."),
    ("invalid", "to_staff_id"): N_("Choose another, active staff member to take the contacts."),
    ("not_found", "to_staff_id"): N_("Choose another, active staff member to take the contacts."),
    ("not_found", "from_staff_id"): N_("Choose whose contacts move."),
})



def _page(console: Console, *, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
          status: int = 200) -> Response:
    db = console.db
    handovers, _ = staff_service.list_handovers(db, limit=50)
    members = workspaces.list_members(db)
    staff = staff_service.list_staff(db)
    return console.page(
        "contacts/staff.html",
        status=status,
        staff=staff,
        staff_names={s.id: s.name for s in staff},
        counts=staff_service.owned_counts(db),
        members=members,
        user_names={u.id: u.name for _m, u in members},
        handovers=handovers,
        reason_names=REASON_NAMES,
        editable=can_manage(console),
        errors=errors or {},
        values=values or {},
    )


@router.get("/console/staff")
def staff_page(console: ConsoleDep) -> Response:
    """Staff members with the contacts each owns, the handover form and the history."""
    console.auth.require("contacts", "read")
    return _page(console)


@router.post("/console/staff")
def create_staff(console: ConsoleDep, form: FormDep) -> Response:
    """Add a staff member."""
    require_manager(console)
    values = {k: form_text(form, k) for k in ("name", "user_id", "wecom_userid")}
    try:
        with console.db.begin_nested():
            staff_service.create_staff(
                console.db, name=values["name"], wecom_userid=values["wecom_userid"] or None,
                user_id=int(values["user_id"]) if values["user_id"].isdigit() else None, actor=console.actor,
            )
    except SiyuError as exc:
        errors = {f"staff.{exc.field or '_form'}": explain_here(exc, console)}
        return _page(console, errors=errors, values=values, status=exc.status)
    return redirect("/console/staff", flash="staff_created")


@router.post("/console/staff/{staff_id}/active")
def toggle_active(staff_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Deactivate (once their contacts are handed over) or reactivate a staff member."""
    require_manager(console)
    member = staff_service.get_staff(console.db, staff_id)
    try:
        with console.db.begin_nested():
            staff_service.update_staff(console.db, member, changes={"active": not member.active},
                                       actor=console.actor)
    except SiyuError as exc:
        console.db.refresh(member)
        return _page(console, errors={f"active-{staff_id}": explain_here(exc, console)}, status=exc.status)
    return redirect("/console/staff", flash="staff_saved")


@router.post("/console/staff/handover")
def hand_over(console: ConsoleDep, form: FormDep) -> Response:
    """Move all of one staff member's contacts to another, with a record."""
    require_manager(console)
    values = {k: form_text(form, k) for k in ("from_staff_id", "to_staff_id", "reason")}
    try:
        with console.db.begin_nested():
            staff_service.handover(
                console.db, from_staff_id=values["from_staff_id"], to_staff_id=values["to_staff_id"],
                reason=values["reason"], actor=console.actor,
            )
    except SiyuError as exc:
        errors = {f"handover.{exc.field or '_form'}": explain_here(exc, console)}
        return _page(console, errors=errors, values=values, status=exc.status)
    return redirect("/console/staff", flash="handover_done")
