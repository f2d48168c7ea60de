"""Demo data of acquisition: three sources (parcel cards, a store poster, a live stream) with their cost
models, a channel code for each on the demo Official Account plus a tracked link for the live stream's
SMS, and eight weeks of arrivals through them, so the console's code pages have something to chart.

No network: the demo Official Account is a stand-in on a closed port, so its codes are written as they
would be after the platform made them, without a QR (their `sync_error` says so; a real account makes
them through `create_code`). Their states are the scenes the channels demo's followers arrived with, so
those follows become arrivals; other demo contacts scan the codes over the weeks, and anonymous people
click the link. It runs after the channels demo. A second run adds nothing (sources by name, arrivals
by a deterministic key).

Customer groups and group codes (群活码) come on a demo WeCom account, a paused stand-in on the same closed
port: four groups owned by demo staff, two group codes written without WeCom (no join way, no QR; their
`sync_error` says so), and eight weeks of stays, the way the callbacks and `acquisition.group_sync` would
have left them: the live-stream fans' first group filled at 200 members and WeCom opened the next, some
customers left, known demo contacts are linked, and the `group.*` events are on their timelines. The
groups are written once (found by chat id on a second run).
"""

from __future__ import annotations

import hashlib
import random
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.acquisition import arrivals, codes, group_codes, groups, sources
from siyu.acquisition.group_models import EXTERNAL, STAFF, CustomerGroup, GroupCode, GroupCodeChat, GroupMember
from siyu.acquisition.models import ChannelCode, ChannelCodeStaff
from siyu.channels import service as channels
from siyu.channels.demo import ACCOUNT_NAME
from siyu.contacts import demo as demo_contacts
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.events import record_event
from siyu.core.models import Event, Workspace

