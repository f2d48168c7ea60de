"""Fixtures of the acquisition tests: a bound workspace, staff with WeCom userids, the local WeCom and
Official Account servers with accounts pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from siyu.acquisition import arrivals, service
from siyu.channels import service as channels
from siyu.channels.wecom import callbacks
from siyu.contacts import staff as staff_service
from siyu.core.audit import Actor
from tests.channels.conftest import _person_resolver, frozen_now, limits, run_jobs, ws  # noqa: F401
from tests.servers import serve
from tests.servers.wecom import AES_KEY, CORP_ID, SECRET, TOKEN, FakeWeCom

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


@pytest.fixture(autouse=True)
def _draws() -> Iterator[None]:
    arrivals.set_draw(lambda: 0.0)
    yield
    arrivals.set_draw(None)


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom()


@pytest.fixture
def wecom_url(fake: FakeWeCom) -> Iterator[str]:
    with serve(fake.app()) as base:
        yield base


@pytest.fixture
def account(db, ws, wecom_url):  # noqa: F811
    return channels.create_account(
        db, kind="wecom", name="Shop WeCom", actor=ACTOR,
        config={"corp_id": CORP_ID, "api_base": wecom_url, "agent_id": "1000002"},
        secrets={"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY})


@pytest.fixture
def hooks_app(app, scope):
    app.dependency_overrides[callbacks.urgent_runner] = lambda: partial(callbacks.run_urgent, sessions=scope)
    return app


@pytest.fixture
def staff(db, ws):  # noqa: F811
    return [staff_service.create_staff(db, name=n, wecom_userid=u, actor=ACTOR)
            for n, u in (("Zhang San", "zhangsan"), ("Li Si", "lisi"), ("Wang Wu", "wangwu"))]


@pytest.fixture
def source(db, ws):  # noqa: F811
    return service.create_source(db, name="Parcel cards", type="parcel_card", currency="CNY",
                                 cost_model={"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000},
                                 actor=ACTOR)
