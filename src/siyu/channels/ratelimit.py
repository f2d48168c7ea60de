"""Platform limits shared by every worker and process: token buckets, concurrency caps, blocks, tokens.

A platform counts calls per corp (or account) and API, whichever of our processes makes them, so the
counters live where every process sees them: Redis when `SIYU_REDIS_URL` is set (one Lua script per
step, atomic), else the database's `channel_shared_state` table (one row per key, locked while it
changes). On SQLite siyu runs one worker process, whose threads share the process's own memory: a
second connection there would wait on the job's own write lock.

`take(key, per_minute=, per_hour=)` takes one call from the key's buckets and answers 0, or how many
seconds to wait (nothing taken). `block(key, seconds)` stops every caller of a key (a platform that
said "too many calls" blocks for 60 s or 60 min). `concurrently(key, limit=)` holds one of `limit`
slots (WeCom's `mark_tag`: 5 at once per corp). The access-token cache lives here too, so one token
serves every worker until it expires.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Float, String, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from siyu.channels.base import ChannelError
from siyu.core import clock
from siyu.core.db import Base, Json
from siyu.settings import get_settings

# Waits up to this long are slept through; longer ones become a retryable ChannelError.
MAX_WAIT_SECONDS = 3.0
SLOT_LEASE_SECONDS = 30.0


class SharedState(Base):
    """One limited key (a corp + API, an account): its buckets, block, concurrency holders, or a token.

    Not a workspace's row: a platform's limits are the corp's, whichever workspaces configured it.
    """

    __tablename__ = "channel_shared_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    minute_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    hour_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)
    holders: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    value: Mapped[str | None] = mapped_column(Text, default=None)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)


@dataclass
class Bucket:
    """A key's two buckets at `updated_at`; `fresh` until its first call."""

    minute: float = 0.0
    hour: float = 0.0
    updated_at: float = 0.0
    blocked_until: float = 0.0
    fresh: bool = True


def step(b: Bucket, now: float, per_minute: int | None, per_hour: int | None) -> float:
    """Refill `b` to `now` and take one call: 0.0, or the seconds to wait (then nothing is taken)."""
    pm, ph = per_minute or 0, per_hour or 0
    if b.fresh:
        b.minute, b.hour, b.updated_at, b.fresh = float(pm), float(ph), now, False
    elapsed = max(0.0, now - b.updated_at)
    if pm:
        b.minute = min(float(pm), b.minute + elapsed * pm / 60.0)
    if ph:
        b.hour = min(float(ph), b.hour + elapsed * ph / 3600.0)
    b.updated_at = max(b.updated_at, now)
    if b.blocked_until > now:
        return b.blocked_until - now
    wait = 0.0
    if pm and b.minute < 1:
        wait = max(wait, (1 - b.minute) * 60.0 / pm)
    if ph and b.hour < 1:
        wait = max(wait, (1 - b.hour) * 3600.0 / ph)
    if wait == 0.0:
        b.minute -= 1 if pm else 0
        b.hour -= 1 if ph else 0
    return wait


def _live(holders: dict[str, Any], now: float) -> dict[str, float]:
    return {h: float(until) for h, until in holders.items() if float(until) > now}


class Backend(Protocol):
    """Where the shared counters live."""

    def take(self, key: str, now: float, per_minute: int | None, per_hour: int | None) -> float: ...

    def block(self, key: str, now: float, seconds: float) -> float:
        """Block the key until now + seconds; returns the previous block's end (0.0: none)."""

    def acquire(self, key: str, holder: str, now: float, limit: int, lease: float) -> bool: ...

    def release(self, key: str, holder: str) -> None: ...

    def get_value(self, key: str, now: float) -> str | None: ...

    def put_value(self, key: str, value: str, expires_at: float) -> None: ...

    def drop_value(self, key: str, value: str) -> None:
        """Forget the key's value if it is still `value` (a refresher may have replaced it already)."""


