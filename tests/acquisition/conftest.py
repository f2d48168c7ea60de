"""Fixtures of the acquisition tests: those of the channels tests (a bound workspace, running jobs, shared
limits of the test's own) and of the WeCom tests (the local WeCom server, an account pointing at it),
fixed rotation draws, staff with WeCom userids and a source."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from siyu.acquisition import arrivals, service
from siyu.contacts import staff as staff_service
from tests.channels.conftest import _person_resolver, frozen_now, limits, run_jobs, ws  # noqa: F401
from tests.channels.wecom.conftest import ACTOR, account, fake, hooks_app, wecom_url  # noqa: F401


@pytest.fixture(autouse=True)
def _draws() -> Iterator[None]:
    arrivals.set_draw(lambda: 0.0)
    yield
    arrivals.set_draw(None)


@pytest.fixture
def staff(db, ws):  # noqa: F811
    return [staff_service.create_staff(db, name=n, wecom_userid=u, actor=ACTOR)
            for n, u in (("Zhang San", "zhangsan"), ("Li Si", "lisi"), ("Wang Wu", "wangwu"))]


@pytest.fixture
def source(db, ws):  # noqa: F811
    return service.create_source(db, name="Parcel cards", type="parcel_card", currency="CNY",
                                 cost_model={"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000},
                                 actor=ACTOR)
