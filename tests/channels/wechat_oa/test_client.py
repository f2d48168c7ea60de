"""The OA API client against the local fake: the token cached and shared, refreshed and the call retried
once on 42001, frequency limits and 5xx retryable, a send's timeout unknown, the 48-hour window and its
5 messages, and the deliver job's outcome for each."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.channels import service
from siyu.channels.base import ChannelError, Inbound
from siyu.channels.models import AccountContact
from siyu.channels.wechat_oa import client, tokens
from siyu.channels.wechat_oa.adapter import ADAPTER
from siyu.channels.wechat_oa.models import AccessToken
from siyu.core.models import Job
from siyu.settings import get_settings
from tests.support import REDIS_URL

CUSTOM = "/cgi-bin/message/custom/send"
TOKEN = "/cgi-bin/token"


def _wrote(db, oa, key="m1", openid="oUser1"):
    """The person wrote to the account now: their window is open."""
    return service.receive(db, oa, Inbound(dedupe_key=key, sender=openid, kind="text", text="hi"))


def _send(oa, text="hello", address="oUser1"):
    return service.run_async(ADAPTER.send(oa, address, {"type": "text", "text": text}, idempotency_key="k"))


def test_the_token_is_fetched_once_kept_in_the_database_and_shared(db, oa, fake):
    server, _ = fake
    _wrote(db, oa)
    _send(oa)
    tokens.forget_all()  # another process: nothing in memory, the database has it
    _send(oa, "again")
    assert len(server.calls(TOKEN)) == 1
    row = db.execute(select(AccessToken)).scalar_one()
    assert row.account_id == oa.id
    assert row.token in server.tokens
    assert [s["text"]["content"] for s in server.sent] == ["hello", "again"]


def test_an_expired_token_is_refreshed_and_the_call_tried_once_more(db, oa, fake):
    server, _ = fake
    _wrote(db, oa)
    server.misbehave(CUSTOM, "expired")
    _send(oa)
    assert len(server.calls(TOKEN)) == 2
    assert len(server.calls(CUSTOM)) == 2
    assert len(server.sent) == 1

    server.misbehave(CUSTOM, "expired", "expired")
    with pytest.raises(ChannelError) as twice:
        _send(oa, "b")
    assert (twice.value.code, twice.value.retryable) == ("42001", False)
    assert len(server.calls(CUSTOM)) == 4  # one retry, never a loop


@pytest.mark.parametrize(("fault", "code", "after"), [
    ("frequency", "45009", None), ("minute", "45011", 60.0), ("busy", "-1", 5.0), ("5xx", "503", None),
])
def test_limits_busy_and_server_errors_are_retryable(db, oa, fake, fault, code, after):
    server, _ = fake
    _wrote(db, oa)
    server.misbehave(CUSTOM, fault)
    with pytest.raises(ChannelError) as err:
        _send(oa)
    assert (err.value.code, err.value.retryable, err.value.unknown) == (code, True, False)
    if after is not None:
        assert err.value.retry_after == after
    if fault == "frequency":
        assert 60 <= err.value.retry_after <= 24 * 3600  # until midnight in Beijing
    if fault in ("frequency", "minute"):
        # The quota is shared: every worker now waits without calling the platform again.
        calls = len(server.calls(CUSTOM))
        with pytest.raises(ChannelError) as held:
            _send(oa, "again")
        assert (held.value.code, held.value.retryable) == ("rate_limited", True)
        assert len(server.calls(CUSTOM)) == calls
    assert server.sent == []
    assert db.execute(select(AccountContact.sent_since_inbound)).scalar_one() == 0


def test_a_slow_answer_makes_a_send_unknown_and_a_read_retryable(db, oa, fake, quick_timeout):
    server, _ = fake
    server.slow_seconds = 1.0
    _wrote(db, oa)
    server.misbehave(CUSTOM, "slow")
    with pytest.raises(ChannelError) as send:
        _send(oa)
    assert (send.value.retryable, send.value.unknown) == (True, True)
    server.misbehave("/cgi-bin/menu/get", "slow")
    with pytest.raises(ChannelError) as read:
        service.run_async(client.get_menu(oa))
    assert (read.value.retryable, read.value.unknown) == (True, False)


def test_the_window_allows_five_sends_within_48_hours_of_the_last_message(db, oa, fake, frozen_now):
    server, _ = fake
    with pytest.raises(ChannelError) as never:
        _send(oa)
    assert never.value.code == "outside_window"
    _wrote(db, oa)
    for i in range(5):
        _send(oa, f"m{i}")
    with pytest.raises(ChannelError) as sixth:
        _send(oa, "m5")
    assert (sixth.value.code, sixth.value.retryable) == ("window_limit", False)
    _wrote(db, oa, key="m2")  # writing again opens a new window
    _send(oa, "m6")
    frozen_now.advance(hours=48, seconds=1)
    with pytest.raises(ChannelError) as late:
        _send(oa, "m7")
    assert late.value.code == "outside_window"
    assert len(server.sent) == 6


def test_the_deliver_job_fails_outside_the_window_and_parks_an_unknown_send(db, oa, fake, run_jobs, quick_timeout):
    server, _ = fake
    got = service.receive(db, oa, Inbound(dedupe_key="j", sender="oUser1", kind="event", event="joined"))
    row = db.execute(select(AccountContact)).scalar_one()
    row.last_inbound_at = None
    outside = service.queue_send(db, account=oa, contact_id=got.contact_id, content={"type": "text", "text": "x"},
                                 origin="t", idempotency_key="o1")
    run_jobs()
    failed = service.get_message(db, outside.id)
    assert failed.status == "failed"
    assert failed.error.startswith("outside_window")

    _wrote(db, oa)
    server.misbehave(CUSTOM, "slow")
    maybe = service.queue_send(db, account=oa, contact_id=got.contact_id, content={"type": "text", "text": "y"},
                               origin="t", idempotency_key="o2")
    run_jobs()
    assert db.execute(select(Job.status).where(Job.id == maybe.job_id)).scalar_one() == "unknown"
    assert len(server.calls(CUSTOM)) == 1


def test_content_types_map_to_the_platforms_messages(db, oa, fake):
    server, _ = fake
    _wrote(db, oa)
    for content in ({"type": "image", "media_id": "MEDIA"},
                    {"type": "link", "title": "T", "description": "D", "url": "https://x", "pic_url": "https://p"},
                    {"type": "miniprogram", "title": "M", "appid": "wxapp", "pagepath": "p/i", "thumb_media_id": "t"}):
        service.run_async(ADAPTER.send(oa, "oUser1", content, idempotency_key="k"))
    assert [s["msgtype"] for s in server.sent] == ["image", "news", "miniprogrampage"]
    assert server.sent[1]["news"]["articles"][0]["picurl"] == "https://p"
    for bad in ({"type": "image", "url": "https://x.jpg"}, {"type": "email"}, {"type": "text", "text": "长" * 1000}):
        with pytest.raises(ChannelError) as err:
            service.run_async(ADAPTER.send(oa, "oUser1", bad, idempotency_key="k"))
        assert err.value.code == "bad_content"


def test_bad_credentials_and_errcodes_read_as_words(db, oa, fake):
    oa.secrets = {**oa.secrets, "app_secret": "wrong"}
    with pytest.raises(ChannelError) as err:
        service.run_async(ADAPTER.check_connection(oa))
    assert (err.value.code, str(err.value)) == ("40125", "the AppSecret is invalid")
    assert client.error_for(40164, "invalid ip").args[0].startswith("this server's IP address")
    assert client.error_for(99999, "odd").args[0] == "odd (99999)"


def test_with_redis_the_token_is_shared_through_redis(db, oa, fake, monkeypatch):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    monkeypatch.setenv("SIYU_REDIS_URL", REDIS_URL)
    get_settings.cache_clear()
    server, _ = fake
    try:
        token = service.run_async(client.access_token(oa))
        tokens.forget_all()
        assert service.run_async(client.access_token(oa)) == token
        assert len(server.calls(TOKEN)) == 1
        assert db.execute(select(AccessToken)).first() is None
        refreshed = service.run_async(client.access_token(oa, refused=token))
        assert refreshed != token
        assert len(server.calls(TOKEN)) == 2
    finally:
        store = redis.Redis.from_url(REDIS_URL)
        store.delete(*store.keys(f"siyu:access_token:{oa.id}:*") or ["none"])
        monkeypatch.delenv("SIYU_REDIS_URL")
        get_settings.cache_clear()


def test_a_connection_test_fetches_a_new_token_and_shares_it(db, oa, fake):
    server, _ = fake
    old = service.run_async(client.access_token(oa))
    assert service.run_async(ADAPTER.check_connection(oa)) == "access token fetched"
    new = db.execute(select(AccessToken.token)).scalar_one()
    assert new != old
    assert service.run_async(client.access_token(oa)) == new
    assert len(server.calls(TOKEN)) == 2


def test_a_token_near_its_expiry_is_replaced_before_use(db, oa, fake, frozen_now):
    server, _ = fake
    first = service.run_async(client.access_token(oa))
    frozen_now.advance(seconds=7200 - 200)
    assert service.run_async(client.access_token(oa)) != first
    assert len(server.calls(TOKEN)) == 2
    assert timedelta(seconds=7000) < db.execute(select(AccessToken.expires_at)).scalar_one() - frozen_now.current


def test_concurrent_sends_of_a_batch_fetch_one_token_and_replace_a_refused_one_once(db, oa, fake):
    server, _ = fake
    people = [f"oUser{i}" for i in range(4)]
    for i, openid in enumerate(people):
        _wrote(db, oa, key=f"w{i}", openid=openid)

    async def send_all(text: str) -> list:
        return await asyncio.gather(*(ADAPTER.send(oa, openid, {"type": "text", "text": text}, idempotency_key=openid)
                                      for openid in people))

    service.run_async(send_all("first"))
    assert len(server.calls(TOKEN)) == 1
    server.misbehave(CUSTOM, *["expired"] * len(people))
    service.run_async(send_all("second"))
    assert len(server.calls(TOKEN)) == 2  # the four refused sends share one new token
    assert sorted(s["text"]["content"] for s in server.sent) == ["first"] * 4 + ["second"] * 4
