"""The acquisition demo: sources, codes on the demo Official Account written without a network call, weeks
of arrivals spread over the days (so the code pages chart something), and nothing twice on a second run."""

from __future__ import annotations

import random

from rich.progress import Progress
from sqlalchemy import func, select

from siyu.acquisition import service
from siyu.acquisition.demo import CLICKS, add_demo_acquisition
from siyu.acquisition.models import Arrival
from siyu.channels.demo import _account
from siyu.contacts import service as contacts
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
