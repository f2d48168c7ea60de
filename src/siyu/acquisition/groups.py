"""Customer groups and their membership, kept from WeCom's `change_external_chat` callbacks.

The callback (in its request's transaction, through `register_chat_handler`) writes what it carries:
a new group, members who joined or left (MemChangeList) with their JoinScene/QuitScene, a dismissal,
and records `group.created`, `group.member_left` and `group.dismissed`. It then queues
`acquisition.group_sync`, which reads the group (`groupchat/get`): name, owner, notice, each member's
type and the join way `state` they came with (the callback has no state). That job matches the state
to a group code, links customers to their contacts, records `group.member_joined` for each new stay
(with the code when the state names one), takes a full group out of its codes' lists, and adopts a
group WeCom created for a code. If WeCom can't tell (the group is gone), the joins are recorded
without a state.

Size over time comes from the member rows (one per stay), not from a daily table: see `daily_series`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from siyu.acquisition import group_codes, groups_wecom
from siyu.acquisition.group_models import EXTERNAL, STAFF, CustomerGroup, GroupCode, GroupCodeChat, GroupMember
from siyu.channels import service as channels
from siyu.channels.base import ChannelError, adapter_for
from siyu.channels.models import ChannelAccount
from siyu.channels.wecom.callbacks import ChatChange, register_chat_handler
from siyu.contacts import service as contacts
from siyu.contacts.identities import canonical_type
from siyu.core import audit, clock, jobs, workspaces
from siyu.core.audit import Actor
from siyu.core.events import record_event
from siyu.core.tenancy import bound_workspace, get_scoped, parse_id

SYNC = "acquisition.group_sync"
HANDLER = "acquisition.groups"


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("customer groups work through a session bound to a workspace")
    return workspace_id


# --- reading ----------------------------------------------------------------------------------------


def list_groups(session: Session, *, status: str | None = None) -> list[CustomerGroup]:
    """The workspace's customer groups, active first, then by name."""
    stmt = select(CustomerGroup).order_by(CustomerGroup.status, CustomerGroup.name, CustomerGroup.id)
    if status is not None:
        stmt = stmt.where(CustomerGroup.status == status)
    return list(session.execute(stmt).scalars())


def get_group(session: Session, group_id: Any) -> CustomerGroup:
    """One customer group of the bound workspace (404 for any other)."""
    return get_scoped(session, CustomerGroup, group_id, what="group")


def group_by_chat(session: Session, account: ChannelAccount, chat_id: str) -> CustomerGroup | None:
    """The group of a chat id on an account."""
    return session.execute(select(CustomerGroup).where(CustomerGroup.account_id == account.id,
                                                       CustomerGroup.chat_id == chat_id)).scalar_one_or_none()


def members_of(session: Session, group: CustomerGroup, *, current: bool = True) -> list[GroupMember]:
    """A group's member stays (current ones only by default), oldest first."""
    stmt = select(GroupMember).where(GroupMember.group_id == group.id).order_by(GroupMember.joined_at,
                                                                                 GroupMember.id)
    if current:
        stmt = stmt.where(GroupMember.left_at.is_(None))
    return list(session.execute(stmt).scalars())


def _zone(session: Session) -> ZoneInfo:
    return ZoneInfo(workspaces.get_workspace(session, _workspace(session)).timezone)


