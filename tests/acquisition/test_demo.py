"""The acquisition demo: sources, codes on the demo Official Account written without a network call, weeks
of arrivals spread over the days (so the code pages chart something), customer groups and group codes on
a stand-in WeCom account with weeks of joins and leaves, and nothing twice on a second run."""

from __future__ import annotations

import random

from rich.progress import Progress
from sqlalchemy import func, select

from siyu.acquisition import group_codes, groups, service
from siyu.acquisition.demo import CLICKS, NO_WECOM, WECOM_NAME, add_demo_acquisition
from siyu.acquisition.group_models import CustomerGroup, GroupCode, GroupCodeChat, GroupMember
from siyu.acquisition.models import Arrival
from siyu.channels import service as channels
from siyu.channels.demo import _account
from siyu.channels.models import ChannelAccount
from siyu.contacts import service as contacts
from siyu.core.models import Event
from tests.acquisition.conftest import ACTOR


def test_the_demo_fills_codes_with_weeks_of_arrivals_once(db, ws, staff):
    _account(db)  # the demo Official Account, on a closed local port: any platform call would fail
    for n in range(12):
        contacts.create_contact(db, fields={"name": f"Demo {n}", "phone": f"1380013{n:04d}"}, actor=ACTOR)

    add_demo_acquisition(db, ws, random.Random(7), Progress(disable=True))
    first = db.execute(select(func.count()).select_from(Arrival)).scalar_one()
    add_demo_acquisition(db, ws, random.Random(7), Progress(disable=True))

    assert db.execute(select(func.count()).select_from(Arrival)).scalar_one() == first == CLICKS + 12
    assert {s.type for s in service.list_sources(db)} == {"parcel_card", "store_poster", "live_stream"}
    codes = service.list_codes(db)
    assert sorted(c.kind for c in codes) == ["link", "wechat_oa", "wechat_oa", "wechat_oa"]
    link = next(c for c in codes if c.kind == "link")
    series = service.daily_series(db, link, days=60)
    assert sum(series.scans) == CLICKS
    assert sum(1 for n in series.scans if n) > 20  # spread over the weeks, not on one day
    oa_code = next(c for c in codes if c.kind == "wechat_oa")
    assert [m.position for m in service.members_of(db, oa_code)] == [1, 2, 3]


def test_the_demo_has_customer_groups_and_group_codes_with_weeks_of_stays_once(db, ws, staff):
    _account(db)
    for n in range(30):
        contacts.create_contact(db, fields={"name": f"Demo {n}", "phone": f"1380013{n:04d}"}, actor=ACTOR)

    def counts() -> dict[str, int]:
        tables = {"groups": CustomerGroup, "stays": GroupMember, "codes": GroupCode, "links": GroupCodeChat,
                  "accounts": ChannelAccount}
        found = {k: db.execute(select(func.count()).select_from(m)).scalar_one() for k, m in tables.items()}
        found["events"] = db.execute(select(func.count()).select_from(Event).where(
            Event.type.like("group.%"))).scalar_one()
        return found

    add_demo_acquisition(db, ws, random.Random(7), Progress(disable=True))
    first = counts()
    add_demo_acquisition(db, ws, random.Random(7), Progress(disable=True))
    assert counts() == first

    wecom = channels.list_accounts(db, kind="wecom")
    assert [(a.name, a.status, a.config["api_base"]) for a in wecom] == [(WECOM_NAME, "paused", "http://127.0.0.1:9")]
    found = groups.list_groups(db)
    assert len(found) == 4
    assert all(g.account_id == wecom[0].id for g in found)
    assert {g.owner_userid for g in found} <= {"zhangsan", "lisi", "wangwu"}
    assert all(g.external_count > 0 and g.member_count == g.external_count + len(
        [m for m in groups.members_of(db, g) if m.type == 1]) for g in found)

    codes = {c.state: c for c in group_codes.list_group_codes(db)}
    assert set(codes) == {"live_fans", "tea_tasting"}
    live = codes["live_fans"]
    assert all(c.config_id is None and c.qr_url is None and c.sync_error == NO_WECOM for c in codes.values())
    assert live.source_id == next(s.id for s in service.list_sources(db) if s.type == "live_stream")
    # The first fans' group filled and left WeCom's list; the second, opened by WeCom, takes people now.
    listed = group_codes.code_groups(db, live)
    assert [(link.in_way, link.full_at is not None) for link, _ in listed] == [(True, False), (False, True)]
    assert group_codes.way_chat_ids(db, live) == ["wrDemoLiveFans2"]

    series = groups.daily_series(db, days=60)
    assert sum(series["joins"]) > 300
    assert sum(series["leaves"]) > 10
    assert sum(1 for n in series["joins"] if n) > 40  # spread over the weeks
    assert series["size"][-1] == sum(g.external_count for g in found)
    code_series = groups.daily_series(db, code_id=live.id, days=30)
    assert sum(code_series["joins"]) > 0
    assert code_series["size"][-1] > 0
    totals = groups.code_totals(db, live.id)
    assert totals["joined"] > group_codes.FULL_AT
    assert 0 < totals["left"] < totals["joined"]

    stays = db.execute(select(GroupMember)).scalars().all()
    linked = [s.contact_id for s in stays if s.contact_id is not None]
    assert linked
    assert all(s.join_recorded for s in stays)
    events = first["events"]
    assert events == len(stays) + len([s for s in stays if s.left_at]) + 4  # joins, leaves, created
