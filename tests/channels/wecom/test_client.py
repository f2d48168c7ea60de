"""The WeCom API client against the local server: shared tokens, 42001 refreshed once, 45009 blocking every
caller, 45033 / -1 / 5xx / slow answers retryable, errcodes explained, mark_tag at most 5 at once."""

from __future__ import annotations

import asyncio

import pytest

from siyu.channels import ratelimit
from siyu.channels.base import ChannelError
from siyu.channels.service import run_async
from siyu.channels.wecom import client as wecom_client
from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.service import mark_tag_call
from tests.servers.wecom import CORP_ID, SECRET

GET = "/cgi-bin/externalcontact/get"
TOKEN = "/cgi-bin/gettoken"


@pytest.fixture
def api(wecom_url, fake) -> WeComClient:
    fake.contacts["wmA"] = {"external_contact": {"external_userid": "wmA", "name": "小红", "unionid": "ou-1"},
                            "follow_user": [{"userid": "lisi", "state": "poster"}]}
    return WeComClient(CORP_ID, SECRET, wecom_url)


def get(api: WeComClient) -> dict:
    return run_async(api.call(GET, params={"external_userid": "wmA"}))


def test_one_token_serves_every_client_of_the_app_until_it_expires_then_42001_refreshes_once(api, fake, wecom_url):
    assert get(api)["external_contact"]["name"] == "小红"
    assert get(WeComClient(CORP_ID, SECRET, wecom_url))["follow_user"][0]["state"] == "poster"
    assert len(fake.calls(TOKEN)) == 1

    fake.expire_tokens()
    assert get(api)["external_contact"]["unionid"] == "ou-1"
    assert len(fake.calls(TOKEN)) == 2
    assert len(fake.calls(GET)) == 4  # the refused call and its one retry

    fake.fail(GET, 42001, 42001)
    with pytest.raises(ChannelError) as twice:
        get(api)
    assert (twice.value.code, twice.value.retryable) == ("42001", True)


def test_concurrent_calls_fetch_one_token_and_refresh_an_expired_one_once(api, fake):
    async def five() -> list:
        return await asyncio.gather(*(api.call(GET, params={"external_userid": "wmA"}) for _ in range(5)))

    assert [a["external_contact"]["name"] for a in run_async(five())] == ["小红"] * 5
    assert len(fake.calls(TOKEN)) == 1
    fake.expire_tokens()
    assert [a["external_contact"]["name"] for a in run_async(five())] == ["小红"] * 5
    assert len(fake.calls(TOKEN)) == 2


def test_a_frequency_limit_blocks_every_caller_of_that_api_for_60_seconds(api, fake, frozen_now):
    fake.fail(GET, 45009)
    with pytest.raises(ChannelError) as limited:
        get(api)
    assert (limited.value.retryable, limited.value.retry_after) == (True, 60.0)

    calls = len(fake.calls(GET))
    with pytest.raises(ChannelError) as blocked:
        get(api)
    assert blocked.value.code == "rate_limited"
    assert len(fake.calls(GET)) == calls  # nobody asked WeCom during the block
    assert ratelimit.take(api.limit_key("/cgi-bin/kf/send_msg"), per_minute=10) == 0.0  # other APIs go on

    frozen_now.advance(seconds=61)
    fake.fail(GET, 45009)
    with pytest.raises(ChannelError) as hourly:
        get(api)
    assert hourly.value.retry_after == 3600.0  # blocked again right after a minute's block: the hourly limit
    frozen_now.advance(seconds=120)
    with pytest.raises(ChannelError):
        get(api)
    frozen_now.advance(seconds=3600)
    assert get(api)["external_contact"]["name"] == "小红"


@pytest.mark.parametrize(("fault", "code"), [(45033, "45033"), (-1, "-1"), (500, "502")])
def test_busy_concurrency_and_server_errors_are_retryable(api, fake, fault, code):
    fake.fail(GET, fault)
    with pytest.raises(ChannelError) as failed:
        get(api)
    assert (failed.value.code, failed.value.retryable, failed.value.unknown) == (code, True, False)
    assert get(api)["external_contact"]["name"] == "小红"


def test_a_slow_answer_is_retryable_and_unknown_when_the_call_is_not_idempotent(api, fake, monkeypatch):
    monkeypatch.setattr(wecom_client, "TIMEOUT_SECONDS", 0.2)
    fake.slow_seconds = 1.0
    get(api)  # the token first
    fake.fail(GET, "slow")
    with pytest.raises(ChannelError) as read:
        get(api)
    assert (read.value.code, read.value.retryable, read.value.unknown) == ("timeout", True, False)
    fake.fail("/cgi-bin/externalcontact/add_msg_template", "slow")
    with pytest.raises(ChannelError) as mass:
        run_async(api.call("/cgi-bin/externalcontact/add_msg_template", {"external_userid": ["wmA"]},
                           idempotent=False))
    assert (mass.value.retryable, mass.value.unknown) == (True, True)


def test_errcodes_are_explained_and_a_wrong_secret_is_not_retried(api, fake, wecom_url):
    fake.fail(GET, 60020)
    with pytest.raises(ChannelError) as ip:
        get(api)
    assert (ip.value.code, ip.value.retryable) == ("60020", False)
    assert "trusted IPs" in str(ip.value)
    with pytest.raises(ChannelError) as secret:
        run_async(WeComClient(CORP_ID, "wrong", wecom_url).token())
    assert secret.value.code == "40001"
    assert str(secret.value).startswith("the app's Secret is wrong (invalid credential")


def test_mark_tag_runs_at_most_five_at_once_per_corp(api, fake):
    async def many() -> None:
        await asyncio.gather(*(mark_tag_call(api, userid="lisi", external_userid=f"wm{i}", add=["etA"])
                               for i in range(12)))

    run_async(many())
    assert len(fake.tags) == 12
    assert fake.mark_tag_most <= 5


def test_the_concurrency_cap_refuses_a_sixth_holder_until_one_leaves(limits):
    key = "wecom:corp:mark_tag"
    holders = [f"h{i}" for i in range(5)]
    assert all(limits.acquire(key, h, 100.0, 5, 30.0) for h in holders)
    assert not limits.acquire(key, "sixth", 100.0, 5, 30.0)
    limits.release(key, "h0")
    assert limits.acquire(key, "sixth", 100.0, 5, 30.0)
    assert limits.acquire(key, "late", 131.0, 5, 30.0)  # the others' leases ended: a crashed holder frees its slot
    assert ratelimit.take("k", per_minute=1) == 0.0


def test_test_connection_fetches_a_token(db, account, kf_account, fake):
    from siyu.channels.base import adapter_for

    assert run_async(adapter_for("wecom").check_connection(account)) == "access token fetched"
    assert run_async(adapter_for("wecom_kf").check_connection(kf_account)) == "access token fetched"
    assert len(fake.calls(TOKEN)) == 1  # both accounts are the same app of the same corp: one shared token