def daily_series(session: Session, *, group_ids: Sequence[int] | None = None, code_id: int | None = None,
                 days: int = 30, until: date | None = None) -> dict[str, list[Any]]:
    """Customers (external members) who joined and left each day, and the groups' size in customers at
    each day's end, over `days` days up to `until` (today) in the workspace's timezone.

    For a code: joins and leaves of the customers it brought (their join state named it), and the size
    of every group it ever listed. Size is computed from the stays: those open at the window's start,
    then each day's joins minus leaves."""
    zone = _zone(session)
    last = until or clock.now().astimezone(zone).date()
    first = last - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    if code_id is not None:
        group_ids = list(session.execute(select(GroupCodeChat.group_id).where(
            GroupCodeChat.code_id == code_id)).scalars())
    scope = [GroupMember.type == EXTERNAL]
    if group_ids is not None:
        scope.append(GroupMember.group_id.in_(list(group_ids) or [-1]))
    baseline = int(session.execute(select(func.count()).select_from(GroupMember).where(
        *scope, GroupMember.joined_at < start,
        or_(GroupMember.left_at.is_(None), GroupMember.left_at >= start))).scalar_one())
    index = {first + timedelta(days=i): i for i in range(days)}
    joins, leaves, moves = [0] * days, [0] * days, [0] * days
    rows = session.execute(select(GroupMember.joined_at, GroupMember.left_at, GroupMember.group_code_id).where(
        *scope, or_(GroupMember.joined_at >= start, GroupMember.left_at >= start)))
    for joined_at, left_at, member_code in rows:
        mine = code_id is None or member_code == code_id
        if joined_at >= start:
            i = index.get(joined_at.astimezone(zone).date())
            if i is not None:
                moves[i] += 1
                joins[i] += int(mine)
        if left_at is not None and left_at >= start:
            i = index.get(left_at.astimezone(zone).date())
            if i is not None:
                moves[i] -= 1
                leaves[i] += int(mine)
    size, running = [], baseline
    for delta in moves:
        running += delta
        size.append(running)
    return {"labels": [d.strftime("%m-%d") for d in index], "joins": joins, "leaves": leaves, "size": size}


def code_totals(session: Session, code_id: int) -> dict[str, int]:
    """Customers a code brought in all, those who left since, and those still in its groups."""
    joined = int(session.execute(select(func.count()).select_from(GroupMember).where(
        GroupMember.group_code_id == code_id, GroupMember.type == EXTERNAL)).scalar_one())
    left = int(session.execute(select(func.count()).select_from(GroupMember).where(
        GroupMember.group_code_id == code_id, GroupMember.type == EXTERNAL,
        GroupMember.left_at.is_not(None))).scalar_one())
    return {"joined": joined, "left": left, "staying": joined - left}


# --- callbacks --------------------------------------------------------------------------------------


def _guess_type(member_id: str) -> int:
    # WeCom's external_userids start with wm or wo; groupchat/get says for sure in the sync.
    return EXTERNAL if member_id.startswith(("wm", "wo")) else STAFF


def _open_stay(session: Session, group: CustomerGroup, member_id: str) -> GroupMember | None:
    return session.execute(select(GroupMember).where(GroupMember.group_id == group.id,
                                                     GroupMember.member_id == member_id,
                                                     GroupMember.left_at.is_(None))).scalars().first()


def _props(group: CustomerGroup, **extra: Any) -> dict[str, Any]:
    return {"group_id": group.id, "chat_id": group.chat_id, "account_id": group.account_id,
            **{k: v for k, v in extra.items() if v is not None}}


def _count(session: Session, group: CustomerGroup) -> None:
    counts = {int(kind): int(n) for kind, n in session.execute(select(GroupMember.type, func.count()).where(
        GroupMember.group_id == group.id, GroupMember.left_at.is_(None)).group_by(GroupMember.type))}
    group.member_count, group.external_count = sum(counts.values()), counts.get(EXTERNAL, 0)


def _leave(session: Session, group: CustomerGroup, stay: GroupMember, at: datetime, quit_scene: int | None) -> None:
    stay.left_at, stay.quit_scene = at, quit_scene
    session.flush()
    record_event(session, type="group.member_left", contact_id=stay.contact_id, occurred_at=at,
                 idempotency_key=f"group-leave:{stay.id}", source="acquisition",
                 properties=_props(group, member_id=stay.member_id, member_type=stay.type, quit_scene=quit_scene,
                                   group_code_id=stay.group_code_id))


def _queue_sync(session: Session, group: CustomerGroup, reason: str) -> None:
    key = "group-sync:" + hashlib.sha256(f"{group.id}:{reason}".encode()).hexdigest()
    jobs.enqueue(session, SYNC, key, {"group_id": group.id})


