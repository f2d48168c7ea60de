"""Customer-group callbacks through the real `/hooks/wecom/{account}` route with real crypto: a group is
created, a customer joins by scanning a group code (JoinScene 3; the state comes from groupchat/get),
leaves, the group is dismissed — kept as membership and events, once however often WeCom repeats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from siyu.acquisition import group_codes, groups
from siyu.acquisition.group_models import CustomerGroup, GroupMember
from siyu.channels import service as channels
from siyu.channels.wecom import callbacks
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.models import Event
from tests.servers.wecom import callback_body, change_external_chat_xml

ACTOR = Actor(type="user", id="1", label="ops@example.com", via="console")
T0 = 1764500000


def post(client, account, xml: str):
    query, body = callback_body(xml)
    return client.post(f"/hooks/wecom/{account.id}", params=query, content=body)


def events(db, prefix: str = "group.") -> list[tuple[str, dict]]:
    db.expire_all()
    return [(e.type, e.properties) for e in db.execute(
        select(Event).where(Event.type.like(prefix + "%")).order_by(Event.occurred_at, Event.id)).scalars()]


def test_create_join_by_code_leave_and_dismiss_are_kept_as_membership_and_events(
        db, account, fake, hooks_app, client, run_jobs):
    assert callbacks._chat_handlers.get(groups.HANDLER) is groups.on_chat_change
    fake.add_group("wrLive1", name="直播福利群1", owner="lisi")
    assert post(client, account, change_external_chat_xml("wrLive1", change_type="create",
                                                          create_time=T0)).text == "success"
    run_jobs()  # groupchat/get: name and owner
    group = db.execute(select(CustomerGroup)).scalar_one()
    assert (group.name, group.owner_userid, group.member_count, group.external_count) == ("直播福利群1", "lisi", 1, 0)
    code = group_codes.create_group_code(db, name="直播间", account_id=account.id, state="live-night",
                                         group_ids=[group.id], actor=ACTOR)
    contact = channels.receive(db, account, __import__("siyu.channels.base", fromlist=["Inbound"]).Inbound(
        dedupe_key="add-wmFan1", sender="wmFan1", kind="event", event="joined")).contact_id

    fake.join_group("wrLive1", "wmFan1", join_scene=3, state="live-night")
    joined = change_external_chat_xml("wrLive1", update_detail="add_member", members=("wmFan1",), join_scene=3,
                                      create_time=T0 + 60)
    assert post(client, account, joined).text == "success"
    assert post(client, account, joined).text == "success"  # WeCom repeats: kept once
    db.expire_all()
    assert db.get(CustomerGroup, group.id).member_count == 2
    run_jobs()  # the state, the contact, and the join event

    stay = db.execute(select(GroupMember).where(GroupMember.member_id == "wmFan1")).scalar_one()
    assert (stay.type, stay.join_scene, stay.state, stay.group_code_id, stay.contact_id) == (
        2, 3, "live-night", code.id, contact)
    fake.leave_group("wrLive1", "wmFan1")
    post(client, account, change_external_chat_xml("wrLive1", update_detail="del_member", members=("wmFan1",),
                                                   quit_scene=0, create_time=T0 + 120))
    run_jobs()
    post(client, account, change_external_chat_xml("wrLive1", change_type="dismiss", create_time=T0 + 180))
    run_jobs()

    db.expire_all()
    stays = db.execute(select(GroupMember).order_by(GroupMember.id)).scalars().all()
    assert [(s.member_id, s.left_at is not None) for s in stays] == [("lisi", True), ("wmFan1", True)]
    group = db.get(CustomerGroup, group.id)
    assert (group.status, group.member_count, group.dismissed_at) == (
        "dismissed", 0, datetime.fromtimestamp(T0 + 180, UTC))
    seen = events(db)
    assert sorted(t for t, _ in seen) == ["group.created", "group.dismissed", "group.member_joined",
                                          "group.member_joined", "group.member_left"]
    assert [t for t, p in seen if p.get("member_id") == "wmFan1"] == ["group.member_joined", "group.member_left"]
    join = next(p for t, p in seen if t == "group.member_joined" and p["member_id"] == "wmFan1")
    assert (join["chat_id"], join["join_scene"], join["state"], join["group_code_id"], join["code_status"]) == (
        "wrLive1", 3, "live-night", code.id, "active")
    left = next(p for t, p in seen if t == "group.member_left")
    assert (left["quit_scene"], left["group_code_id"]) == (0, code.id)
    assert groups.code_totals(db, code.id) == {"joined": 1, "left": 1, "staying": 0}


def test_a_group_wecom_opens_for_a_full_code_joins_its_list(db, account, fake, hooks_app, client, run_jobs):
    fake.add_group("wrA")
    post(client, account, change_external_chat_xml("wrA", change_type="create", create_time=T0))
    run_jobs()
    group = db.execute(select(CustomerGroup)).scalar_one()
    code = group_codes.create_group_code(db, name="会员群码", account_id=account.id, state="vip", group_ids=[group.id],
                                         auto_create_room=True, room_base_name="会员群", actor=ACTOR)

    fake.add_group("wrB", name="会员群2", owner="zhangsan")  # WeCom opened it when wrA was full
    fake.join_group("wrB", "wmNew", state="vip")
    post(client, account, change_external_chat_xml("wrB", update_detail="add_member", members=("wmNew",),
                                                   join_scene=3, create_time=T0 + 5))
    run_jobs()

    assert [g.chat_id for _, g in group_codes.code_groups(db, code)] == ["wrA", "wrB"]


def test_a_join_whose_group_is_gone_before_the_sync_is_recorded_without_a_state(
        db, account, fake, hooks_app, client, run_jobs):
    post(client, account, change_external_chat_xml("wrGone", update_detail="add_member", members=("wmX",),
                                                   join_scene=3, create_time=T0))
    run_jobs()  # WeCom answers 40050: the join is still recorded, the failure kept on the group

    assert [(t, p.get("state"), p["member_id"]) for t, p in events(db)] == [("group.member_joined", None, "wmX")]
    assert db.execute(select(CustomerGroup.sync_error)).scalar_one().startswith("40050")


def test_daily_series_counts_joins_leaves_and_size_per_day(db, account, fake, ws):
    clock.set_clock(clock.FrozenClock(datetime(2026, 6, 10, 4, 0, tzinfo=UTC)))
    group = CustomerGroup(account_id=account.id, chat_id="wrS", status="active")
    db.add(group)
    db.flush()
    day = lambda d, h=4: datetime(2026, 6, d, h, 0, tzinfo=UTC)  # noqa: E731
    for member, joined, left in (("wmOld", day(1), None), ("wmA", day(8), None), ("wmB", day(8), day(9)),
                                 ("wmC", day(9), None), ("wmEarly", day(2), day(10, 1))):
        db.add(GroupMember(group_id=group.id, member_id=member, type=2, joined_at=joined, left_at=left,
                           join_recorded=True))
    db.add(GroupMember(group_id=group.id, member_id="staff1", type=1, joined_at=day(8), join_recorded=True))
    db.flush()

    series = groups.daily_series(db, group_ids=[group.id], days=3)

    assert series == {"labels": ["06-08", "06-09", "06-10"], "joins": [2, 1, 0], "leaves": [0, 1, 1],
                      "size": [4, 4, 3]}
    assert groups.daily_series(db, group_ids=[group.id], days=1, until=date(2026, 6, 1))["size"] == [1]
    assert sum(groups.daily_series(db, days=30)["joins"]) == 5
    assert clock.now() - timedelta(days=1) < day(10)
