"""Fixtures of the WeCom tests: the local WeCom server, accounts pointing at it, limits of their own."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from siyu.channels import service as channels
from siyu.channels.wecom import callbacks
from siyu.core.audit import Actor
from tests.servers import serve
from tests.servers.wecom import AES_KEY, CORP_ID, OPEN_KFID, SECRET, TOKEN, FakeWeCom

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom()


@pytest.fixture
def wecom_url(fake: FakeWeCom) -> Iterator[str]:
    with serve(fake.app()) as base:
        yield base


def _settings(api_base: str, **config: str) -> tuple[dict[str, str], dict[str, str]]:
    return ({"corp_id": CORP_ID, "api_base": api_base, **config},
            {"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY})


@pytest.fixture
def account(db, ws, wecom_url):
    config, secrets = _settings(wecom_url, agent_id="1000002")
    return channels.create_account(db, kind="wecom", name="Shop WeCom", config=config, secrets=secrets, actor=ACTOR)


@pytest.fixture
def kf_account(db, ws, wecom_url):
    config, secrets = _settings(wecom_url, open_kfid=OPEN_KFID)
    return channels.create_account(db, kind="wecom_kf", name="Shop service", config=config, secrets=secrets,
                                   actor=ACTOR)


@pytest.fixture
def hooks_app(app, scope):
    """The app, its callbacks' urgent jobs run inside the test's transaction."""
    app.dependency_overrides[callbacks.urgent_runner] = lambda: partial(callbacks.run_urgent, sessions=scope)
    return app
