"""Access tokens, fetched once and shared: this process's memory, then Redis when configured (else the
database), then the platform.

The Official Account allows 2,000 token fetches a day and a new token retires the old one within five
minutes, so every worker and server process reads the same cached token and replaces it only shortly
before it expires, or when the platform refused it (then only if nobody replaced it meanwhile).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, object_session

from siyu.channels.models import ChannelAccount
from siyu.channels.ratelimit import single_flight
from siyu.channels.wechat_oa.models import AccessToken
from siyu.core import clock
from siyu.settings import get_settings

# A token this close to its expiry is replaced before use.
REFRESH_MARGIN = timedelta(minutes=5)
Fetch = Callable[[], Awaitable[tuple[str, int]]]
Cached = tuple[str, datetime]

_memory: dict[tuple[int, str], Cached] = {}
# One Redis client per event loop (a client is bound to the loop it was made on); weak, so a closed
# loop's client goes with it and a new loop never finds a dead loop's client under a reused id().
_redis: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def fingerprint(*parts: str) -> str:
    """Ties a token to the credentials and endpoint it was fetched with."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def forget_all() -> None:
    """Drop this process's copies (tests; a secret rotated by hand)."""
    _memory.clear()


def _fresh(cached: Cached | None) -> bool:
    return cached is not None and cached[1] - REFRESH_MARGIN > clock.now()


def _redis_client() -> Any:
    import redis.asyncio

    loop = asyncio.get_running_loop()
    client = _redis.get(loop)
    if client is None:
        client = _redis[loop] = redis.asyncio.from_url(get_settings().redis_url or "")
    return client


def _redis_key(account: ChannelAccount, fp: str) -> str:
    return f"siyu:access_token:{account.id}:{fp}"


async def _load(account: ChannelAccount, fp: str) -> Cached | None:
    if get_settings().redis_url:
        raw = await _redis_client().get(_redis_key(account, fp))
        if raw is None:
            return None
        data = json.loads(raw)
        return data["token"], datetime.fromisoformat(data["expires_at"])
    session = object_session(account)
    if session is None:
        return None
    row = session.execute(select(AccessToken).where(AccessToken.account_id == account.id)).scalar_one_or_none()
    if row is None or row.fingerprint != fp:
        return None
    return row.token, row.expires_at


def _upsert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def _save(account: ChannelAccount, fp: str, token: str, expires_at: datetime) -> None:
    if get_settings().redis_url:
        ttl = max(1, int((expires_at - clock.now()).total_seconds()))
        value = json.dumps({"token": token, "expires_at": expires_at.isoformat()})
        await _redis_client().set(_redis_key(account, fp), value, ex=ttl)
        return
    session = object_session(account)
    if session is None:
        return
    values = {"fingerprint": fp, "token": token, "expires_at": expires_at, "fetched_at": clock.now()}
    stmt = _upsert(session)(AccessToken).values(workspace_id=account.workspace_id, account_id=account.id, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["account_id"], set_=values))


async def token_for(account: ChannelAccount, fp: str, fetch: Fetch, *, refused: str | None = None,
                    fetch_new: bool = False) -> str:
    """A usable token of the account. `refused`: the token the platform just refused — replaced unless
    another process already put a different one in the shared cache. `fetch_new`: ask the platform now
    (a connection test) and share what it gives, as a new token retires the old one within minutes."""
    key = (account.id, fp)
    cached = _memory.get(key)
    if not fetch_new and refused is None and _fresh(cached):
        return cached[0]  # type: ignore[index]
    async with single_flight(f"wechat_oa:{account.id}:{fp}"):
        cached = _memory.get(key)  # a send of the same batch may have replaced it meanwhile
        if not fetch_new and _fresh(cached) and cached is not None and cached[0] != refused:
            return cached[0]
        shared = None if fetch_new else await _load(account, fp)
        if _fresh(shared) and shared is not None and shared[0] != refused:
            _memory[key] = shared
            return shared[0]
        token, expires_in = await fetch()
        expires_at = clock.now() + timedelta(seconds=max(0, expires_in))
        _memory[key] = (token, expires_at)
        await _save(account, fp, token, expires_at)
        return token
