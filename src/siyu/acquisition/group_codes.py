"""Group live codes (群活码): one fixed QR code that brings people into the customer group that still has
room, built on WeCom's join way (「加入群聊」, up to 5 groups per config).

A group takes people through the QR code until it has 200 members (WeCom's limit for joining by
scanning; a customer group holds 500, the rest by invitation). A full group is taken out of the join
way's list and the next group in the code's order fills. When every listed group is full, WeCom itself
creates the next one if `auto_create_room` is on (named `room_base_name` + number); the new group shows
up through its callbacks and members' `state` and joins the code's list here.

Pausing or expiring a code keeps its WeCom config (deleting it would kill the printed QR for good):
people who scan still land, their join records the code's status (`code_status` on the event), and
WeCom stops opening new groups for it. Deleting a code deletes the config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.acquisition import groups_wecom
from siyu.acquisition.group_models import GROUP_CODE_STATUSES, CustomerGroup, GroupCode, GroupCodeChat
from siyu.acquisition.models import Source
from siyu.channels import service as channels
from siyu.channels.base import ChannelError
from siyu.channels.models import ChannelAccount
from siyu.channels.wecom import service as wecom
from siyu.core import audit, clock, jobs
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.tenancy import bound_workspace, get_scoped, parse_id

FULL_AT = 200
SYNC_WAY = "acquisition.group_code_sync"
EDITABLE = ("name", "group_ids", "source_id", "auto_create_room", "room_base_name", "room_base_id", "welcome",
            "expires_at", "remark")


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("group codes work through a session bound to a workspace")
    return workspace_id


def list_group_codes(session: Session) -> list[GroupCode]:
    """The workspace's group codes, newest first."""
    return list(session.execute(select(GroupCode).order_by(GroupCode.id.desc())).scalars())


def get_group_code(session: Session, code_id: Any) -> GroupCode:
    """One group code of the bound workspace (404 for any other)."""
    return get_scoped(session, GroupCode, code_id, what="group code")


def code_by_state(session: Session, state: str) -> GroupCode | None:
    """The code whose join way carries this state."""
    return session.execute(select(GroupCode).where(GroupCode.state == state)).scalar_one_or_none()


def code_groups(session: Session, code: GroupCode) -> list[tuple[GroupCodeChat, CustomerGroup]]:
    """The code's groups in order: those still in WeCom's list first, then the full or removed ones."""
    rows = session.execute(select(GroupCodeChat, CustomerGroup).join(
        CustomerGroup, CustomerGroup.id == GroupCodeChat.group_id).where(GroupCodeChat.code_id == code.id)
        .order_by(GroupCodeChat.in_way.desc(), GroupCodeChat.position, GroupCodeChat.id)).all()
    return [(link, group) for link, group in rows]


def codes_of_group(session: Session, group: CustomerGroup) -> list[GroupCode]:
    """The codes listing a group."""
    return list(session.execute(select(GroupCode).join(GroupCodeChat, GroupCodeChat.code_id == GroupCode.id)
                                .where(GroupCodeChat.group_id == group.id)).scalars())


def effective_status(code: GroupCode) -> str:
    """The code's status, `expired` once its end has passed."""
    if code.status == "active" and code.expires_at is not None and code.expires_at <= clock.now():
        return "expired"
    return code.status