class LocalBackend:
    """The process's memory, behind a lock: one process (SQLite's one worker), or tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}
        self._holders: dict[str, dict[str, float]] = {}
        self._values: dict[str, tuple[str, float]] = {}

    def take(self, key: str, now: float, per_minute: int | None, per_hour: int | None) -> float:
        with self._lock:
            return step(self._buckets.setdefault(key, Bucket()), now, per_minute, per_hour)

    def block(self, key: str, now: float, seconds: float) -> float:
        with self._lock:
            b = self._buckets.setdefault(key, Bucket())
            previous, b.blocked_until = b.blocked_until, max(b.blocked_until, now + seconds)
            return previous

    def acquire(self, key: str, holder: str, now: float, limit: int, lease: float) -> bool:
        with self._lock:
            live = _live(self._holders.get(key, {}), now)
            ok = len(live) < limit
            if ok:
                live[holder] = now + lease
            self._holders[key] = live
            return ok

    def release(self, key: str, holder: str) -> None:
        with self._lock:
            self._holders.get(key, {}).pop(holder, None)

    def get_value(self, key: str, now: float) -> str | None:
        with self._lock:
            value, expires_at = self._values.get(key, ("", 0.0))
            return value if value and expires_at > now else None

    def put_value(self, key: str, value: str, expires_at: float) -> None:
        with self._lock:
            self._values[key] = (value, expires_at)

    def drop_value(self, key: str, value: str) -> None:
        with self._lock:
            if self._values.get(key, ("", 0.0))[0] == value:
                self._values.pop(key, None)


SessionFactory = Any  # () -> context manager of a Session, committed at its end


class DatabaseBackend:
    """The `channel_shared_state` table: each step locks the key's row in a short transaction of its own."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    def _row(self, session: Session, key: str) -> SharedState:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(insert(SharedState).values(key=key, minute_tokens=0.0, hour_tokens=0.0, updated_at=0.0,
                                                   blocked_until=0.0, holders={}, expires_at=0.0)
                        .on_conflict_do_nothing(index_elements=["key"]))
        row = session.execute(select(SharedState).where(SharedState.key == key).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one()
        return row

    def _scope(self) -> AbstractContextManager[Session]:
        return self.sessions()  # type: ignore[no-any-return]

    def take(self, key: str, now: float, per_minute: int | None, per_hour: int | None) -> float:
        with self._scope() as session:
            row = self._row(session, key)
            b = Bucket(row.minute_tokens, row.hour_tokens, row.updated_at, row.blocked_until,
                       fresh=row.updated_at == 0.0)
            wait = step(b, now, per_minute, per_hour)
            row.minute_tokens, row.hour_tokens, row.updated_at = b.minute, b.hour, b.updated_at
            return wait

    def block(self, key: str, now: float, seconds: float) -> float:
        with self._scope() as session:
            row = self._row(session, key)
            previous = row.blocked_until
            row.blocked_until = max(previous, now + seconds)
            return previous

    def acquire(self, key: str, holder: str, now: float, limit: int, lease: float) -> bool:
        with self._scope() as session:
            row = self._row(session, key)
            live = _live(row.holders or {}, now)
            ok = len(live) < limit
            if ok:
                live[holder] = now + lease
            row.holders = live
            return ok

    def release(self, key: str, holder: str) -> None:
        with self._scope() as session:
            row = self._row(session, key)
            row.holders = {h: t for h, t in (row.holders or {}).items() if h != holder}

    def get_value(self, key: str, now: float) -> str | None:
        with self._scope() as session:
            row = session.execute(select(SharedState).where(SharedState.key == key)).scalar_one_or_none()
            return row.value if row is not None and row.value and row.expires_at > now else None

    def put_value(self, key: str, value: str, expires_at: float) -> None:
        with self._scope() as session:
            row = self._row(session, key)
            row.value, row.expires_at = value, expires_at

    def drop_value(self, key: str, value: str) -> None:
        with self._scope() as session:
            row = self._row(session, key)
            if row.value == value:
                row.value, row.expires_at = None, 0.0


_TAKE = """
local s = redis.call('HMGET', KEYS[1], 'm', 'h', 't', 'b')
local now, pm, ph = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = tonumber(s[3])
local m, h, b = tonumber(s[1]) or pm, tonumber(s[2]) or ph, tonumber(s[4]) or 0
if t == nil then t = now end
local e = math.max(0, now - t)
if pm > 0 then m = math.min(pm, m + e * pm / 60) end
if ph > 0 then h = math.min(ph, h + e * ph / 3600) end
local wait = 0
if b > now then wait = b - now else
  if pm > 0 and m < 1 then wait = math.max(wait, (1 - m) * 60 / pm) end
  if ph > 0 and h < 1 then wait = math.max(wait, (1 - h) * 3600 / ph) end
  if wait == 0 then
    if pm > 0 then m = m - 1 end
    if ph > 0 then h = h - 1 end
  end
end
redis.call('HSET', KEYS[1], 'm', tostring(m), 'h', tostring(h), 't', tostring(math.max(t, now)), 'b', tostring(b))
redis.call('EXPIRE', KEYS[1], 7200 + math.max(0, math.ceil(b - now)))
return tostring(wait)
"""
_BLOCK = """
local now, seconds = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = tonumber(redis.call('HGET', KEYS[1], 'b')) or 0
redis.call('HSET', KEYS[1], 'b', tostring(math.max(b, now + seconds)))
redis.call('EXPIRE', KEYS[1], 7200 + math.ceil(seconds))
return tostring(b)
"""
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
  return 1
end
return 0
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """Redis: each step is one Lua script, so concurrent callers never interleave inside it."""

    def __init__(self, url: str, prefix: str = "siyu:limits:") -> None:
        import redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self._take = self.redis.register_script(_TAKE)
        self._block = self.redis.register_script(_BLOCK)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._drop = self.redis.register_script(_DROP)

    def take(self, key: str, now: float, per_minute: int | None, per_hour: int | None) -> float:
        return float(self._take(keys=[self.prefix + key], args=[repr(now), per_minute or 0, per_hour or 0]))

    def block(self, key: str, now: float, seconds: float) -> float:
        return float(self._block(keys=[self.prefix + key], args=[repr(now), repr(float(seconds))]))

    def acquire(self, key: str, holder: str, now: float, limit: int, lease: float) -> bool:
        return bool(self._acquire(keys=[self.prefix + key + ":slots"], args=[repr(now), limit, repr(lease), holder]))

    def release(self, key: str, holder: str) -> None:
        self.redis.zrem(self.prefix + key + ":slots", holder)

    def get_value(self, key: str, now: float) -> str | None:
        raw = self.redis.get(self.prefix + key + ":value")
        return raw.decode() if isinstance(raw, bytes) else None

    def put_value(self, key: str, value: str, expires_at: float) -> None:
        ttl_ms = int((expires_at - clock.now().timestamp()) * 1000)
        if ttl_ms > 0:
            self.redis.set(self.prefix + key + ":value", value, px=ttl_ms)

    def drop_value(self, key: str, value: str) -> None:
        self._drop(keys=[self.prefix + key + ":value"], args=[value])


_LOCAL = LocalBackend()
_override: Backend | None = None
_flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()
_flights_lock = threading.Lock()


def single_flight(key: str) -> asyncio.Lock:
    """This event loop's lock for `key`: the concurrent sends of a batch that would each fetch the same
    access token take turns, and the ones after the first find its token instead of fetching again
    (other processes share it through the cache)."""
    loop = asyncio.get_running_loop()
    with _flights_lock:
        return _flights.setdefault(loop, {}).setdefault(key, asyncio.Lock())


@lru_cache
def _configured(redis_url: str | None, database_url: str) -> Backend:
    if redis_url:
        return RedisBackend(redis_url)
    if database_url.startswith("postgresql"):
        from siyu.core.db import session_scope

        return DatabaseBackend(session_scope)
    return _LOCAL


def backend() -> Backend:
    """Where this process keeps the shared counters (see the module's docstring)."""
    if _override is not None:
        return _override
    settings = get_settings()
    return _configured(settings.redis_url, settings.database_url)


def use(chosen: Backend | None) -> None:
    """Use this backend in this process (tests, benchmarks); None goes back to the configured one."""
    global _override
    _override = chosen


def take(key: str, *, per_minute: int | None = None, per_hour: int | None = None) -> float:
    """Take one call from `key`'s buckets: 0.0, or the seconds to wait before trying again."""
    return backend().take(key, clock.now().timestamp(), per_minute, per_hour)


def block(key: str, seconds: float) -> float:
    """Stop every caller of `key` for `seconds`; the previous block's end (Unix seconds, 0.0: none)."""
    return backend().block(key, clock.now().timestamp(), seconds)


async def wait_turn(key: str, *, per_minute: int | None = None, per_hour: int | None = None,
                    max_wait: float = MAX_WAIT_SECONDS) -> None:
    """Take one call, sleeping through a short wait; a longer one raises a retryable ChannelError."""
    slept = 0.0
    while (wait := take(key, per_minute=per_minute, per_hour=per_hour)) > 0:
        if slept + wait > max_wait:
            raise ChannelError("rate_limited", f"the platform's limit for {key} is used up; next call in "
                               f"{wait:.0f} s", retryable=True, retry_after=wait)
        await asyncio.sleep(wait)
        slept += wait


@asynccontextmanager
async def concurrently(key: str, *, limit: int, max_wait: float = MAX_WAIT_SECONDS,
                       lease: float = SLOT_LEASE_SECONDS) -> AsyncIterator[None]:
    """Hold one of `limit` slots of `key` while the block runs (a crashed holder's slot ends with its lease)."""
    holder = secrets.token_hex(8)
    waited = 0.0
    while not backend().acquire(key, holder, clock.now().timestamp(), limit, lease):
        if waited >= max_wait:
            raise ChannelError("concurrency_limit", f"{limit} calls of {key} are already running",
                               retryable=True, retry_after=1.0)
        await asyncio.sleep(0.05)
        waited += 0.05
    try:
        yield
    finally:
        backend().release(key, holder)


def cached_value(key: str) -> str | None:
    """A shared value (an access token) until it expires."""
    return backend().get_value(key, clock.now().timestamp())


def cache_value(key: str, value: str, *, ttl: float) -> None:
    """Share a value with every process for `ttl` seconds."""
    backend().put_value(key, value, clock.now().timestamp() + ttl)


def drop_value(key: str, value: str) -> None:
    """Forget a shared value the platform refused, unless another process already replaced it."""
    backend().drop_value(key, value)
