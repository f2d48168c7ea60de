"""Staff members who own contacts, owner assignment and handover (离职继承 / 在职转接).

Every owner change is a `contact.owner_changed {from, to}` event, made by guarded set-based UPDATEs
(`WHERE owner_id = <the owner we read>`), so a contact moved by someone else meanwhile is not reported
as moved by us. A staff member who still owns contacts can't be deactivated: hand them over first.

New contacts get `default_owner_id(session)`: the workspace's oldest active staff member. Channel codes
(acquisition) rotate new contacts across staff themselves and pass an explicit owner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact, Handover, StaffMember
from siyu.contacts.tags import CHUNK, MAX_BULK
from siyu.core.audit import Actor, record, snapshot
from siyu.core.errors import Conflict, Invalid, NotFound, TenancyViolation
from siyu.core.events import record_events
from siyu.core.pagination import page
from siyu.core.tenancy import MAX_ID, bound_workspace, get_scoped
from siyu.core.workspaces import membership

REASONS = ("leaving", "reassignment")
_WECOM_USERID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("staff are managed through a session bound to a workspace")
    return workspace_id


def _actor_label(actor: Actor | None) -> str:
    return actor.label if actor is not None else "system"


# --- staff members ----------------------------------------------------------------------------------


def list_staff(session: Session, *, active: bool | None = None) -> list[StaffMember]:
    """The workspace's staff by name; `active` filters."""
    stmt = select(StaffMember).order_by(StaffMember.name, StaffMember.id)
    if active is not None:
        stmt = stmt.where(StaffMember.active.is_(active))
    return list(session.execute(stmt).scalars())


def get_staff(session: Session, staff_id: Any) -> StaffMember:
    """One staff member of the bound workspace (404 for any other)."""
    return get_scoped(session, StaffMember, staff_id, what="staff member")


def staff_for_user(session: Session, user_id: int) -> StaffMember | None:
    """The staff member linked to a console user, if any (users with the staff role see their contacts)."""
    return session.execute(select(StaffMember).where(StaffMember.user_id == user_id)).scalar_one_or_none()


def owned_counts(session: Session) -> dict[int, int]:
    """How many contacts each staff member owns."""
    rows = session.execute(
        select(Contact.owner_id, func.count()).where(Contact.owner_id.is_not(None)).group_by(Contact.owner_id)
    ).all()
    return {int(owner or 0): int(n) for owner, n in rows}


def default_owner_id(session: Session) -> int | None:
    """The owner a new contact gets when none is given: the oldest active staff member (None: no staff)."""
    return session.execute(
        select(StaffMember.id).where(StaffMember.active.is_(True)).order_by(StaffMember.id).limit(1)
    ).scalar_one_or_none()


