"""Channel live codes (渠道活码): one per placement, each carrying its state (the scene value the platform
hands back with the scan or the add), delivered as a WeCom contact way, an Official Account QR code
with a `scene_str`, or a tracked link `<public url>/c/<state>`.

Re-pointing a code (members, welcome, tags, target, verification) never changes the printed QR: a
WeCom code updates the same `config_id`. Pausing or expiring a code does not stop people arriving
through it; their arrival says the code was paused or expired (see `arrivals`).

WeCom refuses members who are not real-name verified (40098), have no customer-contact permission
(84074), are not activated (41054) or are outside the app's visibility (60011). The refusal names no
member, so the members without the permission are found through `get_follow_user_list`; a code of
one member blames that member. The blamed members keep the reason in `platform_error` and the
contact way is written without them (the others still take contacts).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.acquisition import rotation
from siyu.acquisition.models import CODE_KINDS, STRATEGIES, Arrival, ChannelCode, ChannelCodeStaff
from siyu.acquisition.sources import get_source
from siyu.channels.models import ChannelAccount
from siyu.channels.wechat_oa import service as oa
from siyu.channels.wecom import service as wecom
from siyu.contacts import staff as staff_service
from siyu.contacts import tags as tag_service
from siyu.core import audit, clock
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.tenancy import MAX_ID, bind_workspace, bound_workspace, get_scoped
from siyu.settings import get_settings

MAX_STATE = 30
STATE = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
STATE_BYTES = 9  # token_urlsafe(9): 12 characters
MAX_TAGS = 20
QR_IMAGE_MAX_BYTES = 2 * 1024 * 1024
# The errcodes WeCom answers when a member can't be on a contact way, and what each means.
MEMBER_ERRORS: dict[int, str] = {
    40098: "not real-name verified in WeCom",
    84074: "no customer-contact permission in WeCom",
    41054: "not activated in WeCom",
    60011: "not visible to the WeCom app",
}
NO_PERMISSION = 84074
SYSTEM = Actor(type="system", id=None, label="acquisition", via="worker")


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("channel codes are managed through a session bound to a workspace")
    return workspace_id


# --- reading ----------------------------------------------------------------------------------------


def list_codes(session: Session, *, source_id: int | None = None, status: str | None = None) -> list[ChannelCode]:
    """The workspace's codes, newest first; filtered by source or status."""
    stmt = select(ChannelCode).order_by(ChannelCode.id.desc())
    if source_id is not None:
        stmt = stmt.where(ChannelCode.source_id == source_id)
    if status is not None:
        stmt = stmt.where(ChannelCode.status == status)
    return list(session.execute(stmt).scalars())


def get_code(session: Session, code_id: Any) -> ChannelCode:
    """One code of the bound workspace (404 for any other)."""
    return get_scoped(session, ChannelCode, code_id, what="channel code")


def code_by_state(session: Session, state: str, *, kind: str | None = None) -> ChannelCode | None:
    """The bound workspace's code carrying this state (of this kind when given)."""
    if not state or len(state) > MAX_STATE:
        return None
    stmt = select(ChannelCode).where(ChannelCode.state == state)
    if kind is not None:
        stmt = stmt.where(ChannelCode.kind == kind)
    return session.execute(stmt).scalar_one_or_none()


def link_code(session: Session, state: str) -> ChannelCode | None:
    """The link code of a public `/c/<state>` path, in any workspace; the session is bound to its workspace."""
    if not STATE.match(state or ""):
        return None
    bind_workspace(session, None)
    code = session.execute(select(ChannelCode).where(ChannelCode.state == state, ChannelCode.kind == "link")
                           ).scalars().first()
    if code is not None:
        bind_workspace(session, code.workspace_id)
    return code


def members_of(session: Session, code: ChannelCode) -> list[ChannelCodeStaff]:
    """A code's members in rotation order."""
    return list(session.execute(select(ChannelCodeStaff).where(ChannelCodeStaff.code_id == code.id)
                                .order_by(ChannelCodeStaff.position, ChannelCodeStaff.id)).scalars())


