"""Shared limits: the bucket rule as a property, and the same answers from every backend (this process's
memory, the database on SQLite and PostgreSQL, Redis) for buckets, blocks, concurrency slots and tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.channels import ratelimit
from siyu.channels.ratelimit import Bucket, DatabaseBackend, LocalBackend, RedisBackend, step
from tests.support import REDIS_URL


@given(per_minute=st.integers(1, 50), per_hour=st.integers(1, 500),
       gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=200))
def test_a_bucket_never_lets_more_through_than_its_size_plus_what_time_refilled(per_minute, per_hour, gaps):
    b, now, taken, start = Bucket(), 1_000_000.0, 0, 1_000_000.0
    for gap in gaps:
        now += gap
        wait = step(b, now, per_minute, per_hour)
        assert wait >= 0
        if wait == 0:
            taken += 1
            elapsed = now - start
            assert taken <= per_minute + elapsed * per_minute / 60 + 1e-6
            assert taken <= per_hour + elapsed * per_hour / 3600 + 1e-6
        else:
            # Waiting as told is enough: the next call then goes through.
            assert step(Bucket(b.minute, b.hour, b.updated_at, b.blocked_until, False), now + wait + 1e-6,
                        per_minute, per_hour) == 0


@pytest.fixture
def redis_backend() -> Iterator[RedisBackend]:
    backend = RedisBackend(REDIS_URL, prefix=f"siyu-test:{secrets.token_hex(4)}:")
    try:
        backend.redis.ping()
    except Exception as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield backend
    for key in backend.redis.scan_iter(backend.prefix + "*"):
        backend.redis.delete(key)


@pytest.fixture(params=["local", "database", "redis"])
def backend(request, scope):
    if request.param == "local":
        return LocalBackend()
    if request.param == "database":
        return DatabaseBackend(scope)
    return request.getfixturevalue("redis_backend")


def test_every_backend_counts_the_same(backend):
    reference = LocalBackend()
    schedule = [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 20.0, 20.0, 20.1, 61.0, 61.0, 61.0]
    got = [backend.take("corp:api", 1000.0 + t, 3, 5) for t in schedule]
    want = [reference.take("corp:api", 1000.0 + t, 3, 5) for t in schedule]
    assert got == pytest.approx(want)
    assert got[:4] == [0.0, 0.0, 0.0, pytest.approx(19.5)]
    assert backend.take("other", 1000.0, 3, None) == 0.0  # keys are counted apart


def test_every_backend_blocks_and_caps_concurrency(backend):
    assert backend.block("corp:api", 1000.0, 60) == 0.0
    assert backend.take("corp:api", 1030.0, 100, None) == pytest.approx(30.0)
    assert backend.block("corp:api", 1030.0, 10) == pytest.approx(1060.0)  # a shorter block keeps the longer
    assert backend.take("corp:api", 1061.0, 100, None) == 0.0

    assert all(backend.acquire("corp:mark_tag", f"h{i}", 1000.0, 5, 30.0) for i in range(5))
    assert not backend.acquire("corp:mark_tag", "sixth", 1000.0, 5, 30.0)
    backend.release("corp:mark_tag", "h3")
    assert backend.acquire("corp:mark_tag", "sixth", 1001.0, 5, 30.0)


def test_every_backend_shares_a_token_until_it_is_refused(backend):
    now = ratelimit.clock.now().timestamp()
    assert backend.get_value("corp:token", now) is None
    backend.put_value("corp:token", "tok-1", now + 600)
    assert backend.get_value("corp:token", now) == "tok-1"
    backend.drop_value("corp:token", "tok-0")  # someone else's old token: ours stays
    assert backend.get_value("corp:token", now) == "tok-1"
    backend.drop_value("corp:token", "tok-1")
    assert backend.get_value("corp:token", now) is None


def test_waits_above_a_few_seconds_become_a_retryable_error(limits, frozen_now):
    import asyncio

    from siyu.channels.base import ChannelError

    asyncio.run(ratelimit.wait_turn("k", per_minute=1))
    with pytest.raises(ChannelError) as limited:
        asyncio.run(ratelimit.wait_turn("k", per_minute=1))
    assert (limited.value.code, limited.value.retryable, limited.value.retry_after) == ("rate_limited", True, 60.0)


def test_the_counters_live_in_redis_when_configured_else_in_postgresql_else_in_memory():
    assert isinstance(ratelimit._configured("redis://127.0.0.1:6379/0", "sqlite:///x.db"), RedisBackend)
    assert isinstance(ratelimit._configured(None, "postgresql+psycopg://u@h/db"), DatabaseBackend)
    assert isinstance(ratelimit._configured(None, "sqlite:///./var/siyu.db"), LocalBackend)
