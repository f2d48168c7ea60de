"""Fixtures of the Official Account tests: the published sample account, a running fake OA, the clock at
the published sample's timestamp, urgent jobs run on the test's own connection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from siyu.channels import service
from siyu.channels.wechat_oa import client, hooks, tokens
from siyu.core import clock, worker
from siyu.core.audit import Actor
from tests.servers import wechat_oa as fake_oa

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")
SAMPLE_TS = 1409304348


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    tokens.forget_all()
    yield
    tokens.forget_all()


@pytest.fixture
def fake() -> Iterator[tuple[fake_oa.FakeOA, str]]:
    with fake_oa.running() as running:
        yield running


@pytest.fixture
def sample_clock() -> clock.FrozenClock:
    """The clock at the published sample's timestamp, so its signed pushes are fresh."""
    c = clock.FrozenClock(datetime.fromtimestamp(SAMPLE_TS, UTC))
    clock.set_clock(c)
    return c


@pytest.fixture
def oa(db, ws, fake):
    """A safe-mode account with the published Token, EncodingAESKey and AppID, calling the fake OA."""
    _, base_url = fake
    return service.create_account(
        db, kind="wechat_oa", name="Shop OA",
        config={"app_id": fake_oa.APP_ID, "mode": "safe", "api_base": base_url},
        secrets={"app_secret": fake_oa.APP_SECRET, "token": fake_oa.TOKEN, "encoding_aes_key": fake_oa.AES_KEY},
        actor=ACTOR,
    )


@pytest.fixture
def urgent_on_test_connection(scope, monkeypatch):
    """The callback's background run of urgent jobs, on the test's connection; the ids it was given."""
    seen: list[list[int]] = []

    def run(job_ids: list[int]) -> list[str | None]:
        seen.append(list(job_ids))
        return worker.run_now(job_ids, sessions=scope)

    monkeypatch.setattr(hooks, "run_urgent", run)
    return seen


@pytest.fixture
def quick_timeout(monkeypatch):
    monkeypatch.setattr(client, "TIMEOUT_SECONDS", 0.3)


def post(client_, account_id: int, body: str, query: dict[str, str]):
    return client_.post(f"/hooks/wechat-oa/{account_id}", params=query, content=body.encode(),
                        headers={"Content-Type": "text/xml"})




@pytest.fixture
def api_key(db, ws, make_key) -> dict[str, str]:
    """An all-scopes key of the test's workspace, the test session bound to it again."""
    from siyu.core.tenancy import bind_workspace
    from tests.conftest import bearer

    headers = bearer(make_key(ws))
    bind_workspace(db, ws.id)
    return headers