def rotation_members(rows: Sequence[ChannelCodeStaff]) -> list[rotation.Member]:
    """The rotation engine's view of a code's members (those WeCom refused left out)."""
    return [rotation.Member(staff_id=r.staff_id, weight=r.weight, daily_cap=r.daily_cap, hours=tuple(r.hours or ()),
                            backup=r.backup, position=r.position) for r in rows if not r.platform_error]


def live_status(code: ChannelCode, now: datetime | None = None) -> str:
    """active, paused or expired, counting an `expires_at` that passed since the job last looked."""
    if code.status == "active" and code.expires_at is not None and code.expires_at <= (now or clock.now()):
        return "expired"
    return code.status


def public_link(state: str) -> str:
    """What a link code's QR encodes."""
    return f"{get_settings().public_url.rstrip('/')}/c/{state}"


# --- checking input ---------------------------------------------------------------------------------


def check_state(value: Any) -> str:
    """A state as the platforms accept it: 1 to 30 of A-Z a-z 0-9 _ -."""
    if not isinstance(value, str) or not value:
        raise Invalid("a state of 1 to 30 characters", field="state")
    if len(value) > MAX_STATE:
        raise Invalid(f"a state is at most {MAX_STATE} characters (WeCom's limit)", field="state",
                      code="state_too_long")
    if not STATE.match(value):
        raise Invalid("a state uses only letters, digits, _ and -", field="state")
    return value


def new_state() -> str:
    """A random state (12 characters)."""
    return secrets.token_urlsafe(STATE_BYTES)