def on_chat_change(session: Session, account: ChannelAccount, change: ChatChange) -> list[int]:
    """Keep one customer-group callback: the group, the stays it opens or closes, and its events."""
    if account.kind != "wecom":
        return []
    group = group_by_chat(session, account, change.chat_id)
    at = change.occurred_at
    if group is None:
        group = CustomerGroup(account_id=account.id, chat_id=change.chat_id, status="active", created_at=at)
        session.add(group)
        session.flush()
    if change.change_type == "create":
        group.status, group.created_at = "active", at
        record_event(session, type="group.created", occurred_at=at, idempotency_key=f"group:{group.id}:created",
                     source="acquisition", properties=_props(group))
    elif change.change_type == "dismiss":
        _dismiss(session, group, at)
        return []
    elif change.update_detail == "add_member":
        for member_id in change.members:
            if _open_stay(session, group, member_id) is None:
                session.add(GroupMember(group_id=group.id, member_id=member_id, type=_guess_type(member_id),
                                        joined_at=at, join_scene=change.join_scene))
        session.flush()
    elif change.update_detail == "del_member":
        for member_id in change.members:
            stay = _open_stay(session, group, member_id)
            if stay is not None:
                _leave(session, group, stay, at, change.quit_scene)
    _count(session, group)
    for code in group_codes.codes_of_group(session, group):
        group_codes.refresh_way(session, code)
    _queue_sync(session, group, change.dedupe_key)
    return []


def _dismiss(session: Session, group: CustomerGroup, at: datetime) -> None:
    if group.status == "dismissed":
        return
    group.status, group.dismissed_at = "dismissed", at
    for stay in members_of(session, group):
        stay.left_at = at
    session.flush()
    _count(session, group)
    _record_joins(session, group)
    record_event(session, type="group.dismissed", occurred_at=at, idempotency_key=f"group:{group.id}:dismissed",
                 source="acquisition", properties=_props(group, name=group.name or None))
    for code in group_codes.codes_of_group(session, group):
        group_codes.refresh_way(session, code)


register_chat_handler(HANDLER, on_chat_change)


# --- the sync job -----------------------------------------------------------------------------------


def _contacts_of(session: Session, account: ChannelAccount, members: Sequence[dict[str, Any]]) -> dict[str, int]:
    adapter = adapter_for(account.kind)
    kind = canonical_type(adapter.rules.identity_type if adapter is not None else "external_userid")
    pairs = [(kind, str(m["userid"])) for m in members if m.get("type") == EXTERNAL and m.get("userid")]
    pairs += [("unionid", str(m["unionid"])) for m in members if m.get("type") == EXTERNAL and m.get("unionid")]
    found = contacts.lookup_identities(session, pairs)
    out: dict[str, int] = {}
    for m in members:
        userid = str(m.get("userid") or "")
        contact = found.get((kind, userid)) or found.get(("unionid", str(m.get("unionid") or "")))
        if contact is not None:
            out[userid] = contact
    return out


def _record_joins(session: Session, group: CustomerGroup) -> int:
    pending = session.execute(select(GroupMember).where(GroupMember.group_id == group.id,
                                                        GroupMember.join_recorded.is_(False))).scalars().all()
    codes = {c.id: c for c in session.execute(select(GroupCode).where(
        GroupCode.id.in_({s.group_code_id for s in pending if s.group_code_id} or {-1}))).scalars()}
    for stay in pending:
        code = codes.get(stay.group_code_id) if stay.group_code_id else None
        record_event(session, type="group.member_joined", contact_id=stay.contact_id, occurred_at=stay.joined_at,
                     idempotency_key=f"group-join:{stay.id}", source="acquisition",
                     properties=_props(group, member_id=stay.member_id, member_type=stay.type,
                                       join_scene=stay.join_scene, state=stay.state,
                                       group_code_id=code.id if code else None,
                                       source_id=code.source_id if code else None,
                                       code_status=group_codes.effective_status(code) if code else None))
        stay.join_recorded = True
    session.flush()
    return len(pending)