def _name(session: Session, name: str, code_id: int | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("a name of 1 to 120 characters", field="name")
    other = session.execute(select(GroupCode.id).where(GroupCode.name == name)).scalar_one_or_none()
    if other is not None and other != code_id:
        raise Conflict("another group code has this name", field="name")
    return name


def _state(session: Session, state: str) -> str:
    state = groups_wecom.check_state(state)
    if session.execute(select(GroupCode.id).where(GroupCode.state == state)).scalar_one_or_none() is not None:
        raise Conflict("another group code uses this state", field="state")
    return state


def _account(session: Session, account_id: Any) -> ChannelAccount:
    try:
        return wecom.wecom_account(session, account_id)
    except NotFound as exc:
        raise NotFound("no such WeCom account", field="account_id") from exc


def _source(session: Session, source_id: Any) -> int | None:
    if source_id in (None, ""):
        return None
    try:
        return get_scoped(session, Source, source_id, what="source").id
    except NotFound as exc:
        raise NotFound("no such source", field="source_id") from exc


def _groups(session: Session, account: ChannelAccount, group_ids: Sequence[Any]) -> list[CustomerGroup]:
    ids = list(dict.fromkeys(parse_id(g, "group") for g in group_ids or []))
    if not 1 <= len(ids) <= groups_wecom.MAX_CHATS:
        raise Invalid(f"choose 1 to {groups_wecom.MAX_CHATS} groups", field="group_ids")
    found = []
    for group_id in ids:
        try:
            group = get_scoped(session, CustomerGroup, group_id, what="group")
        except NotFound as exc:
            raise NotFound("no such group", field="group_ids") from exc
        if group.account_id != account.id:
            raise Invalid("every group belongs to the code's WeCom account", field="group_ids")
        if group.status != "active":
            raise Invalid(f"the group {group.name or group.chat_id} was dismissed", field="group_ids")
        found.append(group)
    return found


def _expires(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid("an end time with its timezone", field="expires_at")
    return value


def _welcome(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid("the welcome is {text, url?, title?}", field="welcome")
    content = {k: str(value[k]).strip() for k in ("text", "url", "title") if value.get(k)}
    if content:
        groups_wecom.welcome_body(content)
    return content


def _shown(code: GroupCode, chat_ids: Sequence[str] = ()) -> dict[str, Any]:
    return {"name": code.name, "account_id": code.account_id, "source_id": code.source_id, "state": code.state,
            "status": code.status, "config_id": code.config_id, "auto_create_room": code.auto_create_room,
            "room_base_name": code.room_base_name, "room_base_id": code.room_base_id, "welcome": dict(code.welcome),
            "expires_at": code.expires_at.isoformat() if code.expires_at else None, "chat_ids": list(chat_ids)}


def way_chat_ids(session: Session, code: GroupCode) -> list[str]:
    """The chats WeCom's list should hold now: those in the way, in order, at most 5."""
    return [link.chat_id for link, _ in code_groups(session, code) if link.in_way][:groups_wecom.MAX_CHATS]


def _way(session: Session, code: GroupCode, chat_ids: Sequence[str]) -> dict[str, Any]:
    return {"chat_ids": list(chat_ids), "state": code.state, "remark": code.name[:groups_wecom.MAX_REMARK],
            "auto_create_room": code.auto_create_room and effective_status(code) == "active",
            "room_base_name": code.room_base_name, "room_base_id": code.room_base_id}


def _set_groups(session: Session, code: GroupCode, groups: Sequence[CustomerGroup]) -> None:
    links = {link.group_id: link for link, _ in code_groups(session, code)}
    wanted = {g.id for g in groups}
    for link in links.values():
        if link.group_id not in wanted:
            link.in_way = False
    for position, group in enumerate(groups):
        found = links.get(group.id)
        if found is None:
            session.add(GroupCodeChat(code_id=code.id, group_id=group.id, chat_id=group.chat_id, position=position,
                                      in_way=True))
        else:
            found.position, found.in_way = position, True
    session.flush()


def create_group_code(
    session: Session, *, name: str, account_id: Any, state: str, group_ids: Sequence[Any], source_id: Any = None,
    auto_create_room: bool = False, room_base_name: str = "", room_base_id: int | None = None,
    welcome: Mapping[str, Any] | None = None, expires_at: datetime | None = None, actor: Actor,
) -> GroupCode:
    """A group code: its WeCom join way created (QR kept), its groups listed, its welcome template saved."""
    name = _name(session, name, None)
    state = _state(session, state)
    account = _account(session, account_id)
    source = _source(session, source_id)
    groups = _groups(session, account, group_ids)
    content = _welcome(welcome)
    expiry = _expires(expires_at)
    code = GroupCode(name=name, account_id=account.id, source_id=source, state=state, status="active",
                     expires_at=expiry, auto_create_room=bool(auto_create_room),
                     room_base_name=(room_base_name or "").strip(), room_base_id=room_base_id, welcome=content,
                     created_by=actor.label[:200])
    chat_ids = [g.chat_id for g in groups]
    config_id = groups_wecom.add_join_way(session, account, **_way(session, code, chat_ids))
    way = groups_wecom.get_join_way(session, account, config_id)
    code.config_id, code.qr_url = config_id, str(way.get("qr_code") or "") or None
    code.qr_content = code.qr_url
    if content:
        code.welcome_template_id = groups_wecom.save_welcome_template(session, account, content, template_id=None)
    session.add(code)
    session.flush()
    _set_groups(session, code, groups)
    audit.record(session, actor, workspace_id=code.workspace_id, action="group_code.create", entity_type="group_code",
                 entity_id=code.id, before=None, after=_shown(code, chat_ids))
    return code


def update_group_code(session: Session, code: GroupCode, *, changes: Mapping[str, Any], actor: Actor) -> GroupCode:
    """Change a code's name, groups, source, auto-creation, welcome or end; WeCom's config is rewritten."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise Invalid(f"{sorted(unknown)[0]} can't be changed", field=sorted(unknown)[0])
    account = _account(session, code.account_id)
    before = _shown(code, way_chat_ids(session, code))
    if "name" in changes:
        code.name = _name(session, str(changes["name"]), code.id)
    if "source_id" in changes:
        code.source_id = _source(session, changes["source_id"])
    if "auto_create_room" in changes:
        code.auto_create_room = bool(changes["auto_create_room"])
    if "room_base_name" in changes:
        code.room_base_name = str(changes["room_base_name"] or "").strip()
    if "room_base_id" in changes:
        code.room_base_id = changes["room_base_id"]
    if "expires_at" in changes:
        code.expires_at = _expires(changes["expires_at"])
    groups = _groups(session, account, changes["group_ids"]) if "group_ids" in changes else None
    chat_ids = [g.chat_id for g in groups] if groups is not None else way_chat_ids(session, code)
    if code.config_id:
        groups_wecom.update_join_way(session, account, code.config_id, **_way(session, code, chat_ids))
    if "welcome" in changes:
        content = _welcome(changes["welcome"])
        if content:
            code.welcome_template_id = groups_wecom.save_welcome_template(
                session, account, content, template_id=code.welcome_template_id)
        elif code.welcome_template_id:
            groups_wecom.delete_welcome_template(session, account, code.welcome_template_id)
            code.welcome_template_id = None
        code.welcome = content
    if groups is not None:
        _set_groups(session, code, groups)
    code.updated_at, code.sync_error = clock.now(), None
    session.flush()
    audit.record(session, actor, workspace_id=code.workspace_id, action="group_code.update", entity_type="group_code",
                 entity_id=code.id, before=before, after=_shown(code, chat_ids))
    return code


def set_status(session: Session, code: GroupCode, status: str, *, actor: Actor) -> GroupCode:
    """Pause, resume or expire a code; WeCom opens new groups for active codes only."""
    if status not in GROUP_CODE_STATUSES:
        raise Invalid(f"status is one of {', '.join(GROUP_CODE_STATUSES)}", field="status")
    if status == "active" and code.expires_at is not None and code.expires_at <= clock.now():
        raise Invalid("the code's end has passed: move it first", field="status")
    before = _shown(code)
    code.status = status
    account = _account(session, code.account_id)
    chat_ids = way_chat_ids(session, code)
    if code.config_id and chat_ids:
        groups_wecom.update_join_way(session, account, code.config_id, **_way(session, code, chat_ids))
    code.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, workspace_id=code.workspace_id, action="group_code.status", entity_type="group_code",
                 entity_id=code.id, before=before, after=_shown(code))
    return code


def delete_group_code(session: Session, code: GroupCode, *, actor: Actor) -> None:
    """Delete a code and its WeCom config (the printed QR stops working); members' history stays."""
    before = _shown(code, way_chat_ids(session, code))
    account = session.get(ChannelAccount, code.account_id) if code.account_id else None
    if account is not None and code.config_id:
        groups_wecom.del_join_way(session, account, code.config_id)
    if account is not None and code.welcome_template_id:
        groups_wecom.delete_welcome_template(session, account, code.welcome_template_id)
    audit.record(session, actor, workspace_id=code.workspace_id, action="group_code.delete", entity_type="group_code",
                 entity_id=code.id, before=before, after=None)
    session.delete(code)
    session.flush()


# --- full groups, new groups ------------------------------------------------------------------------


def attach_group(session: Session, code: GroupCode, group: CustomerGroup) -> bool:
    """List a group WeCom created for the code (its members came with the code's state); True when new."""
    exists = session.execute(select(GroupCodeChat.id).where(GroupCodeChat.code_id == code.id,
                                                            GroupCodeChat.group_id == group.id)).first()
    if exists is not None:
        return False
    last = session.execute(select(func.max(GroupCodeChat.position)).where(GroupCodeChat.code_id == code.id)).scalar()
    session.add(GroupCodeChat(code_id=code.id, group_id=group.id, chat_id=group.chat_id,
                              position=(last or 0) + 1, in_way=group.status == "active"))
    session.flush()
    return True


def refresh_way(session: Session, code: GroupCode) -> bool:
    """Take full or dismissed groups out of the code's list while another still has room (WeCom needs
    one group at least, and with every group full it opens the next itself); queue the rewrite of
    WeCom's list when it changed. True when it did."""
    before = way_chat_ids(session, code)
    rows = code_groups(session, code)
    now = clock.now()
    for link, group in rows:
        full = group.member_count >= FULL_AT
        if full and link.full_at is None:
            link.full_at = now
        if group.status != "active":
            link.in_way = False
    open_rows = [(link, group) for link, group in rows if link.in_way and group.status == "active"]
    if any(group.member_count < FULL_AT for _, group in open_rows):
        for link, group in open_rows:
            if group.member_count >= FULL_AT:
                link.in_way = False
    session.flush()
    after = way_chat_ids(session, code)
    if after == before or not after or not code.config_id:
        if not after:
            code.sync_error = "every group of this code is full or dismissed"
        return False
    digest = hashlib.sha256(",".join(after).encode()).hexdigest()[:16]
    jobs.enqueue(session, SYNC_WAY, f"group-code:{code.id}:{digest}:{now.timestamp():.0f}", {"code_id": code.id})
    return True


def _sync_way(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    code = session.get(GroupCode, parse_id(ctx.payload["code_id"], "group code"))
    if code is None or not code.config_id or code.account_id is None:
        return {"skipped": "gone"}
    account = session.get(ChannelAccount, code.account_id)
    chat_ids = way_chat_ids(session, code)
    if account is None or not chat_ids:
        return {"skipped": "no account or no group"}
    way = _way(session, code, chat_ids)
    body = {"scene": groups_wecom.SCENE_QR, "remark": way["remark"], "auto_create_room": int(way["auto_create_room"]),
            "chat_id_list": chat_ids, "state": code.state}
    if way["auto_create_room"]:
        body["room_base_name"] = code.room_base_name
        if code.room_base_id is not None:
            body["room_base_id"] = code.room_base_id
    try:
        groups_wecom.rewrite_join_way(account, code.config_id, body)
    except ChannelError as exc:
        code.sync_error = f"{exc.code}: {exc}"[:2000]
        channels.record_health(session, account, error=code.sync_error)
        return {"failed": code.sync_error}
    code.sync_error = None
    channels.record_health(session, account)
    return {"chat_ids": chat_ids}


# Rewriting the list whole is idempotent: repeating it after a lost worker does no harm.
jobs.handler(SYNC_WAY, external=True, accepts_idempotency_key=True)(_sync_way)