def _name(value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > 120:
        raise Invalid("a name of 1 to 120 characters", field="name")
    return name


def _check_unique(session: Session, *, name: str | None, state: str | None, code_id: int | None) -> None:
    if name is not None:
        other = session.execute(select(ChannelCode.id).where(ChannelCode.name == name)).scalar_one_or_none()
        if other is not None and other != code_id:
            raise Conflict("another code has this name", field="name")
    if state is not None:
        other = session.execute(select(ChannelCode.id).where(ChannelCode.state == state)).scalar_one_or_none()
        if other is not None and other != code_id:
            raise Conflict("another code has this state", field="state")


def _check_link_state(session: Session, state: str) -> None:
    """A link's path is public, so its state is unique across workspaces (like a user name)."""
    workspace_id = _workspace(session)
    bind_workspace(session, None)
    try:
        taken = session.execute(select(ChannelCode.id).where(ChannelCode.state == state, ChannelCode.kind == "link",
                                                             ChannelCode.workspace_id != workspace_id)).first()
    finally:
        bind_workspace(session, workspace_id)
    if taken is not None:
        raise Conflict("this state is taken by another link; choose another", field="state")


def _url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 2000:
        raise Invalid("a target URL (http or https) of at most 2,000 characters", field="target_url")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("a target URL starts with http:// or https://", field="target_url")
    return value.strip()


def _tag_ids(session: Session, value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise Invalid(f"tag_ids is a list of at most {MAX_TAGS} tag ids", field="tag_ids")
    out: list[int] = []
    for i, tag_id in enumerate(value):
        if isinstance(tag_id, bool) or not isinstance(tag_id, int) or not 0 < tag_id <= MAX_ID:
            raise Invalid("a tag id", field=f"tag_ids.{i}")
        try:
            tag_service.get_tag(session, tag_id)
        except NotFound:
            raise NotFound("tag not found", field=f"tag_ids.{i}") from None
        if tag_id not in out:
            out.append(tag_id)
    return out


def _welcome(value: Any) -> dict[str, Any]:
    if value is None or value == {}:
        return {}
    from siyu.messaging.welcome import check_welcome

    try:
        return check_welcome(value)
    except Invalid as exc:
        raise Invalid(exc.message, field=f"welcome.{exc.field}" if exc.field else "welcome") from None


def _expires(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid("expires_at is a date and time with its timezone", field="expires_at")
    return value


@dataclass(frozen=True)
class MemberInput:
    """One member of a code as a person gave it, checked."""

    staff_id: int
    weight: int
    daily_cap: int | None
    hours: list[dict[str, Any]]
    backup: bool
    wecom_userid: str | None
    name: str


def clean_members(session: Session, value: Any, *, kind: str) -> list[MemberInput]:
    """A code's members checked: the rotation's rules (`rotation.validate_members`: weight, cap, hours,
    backup, each staff member once), then the staff themselves: existing, active, with a WeCom userid on
    a WeCom code."""
    out: list[MemberInput] = []
    for i, member in enumerate(rotation.validate_members(value)):
        where = f"members.{i}.staff_id"
        try:
            staff = staff_service.get_staff(session, member["staff_id"])
        except NotFound:
            raise NotFound("staff member not found", field=where) from None
        if not staff.active:
            raise Invalid(f"{staff.name} is not active", field=where)
        if kind == "wecom" and not staff.wecom_userid:
            raise Invalid(f"{staff.name} has no WeCom userid: set it on the staff page first", field=where)
        out.append(MemberInput(staff.id, member["weight"], member["daily_cap"], member["hours"], member["backup"],
                               staff.wecom_userid, staff.name))
    return out


# --- WeCom ------------------------------------------------------------------------------------------


def read_qr(url: str) -> str | None:
    """What a QR image at `url` encodes (None when it can't be fetched or read)."""
    import zxingcpp
    from PIL import Image

    try:
        with httpx.stream("GET", url, timeout=10.0, follow_redirects=True) as response:
            if response.status_code != 200:
                return None
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > QR_IMAGE_MAX_BYTES:
                    return None
        image = Image.open(BytesIO(data))
        image.load()
        found = zxingcpp.read_barcodes(image)
    except (httpx.HTTPError, OSError, ValueError):
        return None
    return str(found[0].text) if found else None


def userids(session: Session, staff_ids: Sequence[int]) -> dict[int, str]:
    """The WeCom userids of staff members (those who have one)."""
    out: dict[int, str] = {}
    for staff_id in staff_ids:
        staff = staff_service.get_staff(session, staff_id)
        if staff.wecom_userid:
            out[staff.id] = staff.wecom_userid
    return out


def _errcode(exc: wecom.PlatformRefused) -> int | None:
    code = exc.code.removeprefix("wecom_")
    return int(code) if code.lstrip("-").isdigit() else None


def _blame(session: Session, account: ChannelAccount, users: list[str], errcode: int) -> dict[str, str]:
    """The members a per-member refusal was about, with the reason (empty when it can't be told)."""
    reason = MEMBER_ERRORS[errcode]
    if len(users) == 1:
        return {users[0]: f"{errcode}: {reason}"}
    try:
        allowed = set(wecom.follow_users(session, account))
    except wecom.PlatformRefused:
        return {}
    return {u: f"{NO_PERMISSION}: {MEMBER_ERRORS[NO_PERMISSION]}" for u in users if u not in allowed}


def write_contact_way(session: Session, code: ChannelCode, account: ChannelAccount, users: list[str], *,
                      create: bool, multi: bool, actor: Actor) -> dict[str, str]:
    """Create or update the code's contact way with these members, dropping any WeCom refuses; the refused
    members and their reasons. Raises Invalid when no member is left, PlatformRefused for anything else."""
    refused: dict[str, str] = {}
    left = list(users)
    while True:
        try:
            if create:
                code.config_id, code.qr_url = wecom.create_contact_way(
                    session, account, users=left, way_type="multi" if multi else "single", state=code.state,
                    remark=code.name[:30], skip_verify=code.skip_verify, actor=actor)
            else:
                wecom.update_contact_way(session, account, code.config_id or "", users=left,
                                         skip_verify=code.skip_verify, actor=actor)
            return refused
        except wecom.PlatformRefused as exc:
            errcode = _errcode(exc)
            if errcode not in MEMBER_ERRORS:
                raise
            blamed = {u: r for u, r in _blame(session, account, left, errcode).items() if u in left}
            if not blamed:
                raise
            refused.update(blamed)
            left = [u for u in left if u not in blamed]
            if not left or (not multi and create and len(left) != 1):
                reasons = "; ".join(f"{u}: {r}" for u, r in refused.items())
                raise Invalid(f"WeCom refused every member ({reasons})", field="members",
                              code="members_refused") from exc


def _set_platform_errors(session: Session, code: ChannelCode, refused: Mapping[str, str]) -> None:
    rows = members_of(session, code)
    ids = userids(session, [r.staff_id for r in rows])
    for row in rows:
        userid = ids.get(row.staff_id)
        if userid is not None and userid in refused:
            row.platform_error = refused[userid][:500]
    session.flush()


def wecom_users_now(session: Session, code: ChannelCode, *, now: datetime | None = None) -> list[str]:
    """The userids the code's contact way should list right now (eligible members; every member whose
    WeCom accepted them when none is eligible, so a new config is never empty)."""
    rows = members_of(session, code)
    ids = userids(session, [r.staff_id for r in rows])
    from siyu.acquisition.arrivals import day_counts, local_now

    at = local_now(session, now)
    chosen = rotation.eligible(rotation_members(rows), day_counts(session, code, at.date()), at)
    if not chosen:
        chosen = [m for m in rotation_members(rows) if not m.backup] or rotation_members(rows)
    return [ids[m.staff_id] for m in chosen if m.staff_id in ids]


def _provision_wecom(session: Session, code: ChannelCode, account: ChannelAccount, *, create: bool,
                     actor: Actor) -> None:
    rows = members_of(session, code)
    if not rows:
        raise Invalid("a WeCom code has at least one member", field="members")
    multi = len(rows) > 1
    users = wecom_users_now(session, code)
    refused = write_contact_way(session, code, account, users, create=create, multi=multi, actor=actor)
    _set_platform_errors(session, code, refused)
    code.synced_userids = sorted(u for u in users if u not in refused)
    code.sync_error = None
    if create and code.qr_url:
        code.qr_content = read_qr(code.qr_url)
        if code.qr_content is None:
            code.sync_error = "the QR image WeCom gave could not be read; its qr_url still works"


# --- writing ----------------------------------------------------------------------------------------


def _account(session: Session, kind: str, account_id: Any) -> ChannelAccount | None:
    if kind == "link":
        if account_id is not None:
            raise Invalid("a link code has no account", field="account_id")
        return None
    if account_id is None:
        raise Invalid("choose the account the code belongs to", field="account_id")
    try:
        return wecom.wecom_account(session, account_id) if kind == "wecom" else oa.oa_account(session, account_id)
    except NotFound:
        raise NotFound(f"no such {'WeCom' if kind == 'wecom' else 'Official Account'} account",
                       field="account_id") from None


def _replace_members(session: Session, code: ChannelCode, members: Sequence[MemberInput]) -> None:
    old = {r.staff_id: r.platform_error for r in members_of(session, code)}
    session.execute(delete(ChannelCodeStaff).where(ChannelCodeStaff.code_id == code.id))
    # Positions 1, 2, …: the round robin's cursor 0 means nobody chosen yet, so a fresh code starts at
    # the first member.
    for position, m in enumerate(members, start=1):
        session.add(ChannelCodeStaff(workspace_id=code.workspace_id, code_id=code.id, staff_id=m.staff_id,
                                     weight=m.weight, daily_cap=m.daily_cap, hours=m.hours, backup=m.backup,
                                     position=position, platform_error=None if code.kind == "wecom"
                                     else old.get(m.staff_id)))
    session.flush()


def shown(session: Session, code: ChannelCode) -> dict[str, Any]:
    """A code with its members, as the audit log keeps it."""
    return {**audit.snapshot(code), "members": [
        {"staff_id": r.staff_id, "weight": r.weight, "daily_cap": r.daily_cap, "hours": r.hours,
         "backup": r.backup} for r in members_of(session, code)]}


def create_code(
    session: Session, *, name: Any, source_id: Any, kind: Any, account_id: Any = None, state: Any = None,
    members: Any = None, rotation_strategy: Any = "round_robin", welcome: Any = None, tag_ids: Any = None,
    target_url: Any = None, expires_at: Any = None, skip_verify: Any = True, actor: Actor,
) -> ChannelCode:
    """A new code of a source; on WeCom and the Official Account its QR is made on the platform now."""
    workspace_id = _workspace(session)
    if kind not in CODE_KINDS:
        raise Invalid(f"kind is one of {', '.join(CODE_KINDS)}", field="kind")
    clean_name = _name(name)
    clean_state = check_state(state) if state not in (None, "") else new_state()
    try:
        source = get_source(session, source_id)
    except NotFound:
        raise NotFound("source not found", field="source_id") from None
    if source.archived:
        raise Invalid("the source is archived; restore it first", field="source_id")
    account = _account(session, kind, account_id)
    if rotation_strategy not in STRATEGIES:
        raise Invalid(f"rotation is one of {', '.join(STRATEGIES)}", field="rotation")
    if not isinstance(skip_verify, bool):
        raise Invalid("skip_verify is true or false", field="skip_verify")
    clean_members_ = clean_members(session, members, kind=kind)
    if kind == "wecom" and not clean_members_:
        raise Invalid("a WeCom code has at least one member", field="members")
    url = None
    if kind == "link":
        url = _url(target_url)
        _check_link_state(session, clean_state)
    elif target_url not in (None, ""):
        raise Invalid("only link codes have a target URL", field="target_url")
    code = ChannelCode(workspace_id=workspace_id, name=clean_name, source_id=source.id, kind=kind,
                       account_id=account.id if account is not None else None, state=clean_state, status="active",
                       expires_at=_expires(expires_at), target_url=url, skip_verify=skip_verify,
                       welcome=_welcome(welcome), tag_ids=_tag_ids(session, tag_ids), rotation=rotation_strategy,
                       created_by=actor.label[:200])
    _check_unique(session, name=clean_name, state=clean_state, code_id=None)
    session.add(code)
    session.flush()
    _replace_members(session, code, clean_members_)
    if kind == "wecom" and account is not None:
        _provision_wecom(session, code, account, create=True, actor=actor)
    elif kind == "wechat_oa" and account is not None:
        made = oa.create_qrcode(session, account, scene=clean_state, permanent=True, actor=actor)
        code.qr_content = str(made.get("url") or "") or None
        code.qr_url = str(made.get("image_url") or "") or None
        code.config_id = str(made.get("ticket") or "")[:64] or None
    else:
        code.qr_content = public_link(clean_state)
    session.flush()
    from siyu.acquisition.tasks import schedule_tick

    schedule_tick(session)
    audit.record(session, actor, workspace_id=workspace_id, action="acquisition.code.create",
                 entity_type="channel_code", entity_id=code.id, before=None, after=shown(session, code))
    return code


EDITABLE = ("name", "members", "rotation", "welcome", "tag_ids", "target_url", "expires_at", "skip_verify",
            "source_id")


def update_code(session: Session, code: ChannelCode, *, changes: Mapping[str, Any], actor: Actor) -> ChannelCode:
    """Re-point a code without changing its printed QR: members, rotation, welcome, tags, target, expiry,
    verification, source. A WeCom code updates the same contact way."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        field = unknown[0]
        if field in ("state", "kind", "account_id"):
            raise Invalid(f"a code's {field} is printed in its QR and can't change; make a new code", field=field)
        raise Invalid(f"unknown field {field!r}", field=field, code="unknown_field")
    before = shown(session, code)
    if "name" in changes:
        name = _name(changes["name"])
        _check_unique(session, name=name, state=None, code_id=code.id)
        code.name = name
    if "source_id" in changes:
        try:
            source = get_source(session, changes["source_id"])
        except NotFound:
            raise NotFound("source not found", field="source_id") from None
        code.source_id = source.id
    if "rotation" in changes:
        if changes["rotation"] not in STRATEGIES:
            raise Invalid(f"rotation is one of {', '.join(STRATEGIES)}", field="rotation")
        code.rotation = str(changes["rotation"])
    if "welcome" in changes:
        code.welcome = _welcome(changes["welcome"])
    if "tag_ids" in changes:
        code.tag_ids = _tag_ids(session, changes["tag_ids"])
    if "target_url" in changes:
        if code.kind != "link":
            raise Invalid("only link codes have a target URL", field="target_url")
        code.target_url = _url(changes["target_url"])
    if "expires_at" in changes:
        code.expires_at = _expires(changes["expires_at"])
        if code.status == "expired" and (code.expires_at is None or code.expires_at > clock.now()):
            code.status = "active"
    if "skip_verify" in changes:
        if not isinstance(changes["skip_verify"], bool):
            raise Invalid("skip_verify is true or false", field="skip_verify")
        code.skip_verify = changes["skip_verify"]
    platform = code.kind == "wecom" and bool({"members", "skip_verify"} & set(changes))
    if "members" in changes:
        members = clean_members(session, changes["members"], kind=code.kind)
        if code.kind == "wecom":
            if not members:
                raise Invalid("a WeCom code has at least one member", field="members")
            if len(before["members"]) == 1 and len(members) > 1:
                raise Invalid("this WeCom code was made for one member and WeCom can't turn it into a "
                              "multi-member code; make a new code for several members", field="members",
                              code="single_member_code")
        _replace_members(session, code, members)
    if platform and code.account_id is not None and code.config_id:
        account = wecom.wecom_account(session, code.account_id)
        _provision_wecom(session, code, account, create=False, actor=actor)
    code.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, workspace_id=code.workspace_id, action="acquisition.code.update",
                 entity_type="channel_code", entity_id=code.id, before=before, after=shown(session, code))
    return code


def set_status(session: Session, code: ChannelCode, status: str, *, actor: Actor | None) -> ChannelCode:
    """Pause, resume or expire a code (people still arrive through a paused or expired code)."""
    if status not in ("active", "paused", "expired"):
        raise Invalid("status is active, paused or expired", field="status")
    if status == "active" and code.expires_at is not None and code.expires_at <= clock.now():
        raise Invalid("the code's expiry has passed: move expires_at first", field="expires_at",
                      code="code_expired")
    before = {"status": code.status}
    if code.status != status:
        code.status, code.updated_at = status, clock.now()
        session.flush()
        if actor is not None:
            audit.record(session, actor, workspace_id=code.workspace_id, action=f"acquisition.code.{status}",
                         entity_type="channel_code", entity_id=code.id, before=before, after={"status": status})
    return code


def delete_code(session: Session, code: ChannelCode, *, actor: Actor) -> None:
    """Delete a code without arrivals (one with arrivals is expired instead, keeping its history)."""
    has = session.execute(select(func.count()).select_from(Arrival).where(Arrival.code_id == code.id)).scalar_one()
    if has:
        raise Conflict("people arrived through this code; expire it instead to keep their history",
                       field="code_id")
    before = shown(session, code)
    if code.kind == "wecom" and code.account_id is not None and code.config_id:
        wecom.delete_contact_way(session, wecom.wecom_account(session, code.account_id), code.config_id,
                                 actor=actor)
    audit.record(session, actor, workspace_id=code.workspace_id, action="acquisition.code.delete",
                 entity_type="channel_code", entity_id=code.id, before=before, after=None)
    session.delete(code)
    session.flush()


def sync_wecom_members(session: Session, code: ChannelCode, *, now: datetime | None = None) -> bool:
    """Write the eligible members to the code's contact way when they differ from the last written list;
    True when WeCom was called. Nobody eligible: the list stays as it is."""
    if code.kind != "wecom" or code.account_id is None or not code.config_id:
        return False
    rows = members_of(session, code)
    ids = userids(session, [r.staff_id for r in rows])
    from siyu.acquisition.arrivals import day_counts, local_now

    at = local_now(session, now)
    chosen = rotation.eligible(rotation_members(rows), day_counts(session, code, at.date()), at)
    wanted = sorted(ids[m.staff_id] for m in chosen if m.staff_id in ids)
    if not wanted or wanted == sorted(code.synced_userids or []):
        return False
    account = session.get(ChannelAccount, code.account_id)
    if account is None:
        return False
    try:
        refused = write_contact_way(session, code, account, wanted, create=False,
                                    multi=len(rows) > 1, actor=SYSTEM)
    except Invalid as exc:
        code.sync_error = exc.message[:2000]
        return True
    _set_platform_errors(session, code, refused)
    code.synced_userids = [u for u in wanted if u not in refused]
    code.sync_error = None
    return True