def apply_group_chat(session: Session, account: ChannelAccount, group: CustomerGroup, chat: dict[str, Any]) -> None:
    """Bring a group in line with WeCom's view of it (`groupchat/get`'s group_chat)."""
    now = clock.now()
    group.name = str(chat.get("name") or group.name)[:200]
    group.owner_userid = str(chat.get("owner") or group.owner_userid)[:64]
    group.notice = str(chat.get("notice") or "")
    if isinstance(chat.get("create_time"), int) and chat["create_time"] > 0:
        group.created_at = datetime.fromtimestamp(chat["create_time"], now.tzinfo)
    members = [m for m in chat.get("member_list") or [] if isinstance(m, dict) and m.get("userid")]
    linked = _contacts_of(session, account, members)
    present: set[str] = set()
    for m in members:
        member_id = str(m["userid"])[:64]
        present.add(member_id)
        stay = _open_stay(session, group, member_id)
        joined = m.get("join_time")
        if stay is None:
            at = datetime.fromtimestamp(joined, now.tzinfo) if isinstance(joined, int) and joined > 0 else now
            stay = GroupMember(group_id=group.id, member_id=member_id, joined_at=at)
            session.add(stay)
        stay.type = EXTERNAL if m.get("type") == EXTERNAL else STAFF
        if isinstance(m.get("join_scene"), int):
            stay.join_scene = m["join_scene"]
        state = str(m.get("state") or "")[:30]
        if state and stay.state != state:
            stay.state = state
            code = group_codes.code_by_state(session, state)
            stay.group_code_id = code.id if code is not None else None
            if code is not None and code.account_id == account.id:
                group_codes.attach_group(session, code, group)
        stay.contact_id = linked.get(member_id, stay.contact_id)
    session.flush()
    for stay in members_of(session, group):
        if stay.member_id not in present:
            _leave(session, group, stay, now, None)  # left while no callback reached us
    _count(session, group)
    group.synced_at, group.sync_error = now, None
    session.flush()


def _sync(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    group = session.get(CustomerGroup, parse_id(ctx.payload["group_id"], "group"))
    if group is None:
        return {"skipped": "gone"}
    account = session.get(ChannelAccount, group.account_id)
    if account is None:
        return {"skipped": "account_deleted"}
    if group.status == "active":
        try:
            chat = groups_wecom.fetch_group_chat(account, group.chat_id)
        except ChannelError as exc:
            group.sync_error = f"{exc.code}: {exc}"[:500]
            channels.record_health(session, account, error=group.sync_error)
            chat = None
        if chat is not None:
            channels.record_health(session, account)
            apply_group_chat(session, account, group, chat)
    recorded = _record_joins(session, group)
    for code in group_codes.codes_of_group(session, group):
        group_codes.refresh_way(session, code)
    return {"group_id": group.id, "members": group.member_count, "joins_recorded": recorded,
            **({"failed": group.sync_error} if group.sync_error else {})}


# A read of the group: repeating it after a lost worker does no harm.
jobs.handler(SYNC, external=True, accepts_idempotency_key=True)(_sync)


def import_groups(session: Session, account: ChannelAccount, *, actor: Actor) -> int:
    """Learn the account's existing customer groups (`groupchat/list`) and queue a sync of each new one;
    how many were new. A person's request: WeCom's refusal is a PlatformRefused."""
    added, cursor = 0, ""
    for _ in range(100):
        rows, cursor = groups_wecom.list_group_chats(session, account, cursor=cursor)
        for row in rows:
            chat_id = str(row.get("chat_id") or "")[:64]
            if not chat_id or group_by_chat(session, account, chat_id) is not None:
                continue
            group = CustomerGroup(account_id=account.id, chat_id=chat_id, status="active", created_at=clock.now())
            session.add(group)
            session.flush()
            _queue_sync(session, group, "import")
            added += 1
        if not cursor:
            break
    audit.record(session, actor, workspace_id=account.workspace_id, action="customer_groups.import",
                 entity_type="channel_account", entity_id=account.id, before=None, after={"added": added})
    return added