def _clean(session: Session, values: dict[str, Any], staff_id: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in values:
        name = values["name"].strip() if isinstance(values["name"], str) else ""
        if not name:
            raise Invalid("enter a name", field="name")
        if len(name) > 120:
            raise Invalid("a name has at most 120 characters", field="name")
        out["name"] = name
    if "active" in values:
        if not isinstance(values["active"], bool):
            raise Invalid("active is true or false", field="active")
        out["active"] = values["active"]
    if "user_id" in values:
        user_id = values["user_id"]
        if user_id is not None:
            if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= MAX_ID:
                raise Invalid("user_id is a user's id", field="user_id")
            if membership(session, _workspace(session), user_id) is None:
                raise Invalid("this user is not a member of the workspace", field="user_id")
            clash = session.execute(select(StaffMember.id).where(StaffMember.user_id == user_id)).scalar()
            if clash is not None and clash != staff_id:
                raise Conflict("this user is linked to another staff member already", field="user_id")
        out["user_id"] = user_id
    if "wecom_userid" in values:
        wecom = values["wecom_userid"]
        wecom = wecom.strip() if isinstance(wecom, str) else wecom
        if wecom == "":
            wecom = None
        if wecom is not None:
            if not isinstance(wecom, str) or not _WECOM_USERID.match(wecom):
                raise Invalid("a WeCom userid is 1 to 64 letters, digits or _ . @ -", field="wecom_userid")
            clash = session.execute(select(StaffMember.id).where(StaffMember.wecom_userid == wecom)).scalar()
            if clash is not None and clash != staff_id:
                raise Conflict("another staff member has this WeCom userid", field="wecom_userid")
        out["wecom_userid"] = wecom
    return out


def create_staff(
    session: Session, *, name: Any, user_id: Any = None, wecom_userid: Any = None, active: Any = True,
    actor: Actor,
) -> StaffMember:
    """A new staff member, optionally linked to a console user of the workspace and/or a WeCom userid."""
    workspace_id = _workspace(session)
    clean = _clean(session, {"name": name, "user_id": user_id, "wecom_userid": wecom_userid, "active": active},
                   None)
    staff = StaffMember(workspace_id=workspace_id, **clean)
    session.add(staff)
    session.flush()
    record(session, actor, workspace_id=workspace_id, action="staff.create", entity_type="staff_member",
           entity_id=staff.id, after=snapshot(staff))
    return staff


def update_staff(session: Session, staff: StaffMember, *, changes: dict[str, Any], actor: Actor) -> StaffMember:
    """Change a staff member's name, links or active flag; deactivating needs their contacts handed over."""
    unknown = set(changes) - {"name", "active", "user_id", "wecom_userid"}
    if unknown:
        field = sorted(unknown)[0]
        raise Invalid(f"unknown field {field!r}", field=field, code="unknown_field")
    clean = _clean(session, changes, staff.id)
    if clean.get("active") is False and staff.active:
        owned = owned_counts(session).get(staff.id, 0)
        if owned:
            raise Conflict(
                f"{staff.name} still owns {owned} contacts: hand them over to another staff member first",
                field="active", code="owns_contacts",
            )
    before = snapshot(staff)
    for key, value in clean.items():
        setattr(staff, key, value)
    session.flush()
    record(session, actor, workspace_id=staff.workspace_id, action="staff.update", entity_type="staff_member",
           entity_id=staff.id, before=before, after=snapshot(staff))
    return staff


# --- ownership --------------------------------------------------------------------------------------


def _contact_ids(values: Iterable[Any]) -> list[int]:
    out: list[int] = []
    seen: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
            raise Invalid("contact_ids holds ids (positive integers)", field="contact_ids")
        if value not in seen:
            seen.add(value)
            out.append(value)
    if len(out) > MAX_BULK:
        raise Invalid(f"at most {MAX_BULK} contacts at a time", field="contact_ids")
    return out


def _owners_of(session: Session, contact_ids: Sequence[int]) -> dict[int, int | None]:
    owners: dict[int, int | None] = {}
    for start in range(0, len(contact_ids), CHUNK):
        chunk = contact_ids[start : start + CHUNK]
        rows = session.execute(select(Contact.id, Contact.owner_id).where(Contact.id.in_(chunk))).all()
        owners.update({int(c): (int(o) if o is not None else None) for c, o in rows})
        missing = [c for c in chunk if c not in owners]
        if missing:
            raise NotFound(f"contact {missing[0]} not found", field="contact_ids")
    return owners


def _move(session: Session, contact_ids: Sequence[int], old: int | None, new: int) -> list[int]:
    """Set owner `new` on those of `contact_ids` still owned by `old`; the ids that moved."""
    moved: list[int] = []
    for start in range(0, len(contact_ids), CHUNK):
        chunk = contact_ids[start : start + CHUNK]
        guard = Contact.owner_id.is_(None) if old is None else Contact.owner_id == old
        stmt = (
            update(Contact)
            .where(Contact.id.in_(chunk), guard)
            .values(owner_id=new)
            .returning(Contact.id)
            .execution_options(synchronize_session=False)
        )
        moved.extend(int(i) for i in session.execute(stmt).scalars())
    return moved


def _owner_events(session: Session, moves: list[tuple[int, int | None]], new: int, extra: dict[str, Any]) -> None:
    if not moves:
        return
    result = record_events(
        session,
        [
            {"type": "contact.owner_changed", "contact_id": contact_id,
             "properties": {"from": old, "to": new, **extra}}
            for contact_id, old in moves
        ],
        source="contacts",
    )
    if result.errors:
        error = result.errors[0]
        raise Invalid(error.message, field=error.field, code=error.code)


def _active_staff(session: Session, staff_id: Any, field: str) -> StaffMember:
    try:
        staff = get_staff(session, staff_id)
    except NotFound:
        raise NotFound("staff member not found", field=field) from None
    if not staff.active:
        raise Invalid(f"{staff.name} is not active: choose an active staff member", field=field)
    return staff


def assign_owner(session: Session, contact_ids: Iterable[Any], staff_id: Any, *, actor: Actor | None) -> int:
    """Make a staff member the owner of contacts; the number whose owner changed."""
    ids = _contact_ids(contact_ids)
    if not ids:
        raise Invalid("choose at least one contact", field="contact_ids")
    staff = _active_staff(session, staff_id, "staff_id")
    owners = _owners_of(session, ids)
    by_old: dict[int | None, list[int]] = {}
    for contact_id in ids:
        if owners[contact_id] != staff.id:
            by_old.setdefault(owners[contact_id], []).append(contact_id)
    moves: list[tuple[int, int | None]] = []
    for old, group in by_old.items():
        moves.extend((c, old) for c in _move(session, group, old, staff.id))
    _owner_events(session, sorted(moves), staff.id, {"reason": "assigned"})
    if actor is not None:
        record(session, actor, workspace_id=staff.workspace_id, action="contact.assign_owner",
               entity_type="staff_member", entity_id=staff.id,
               after={"contact_ids": ids, "contacts": len(ids), "changed": len(moves)})
    return len(moves)


def handover(
    session: Session, *, from_staff_id: Any, to_staff_id: Any, contact_ids: Iterable[Any] | None = None,
    reason: str, actor: Actor | None,
) -> Handover:
    """Move all (or some) of one staff member's contacts to another, with a record.

    A `leaving` handover of all contacts also deactivates the staff member who leaves.
    """
    workspace_id = _workspace(session)
    if reason not in REASONS:
        raise Invalid("reason is leaving or reassignment", field="reason")
    try:
        source = get_staff(session, from_staff_id)
    except NotFound:
        raise NotFound("staff member not found", field="from_staff_id") from None
    target = _active_staff(session, to_staff_id, "to_staff_id")
    if source.id == target.id:
        raise Invalid("hand over to another staff member", field="to_staff_id")
    if contact_ids is None:
        ids = list(session.execute(
            select(Contact.id).where(Contact.owner_id == source.id).order_by(Contact.id)
        ).scalars())
        everything = True
    else:
        ids = _contact_ids(contact_ids)
        if not ids:
            raise Invalid("choose at least one contact, or leave contact_ids out for all", field="contact_ids")
        owners = _owners_of(session, ids)
        foreign = [c for c in ids if owners[c] != source.id]
        if foreign:
            raise Invalid(f"contact {foreign[0]} is not owned by {source.name}", field="contact_ids")
        everything = False
    moved = _move(session, ids, source.id, target.id)
    record_ = Handover(
        workspace_id=workspace_id, from_staff_id=source.id, to_staff_id=target.id, reason=reason,
        contact_ids=moved, contact_count=len(moved), actor=_actor_label(actor),
    )
    session.add(record_)
    session.flush()
    _owner_events(session, [(c, source.id) for c in moved], target.id,
                  {"reason": reason, "handover_id": record_.id})
    if reason == "leaving" and everything and source.active:
        before = snapshot(source)
        source.active = False
        session.flush()
        if actor is not None:
            record(session, actor, workspace_id=workspace_id, action="staff.update", entity_type="staff_member",
                   entity_id=source.id, before=before, after=snapshot(source))
    if actor is not None:
        record(session, actor, workspace_id=workspace_id, action="staff.handover", entity_type="handover",
               entity_id=record_.id, after={**snapshot(record_), "contact_ids": moved})
    return record_


def list_handovers(
    session: Session, *, staff_id: int | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[Handover], str | None]:
    """A page of handovers, newest first; `staff_id` keeps those from or to that staff member."""
    stmt = select(Handover)
    if staff_id is not None:
        stmt = stmt.where((Handover.from_staff_id == staff_id) | (Handover.to_staff_id == staff_id))
    return page(session, stmt, Handover.id, cursor=cursor, limit=limit)


def get_handover(session: Session, handover_id: Any) -> Handover:
    """One handover record of the bound workspace (404 for any other)."""
    return get_scoped(session, Handover, handover_id, what="handover")