ACTOR = Actor.cli("demo")
WEEKS = 8
SCANNERS = 150
CLICKS = 240
NO_PLATFORM = "demo code: written without the platform (the demo account is a stand-in), so it has no QR image"
# (source name, type, cost model in fen, code name, state (= the channels demo's follow scene), rotation)
SOURCES: tuple[tuple[str, str, dict[str, Any], str, str, str], ...] = (
    ("包裹卡 Parcel cards", "parcel_card", {"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000},
     "包裹卡二维码 Parcel card QR", "parcel_card", "round_robin"),
    ("门店海报 Store poster", "store_poster", {"kind": "per_period", "amount": 30000, "period": "month"},
     "门店海报 Store poster QR", "store_poster", "weighted"),
    ("直播间 Live stream", "live_stream", {"kind": "per_acquired", "unit_cost": 300},
     "直播间二维码 Live stream QR", "live_stream", "random"),
)
LINK = ("直播预告短信 Live stream SMS", "live-sms", "https://shop.example.com/live")


WECOM_NAME = "演示企业微信 Demo WeCom"
NO_WECOM = "demo code: written without WeCom (the demo account is a stand-in), so it has no join way and no QR image"


@dataclass
class DemoGroup:
    """A customer group of the demo: its chat id, name, owner (a demo staff member's position) and opening day."""

    chat_id: str
    name: str
    owner: int
    opened: int  # days ago
    row: CustomerGroup | None = None
    customers: int = 0
    staff: int = 0
    stays: list[GroupMember] = field(default_factory=list)
    pool: list[int] | None = None  # known contacts not in the group yet


# (key, name, state, source type, group chat ids, auto_create_room, room base name, welcome, joins per day
# on an ordinary day and on a live-stream Saturday, the day it started (days ago))
GROUP_CODES: tuple[tuple[str, str, str, str, tuple[str, ...], bool, str, str, tuple[int, int], tuple[int, int], int],
                   ...] = (
    ("live", "直播粉丝群码 Live stream fans", "live_fans", "live_stream", ("wrDemoLiveFans1", "wrDemoLiveFans2"),
     True, "直播粉丝群 Live fans ", "欢迎来到直播粉丝群！每周六晚 8 点开播，群里先发秒杀券。", (1, 5), (22, 34), 55),
    ("tasting", "新茶品鉴群码 New tea tasting", "tea_tasting", "store_poster", ("wrDemoTasting1",), False, "",
     "欢迎参加新茶品鉴！每周三在群里预约到店试茶。", (1, 4), (1, 4), 40),
)
# Groups in the order of GROUP_CODES' chat ids, then those people join by invitation only.
GROUPS: tuple[tuple[str, str, int, int], ...] = (
    ("wrDemoLiveFans1", "直播粉丝群 Live fans 1", 0, 56),
    ("wrDemoLiveFans2", "直播粉丝群 Live fans 2", 0, 0),  # opened by WeCom when the first filled
    ("wrDemoTasting1", "新茶品鉴群 New tea tasting", 1, 41),
    ("wrDemoVip1", "老客福利群 VIP members", 2, 56),
)
VIP_CUSTOMERS = 45
LEAVE_RATE = 0.12


def _source(session: Session, name: str, type_: str, cost: dict[str, Any]) -> Any:
    for source in sources.list_sources(session, archived=None):
        if source.name == name:
            return source
    return sources.create_source(session, name=name, type=type_, currency="CNY", cost_model=cost, actor=ACTOR)


def _oa_code(session: Session, workspace: Workspace, source: Any, account_id: int, name: str, state: str,
             rotation: str, staff_ids: list[int]) -> ChannelCode:
    """An Official Account code as `create_code` leaves it, without asking the platform for its QR."""
    found = codes.code_by_state(session, state)
    if found is not None:
        return found
    code = ChannelCode(workspace_id=workspace.id, name=name, source_id=source.id, kind="wechat_oa",
                       account_id=account_id, state=state, status="active", rotation=rotation,
                       welcome={}, tag_ids=[], sync_error=NO_PLATFORM, created_by=ACTOR.label)
    session.add(code)
    session.flush()
    for position, staff_id in enumerate(staff_ids, start=1):
        session.add(ChannelCodeStaff(workspace_id=workspace.id, code_id=code.id, staff_id=staff_id,
                                     weight=1 + position % 3, daily_cap=40 if position == 1 else None,
                                     backup=position == len(staff_ids) and len(staff_ids) > 2, position=position))
    session.flush()
    return code


def add_demo_acquisition(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """Sources, codes and eight weeks of arrivals (see the module's docstring)."""
    account = next((a for a in channels.list_accounts(session, kind="wechat_oa") if a.name == ACCOUNT_NAME), None)
    staff_ids = [s.id for s in staff_service.list_staff(session, active=True)][:4]
    made: list[ChannelCode] = []
    link_source = None
    for source_name, type_, cost, code_name, state, rotation in SOURCES:
        source = _source(session, source_name, type_, cost)
        if account is not None:
            made.append(_oa_code(session, workspace, source, account.id, code_name, state, rotation, staff_ids))
        if type_ == "live_stream":
            link_source = source
    link = codes.code_by_state(session, LINK[1])
    if link is None and link_source is not None:
        link = codes.create_code(session, name=LINK[0], source_id=link_source.id, kind="link", state=LINK[1],
                                 target_url=LINK[2], actor=ACTOR)
    now = clock.now()
    task = progress.add_task("Acquisition", total=SCANNERS + CLICKS)
    arrivals.set_draw(rng.random)  # the random rotation draws from the demo's seed
    try:
        _arrive(session, account.id if account is not None else None, made, link, rng, now, progress, task)
    finally:
        arrivals.set_draw(None)
    add_demo_groups(session, workspace, rng, progress)
    # The arrivals and group joins are events about the demo's contacts: their stages count them now,
    # so a second demo run finds nothing left to change.
    demo_contacts.settle(session)


def _arrive(session: Session, account_id: int | None, made: list[ChannelCode], link: ChannelCode | None,
            rng: random.Random, now: Any, progress: Progress, task: Any) -> None:
    by_state = {c.state: c for c in made}
    # The channels demo's followers came through these scenes: their follows are arrivals.
    if account_id is not None:
        follows = session.execute(select(Event).where(Event.type == "channel.joined").order_by(Event.id)).scalars()
        for event in follows:
            props = event.properties or {}
            code = by_state.get(str(props.get("scene") or ""))
            if code is not None and props.get("account_id") == account_id and event.contact_id is not None:
                arrivals.record_arrival(session, code, kind="add", dedupe_key=f"demo:follow:{event.id}",
                                        contact_id=event.contact_id, occurred_at=event.occurred_at)
    # Other demo contacts scanned a code some day in the last weeks; their first scan made them "new".
    if made:
        people = contacts.list_contacts(session, limit=SCANNERS)[0]
        for n, person in enumerate(people):
            code = rng.choices(made, weights=[5, 2, 3][: len(made)])[0]
            at = now - timedelta(days=rng.triangular(0, WEEKS * 7, 3), hours=rng.uniform(0, 12))
            arrivals.record_arrival(session, code, kind=rng.choice(("scan", "add", "add")),
                                    dedupe_key=f"demo:scan:{n}", contact_id=person.id, new_contact=n % 3 == 0,
                                    occurred_at=at)
            progress.advance(task)
    if link is not None:
        for n in range(CLICKS):
            at = now - timedelta(days=rng.triangular(0, WEEKS * 7, 0), hours=rng.uniform(0, 12))
            arrivals.record_arrival(session, link, kind="click", dedupe_key=f"demo:click:{n}", contact_id=None,
                                    occurred_at=at)
            progress.advance(task)


# --- customer groups and group codes ----------------------------------------------------------------


def _wecom_account(session: Session) -> Any:
    """The demo WeCom account: a stand-in, paused, on a closed local port (it never reaches WeCom)."""
    for account in channels.list_accounts(session, kind="wecom"):
        if account.name == WECOM_NAME:
            return account
    account = channels.create_account(
        session, kind="wecom", name=WECOM_NAME, actor=ACTOR,
        config={"corp_id": "wwdemo" + secrets.token_hex(6), "agent_id": "1000002", "api_base": "http://127.0.0.1:9"},
        secrets={"secret": secrets.token_hex(16), "token": secrets.token_hex(8),
                 "encoding_aes_key": "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))},
    )
    return channels.update_account(session, account, status="paused", actor=ACTOR)


def _external_userid(chat_id: str, n: int) -> str:
    return "wmDemo" + hashlib.sha256(f"{chat_id}:{n}".encode()).hexdigest()[:26]


def add_demo_groups(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """Customer groups on the demo WeCom account, two group codes and eight weeks of stays (see the
    module's docstring); nothing when the groups are there already."""
    account = _wecom_account(session)
    if any(groups.group_by_chat(session, account, chat_id) is not None for chat_id, *_ in GROUPS):
        return
    rng = random.Random(f"siyu-demo-groups:{rng.random()}")
    staff = [s for s in staff_service.list_staff(session, active=True) if s.wecom_userid][:4]
    owners = [s.wecom_userid or "" for s in staff] or ["demo-owner"]
    known = [c.id for c in contacts.list_contacts(session, limit=200)[0]]
    now = clock.now()
    demo_groups = {chat_id: DemoGroup(chat_id, name, owner, opened) for chat_id, name, owner, opened in GROUPS}
    by_type = {s.type: s for s in sources.list_sources(session, archived=None)}
    task = progress.add_task("Customer groups", total=len(GROUP_CODES) + 1)
    for _key, name, state, source_type, chat_ids, auto, base, welcome, usual, saturday, began in GROUP_CODES:
        source = by_type.get(source_type)
        code = group_codes.code_by_state(session, state) or GroupCode(
            workspace_id=workspace.id, name=name, account_id=account.id, source_id=source.id if source else None,
            state=state, status="active", auto_create_room=auto, room_base_name=base, room_base_id=1 if auto else None,
            welcome={"text": welcome}, sync_error=NO_WECOM, created_by=ACTOR.label,
            created_at=now - timedelta(days=began, hours=2), updated_at=now - timedelta(days=began, hours=2))
        session.add(code)
        session.flush()
        listed = [demo_groups[c] for c in chat_ids]
        _open(session, workspace, account, listed[0], owners, now)
        session.add(GroupCodeChat(workspace_id=workspace.id, code_id=code.id, group_id=_row(listed[0]).id,
                                  chat_id=listed[0].chat_id, position=0, in_way=True))
        session.flush()
        _fill(session, workspace, account, code, listed, owners, known, usual, saturday, began, rng, now)
        progress.advance(task)
    vip = demo_groups[GROUPS[-1][0]]
    _open(session, workspace, account, vip, owners, now)
    for _n in range(VIP_CUSTOMERS):
        at = now - timedelta(days=rng.triangular(0, vip.opened, vip.opened), hours=rng.uniform(0, 12))
        _join(session, workspace, vip, None, at, rng.choice((1, 2)), known, rng, now)
    progress.advance(task)
    for group in demo_groups.values():
        row = _row(group)
        for stay in group.stays:
            if stay.left_at is not None:
                groups._leave(session, row, stay, stay.left_at, stay.quit_scene)  # the callbacks' own event
        groups._count(session, row)
        groups._record_joins(session, row)


def _row(group: DemoGroup) -> CustomerGroup:
    assert group.row is not None, "the group is opened first"
    return group.row


def _open(session: Session, workspace: Workspace, account: Any, group: DemoGroup, owners: list[str],
          now: datetime, at: datetime | None = None) -> CustomerGroup:
    """The group as its `create` callback and first sync leave it: owner and a colleague as members."""
    if group.row is not None:
        return group.row
    opened = at or now - timedelta(days=group.opened, hours=3)
    owner = owners[group.owner % len(owners)]
    row = CustomerGroup(workspace_id=workspace.id, account_id=account.id, chat_id=group.chat_id, name=group.name,
                        owner_userid=owner, status="active", created_at=opened)
    session.add(row)
    session.flush()
    group.row = row
    record_event(session, type="group.created", occurred_at=opened, idempotency_key=f"group:{row.id}:created",
                 source="acquisition", properties={"group_id": row.id, "chat_id": row.chat_id,
                                                   "account_id": account.id})
    colleague = owners[(group.owner + 1) % len(owners)]
    for member in dict.fromkeys((owner, colleague)):
        group.staff += 1
        session.add(GroupMember(workspace_id=workspace.id, group_id=row.id, member_id=member, type=STAFF,
                                joined_at=opened, join_scene=1))
    return row


def _join(session: Session, workspace: Workspace, group: DemoGroup, code: GroupCode | None, at: datetime,
          scene: int, known: list[int], rng: random.Random, now: datetime) -> None:
    """One customer's stay; about one in eight leaves again some days later, most of the rest are known contacts."""
    n = group.customers
    group.customers += 1
    if group.pool is None:
        group.pool = rng.sample(known, len(known))
    contact_id = group.pool.pop() if group.pool and rng.random() < 0.7 else None
    stay = GroupMember(workspace_id=workspace.id, group_id=_row(group).id, member_id=_external_userid(group.chat_id, n),
                       type=EXTERNAL, contact_id=contact_id, joined_at=at, join_scene=scene,
                       state=code.state if code is not None else None, group_code_id=code.id if code else None)
    if rng.random() < LEAVE_RATE:
        left = at + timedelta(days=rng.expovariate(1 / 6), hours=rng.uniform(0, 6))
        if left < now:
            stay.left_at, stay.quit_scene = left, 0 if rng.random() < 0.85 else 1
    group.stays.append(stay)
    session.add(stay)


def _fill(session: Session, workspace: Workspace, account: Any, code: GroupCode, listed: list[DemoGroup],
          owners: list[str], known: list[int], usual: tuple[int, int], saturday: tuple[int, int], began: int,
          rng: random.Random, now: datetime) -> None:
    """People scan the code day by day (more on live-stream Saturdays) and join its group that has room; a
    group that reaches `FULL_AT` members leaves WeCom's list, and WeCom opens the code's next group."""
    current, zone = 0, ZoneInfo(workspace.timezone)
    for back in range(began, -1, -1):
        day = (now - timedelta(days=back)).astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        busy = day.weekday() == 5  # the live stream is on Saturdays at 8 pm
        hours = sorted(rng.uniform(20, 22.5) if busy else rng.uniform(9, 23)
                       for _ in range(rng.randint(*(saturday if busy else usual))))
        for hour in hours:
            at = (day + timedelta(hours=hour)).astimezone(now.tzinfo)
            if at >= now:
                continue
            group = listed[current]
            if group.row is None:
                _open(session, workspace, account, group, owners, now, at=at - timedelta(minutes=1))
                session.add(GroupCodeChat(workspace_id=workspace.id, code_id=code.id, group_id=_row(group).id,
                                          chat_id=group.chat_id, position=current, in_way=True))
            _join(session, workspace, group, code, at, 3, known, rng, now)
            members = group.staff + sum(1 for s in group.stays if s.left_at is None or s.left_at > at)
            if members >= group_codes.FULL_AT and current + 1 < len(listed):
                session.flush()
                link = session.execute(select(GroupCodeChat).where(
                    GroupCodeChat.code_id == code.id, GroupCodeChat.group_id == _row(group).id)).scalar_one()
                link.in_way, link.full_at = False, at
                current += 1
    session.flush()
