"""Group live codes on WeCom's join way: created and rewritten through the local WeCom server, up to 5
groups, the state's length, a full group taken out of the list, pausing, another workspace refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.acquisition import group_codes, groups
from siyu.acquisition.group_models import CustomerGroup
from siyu.channels.wecom.service import PlatformRefused
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.models import AuditEntry
from siyu.core.tenancy import bind_workspace

ACTOR = Actor(type="user", id="1", label="ops@example.com", via="console")


def make_groups(db, fake, account, n: int) -> list[CustomerGroup]:
    made = []
    for i in range(n):
        chat_id = f"wrChat{i:03d}"
        fake.add_group(chat_id, name=f"直播群{i + 1}")
        group = CustomerGroup(account_id=account.id, chat_id=chat_id, name=f"直播群{i + 1}", status="active")
        db.add(group)
        made.append(group)
    db.flush()
    return made


def new_code(db, account, group_list, **kwargs):
    values = {"name": "直播间群码", "account_id": account.id, "state": "live-0601",
              "group_ids": [g.id for g in group_list], "actor": ACTOR}
    return group_codes.create_group_code(db, **{**values, **kwargs})


def test_a_code_is_a_join_way_of_its_groups_with_its_qr_and_welcome_template(db, account, fake):
    chats = make_groups(db, fake, account, 2)

    code = new_code(db, account, chats, auto_create_room=True, room_base_name="直播福利群", room_base_id=3,
                    welcome={"text": "欢迎加入直播福利群，群公告里有今晚的优惠券"})

    way = fake.join_ways[code.config_id]
    assert way["chat_id_list"] == ["wrChat000", "wrChat001"]
    assert (way["scene"], way["state"], way["auto_create_room"], way["room_base_name"], way["room_base_id"]) == (
        2, "live-0601", 1, "直播福利群", 3)
    assert code.qr_url == way["qr_code"]
    assert code.qr_url.startswith("https://")
    assert fake.group_welcome_templates[code.welcome_template_id]["text"]["content"].startswith("欢迎加入")
    assert [g.chat_id for _, g in group_codes.code_groups(db, code)] == ["wrChat000", "wrChat001"]
    assert db.execute(select(AuditEntry.action).where(AuditEntry.entity_type == "group_code")).scalars().all() == [
        "group_code.create"]

    group_codes.update_group_code(db, code, changes={"group_ids": [chats[1].id], "welcome": {"text": "新欢迎语"}},
                                  actor=ACTOR)
    assert fake.join_ways[code.config_id]["chat_id_list"] == ["wrChat001"]
    assert fake.group_welcome_templates[code.welcome_template_id]["text"]["content"] == "新欢迎语"
    assert len(fake.group_welcome_templates) == 1  # edited, not a second template


def test_six_groups_a_long_state_or_a_taken_state_are_refused_and_nothing_is_created(db, account, fake):
    chats = make_groups(db, fake, account, 6)

    with pytest.raises(Invalid) as six:
        new_code(db, account, chats)
    with pytest.raises(Invalid) as long_state:
        new_code(db, account, chats[:2], state="s" * 31)
    new_code(db, account, chats[:1])
    with pytest.raises(Conflict) as taken:
        new_code(db, account, chats[1:2], name="another")

    assert (six.value.field, long_state.value.field, taken.value.field) == ("group_ids", "state", "state")
    assert len(fake.join_ways) == 1


def test_the_server_refuses_six_chats_and_an_unknown_one_like_wecom(db, account, fake):
    from siyu.acquisition import groups_wecom

    make_groups(db, fake, account, 6)
    body = {"scene": 2, "chat_id_list": [f"wrChat{i:03d}" for i in range(6)], "state": "x"}
    with pytest.raises(PlatformRefused) as six:
        groups_wecom.wecom.call(db, account, groups_wecom.JOIN_WAY + "add_join_way", body)
    with pytest.raises(PlatformRefused) as unknown:
        groups_wecom.add_join_way(db, account, chat_ids=["wrNoSuchChat"], state="x")
    assert (six.value.code, unknown.value.code) == ("wecom_40058", "wecom_40050")


def test_a_full_group_leaves_the_list_and_the_next_fills(db, account, fake, run_jobs):
    chats = make_groups(db, fake, account, 3)
    code = new_code(db, account, chats)
    chats[0].member_count = group_codes.FULL_AT

    assert group_codes.refresh_way(db, code)
    run_jobs()

    assert fake.join_ways[code.config_id]["chat_id_list"] == ["wrChat001", "wrChat002"]
    chats[1].member_count = chats[2].member_count = group_codes.FULL_AT
    group_codes.refresh_way(db, code)  # every group full: the list stays so WeCom opens the next group
    run_jobs()
    assert fake.join_ways[code.config_id]["chat_id_list"] == ["wrChat001", "wrChat002"]


def test_pausing_stops_wecom_opening_new_groups_and_resuming_restores_it(db, account, fake):
    code = new_code(db, account, make_groups(db, fake, account, 1), auto_create_room=True, room_base_name="福利群")

    group_codes.set_status(db, code, "paused", actor=ACTOR)
    assert fake.join_ways[code.config_id]["auto_create_room"] == 0
    group_codes.set_status(db, code, "active", actor=ACTOR)
    assert fake.join_ways[code.config_id]["auto_create_room"] == 1
    with pytest.raises(Invalid):
        group_codes.set_status(db, code, "deleted", actor=ACTOR)

    group_codes.delete_group_code(db, code, actor=ACTOR)
    assert fake.join_ways == {}


def test_importing_groups_queues_their_sync(db, account, fake, run_jobs):
    fake.add_group("wrOld1", name="老客户群")
    fake.join_group("wrOld1", "wmOldCustomer")

    assert groups.import_groups(db, account, actor=ACTOR) == 1
    assert groups.import_groups(db, account, actor=ACTOR) == 0
    run_jobs()

    group = groups.list_groups(db)[0]
    assert (group.name, group.owner_userid, group.member_count, group.external_count) == ("老客户群", "zhangsan", 2, 1)


def test_another_workspace_cannot_see_or_use_these_groups_and_codes(db, account, fake, make_workspace):
    chats = make_groups(db, fake, account, 1)
    code = new_code(db, account, chats)
    other = make_workspace("Other shop")
    bind_workspace(db, other.id)

    with pytest.raises(NotFound):
        group_codes.get_group_code(db, code.id)
    with pytest.raises(NotFound):
        groups.get_group(db, chats[0].id)
    with pytest.raises(NotFound):
        group_codes.create_group_code(db, name="x", account_id=account.id, state="y", group_ids=[chats[0].id],
                                      actor=ACTOR)
    assert group_codes.list_group_codes(db) == []
    assert groups.list_groups(db) == []
