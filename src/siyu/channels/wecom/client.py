"""The WeCom server API over httpx: access tokens shared by every worker, limits, errcodes.

Every call takes its turn in the corp's shared bucket for that API first (10,000 a minute and 150,000
an hour per corp and API), then carries the access token of the corp's app. A token the platform says
expired (42001, also 40014 and 41001) is dropped and fetched again, and the call retried once. 45009
(too many calls) blocks the API for every worker for 60 s, for 60 minutes when it comes again right
after a block; 45033 (too many at once), -1 (busy), 5xx and timeouts are retryable. A read timeout on
a call that is not idempotent raises `unknown`: it may have taken effect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from siyu.channels import ratelimit
from siyu.channels.base import ChannelError
from siyu.channels.webhook import http_client
from siyu.core import clock

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
TIMEOUT_SECONDS = 10.0
PER_MINUTE = 10_000
PER_HOUR = 150_000
# Refresh a token this long before the platform says it expires.
TOKEN_MARGIN_SECONDS = 300
BLOCK_MINUTE, BLOCK_HOUR = 60.0, 3600.0

TOKEN_EXPIRED = frozenset({42001, 40014, 41001})
FREQUENCY_LIMIT, CONCURRENCY_LIMIT, BUSY = 45009, 45033, -1
WELCOME_CODE_USED = 41051
# What an errcode means, for the message kept on a failed send and shown in the console.
MESSAGES: dict[int, str] = {
    -1: "WeCom is busy; try again shortly",
    40001: "the app's Secret is wrong",
    40003: "no such member userid",
    40013: "the CorpID is wrong",
    40014: "the access token is not valid",
    40056: "the AgentID is wrong",
    40058: "a parameter is not valid",
    40096: "no such external contact",
    41001: "the access token is missing",
    41051: "the welcome code was already used",
    42001: "the access token expired",
    45009: "too many calls to this API; WeCom blocks it for a while",
    45033: "too many calls to this API at once",
    48002: "the app may not call this API (check its permissions)",
    60011: "the app may not act for this member",
    60020: "siyu's IP address is not among the app's trusted IPs",
    60111: "no such member userid",
    84061: "this customer is not a contact of the member",
    95001: "the 5 messages allowed after the customer's last message are used",
    95018: "the customer's session does not allow sending now",
}

class RetryLater(Exception):
    """A job's retryable WeCom failure, handed to the worker with the wait WeCom asked for."""

    def __init__(self, error: ChannelError) -> None:
        super().__init__(f"{error.code}: {error}")
        self.retry_after = error.retry_after


def error_for(errcode: int, errmsg: str) -> ChannelError:
    """The ChannelError of an errcode, retryable or not."""
    text = MESSAGES.get(errcode, errmsg or "WeCom refused the call")
    if errcode == BUSY:
        return ChannelError(str(errcode), text, retryable=True, retry_after=5.0)
    if errcode == CONCURRENCY_LIMIT:
        return ChannelError(str(errcode), text, retryable=True, retry_after=1.0)
    if errcode == WELCOME_CODE_USED:
        return ChannelError(str(errcode), text, done=True)
    return ChannelError(str(errcode), f"{text} ({errmsg})" if errmsg and errcode in MESSAGES else text)


@dataclass(frozen=True)
class WeComClient:
    """The API of one app of one corp (a self-built app or WeChat Customer Service)."""

    corp_id: str
    secret: str
    api_base: str = DEFAULT_API_BASE

    @classmethod
    def of(cls, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> WeComClient:
        """The client of an account's settings."""
        return cls(str(config.get("corp_id", "")), str(secrets.get("secret", "")),
                   str(config.get("api_base") or DEFAULT_API_BASE).rstrip("/"))

    @property
    def token_key(self) -> str:
        # Per corp and app: each app's secret has its own token.
        return f"wecom:token:{self.corp_id}:{hashlib.sha256(self.secret.encode()).hexdigest()[:16]}"

    def limit_key(self, path: str) -> str:
        """The shared bucket of one API of this corp."""
        return f"wecom:{self.corp_id}:{path}"

    async def _request(self, method: str, path: str, *, params: dict[str, Any], body: Any,
                       idempotent: bool) -> dict[str, Any]:
        key = self.limit_key(path)
        await ratelimit.wait_turn(key, per_minute=PER_MINUTE, per_hour=PER_HOUR)
        try:
            response = await http_client().request(method, self.api_base + path, params=params, json=body,
                                             timeout=TIMEOUT_SECONDS)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ChannelError("unreachable", f"WeCom could not be reached: {type(exc).__name__}",
                               retryable=True) from exc
        except httpx.TimeoutException as exc:
            raise ChannelError("timeout", f"WeCom did not answer {path} in {TIMEOUT_SECONDS:g} s",
                               retryable=True, unknown=not idempotent) from exc
        except httpx.HTTPError as exc:
            raise ChannelError("unreachable", f"{type(exc).__name__}: {exc}", retryable=True,
                               unknown=not idempotent) from exc
        if response.status_code >= 500:
            raise ChannelError(str(response.status_code), f"WeCom answered HTTP {response.status_code}",
                               retryable=True)
        try:
            answer = response.json()
        except ValueError as exc:
            raise ChannelError("bad_answer", f"WeCom answered HTTP {response.status_code} without JSON",
                               retryable=True) from exc
        if not isinstance(answer, dict):
            raise ChannelError("bad_answer", "WeCom answered something other than a JSON object", retryable=True)
        errcode = int(answer.get("errcode") or 0)
        if errcode == FREQUENCY_LIMIT:
            previous = ratelimit.block(key, BLOCK_MINUTE)
            now = clock.now().timestamp()
            # Blocked again right after a minute's block ended: the hourly limit, which blocks an hour.
            seconds = BLOCK_HOUR if previous and now - previous < 2 * BLOCK_MINUTE else BLOCK_MINUTE
            if seconds == BLOCK_HOUR:
                ratelimit.block(key, BLOCK_HOUR)
            raise ChannelError(str(errcode), MESSAGES[errcode], retryable=True, retry_after=seconds)
        return answer

    async def token(self) -> str:
        """The app's access token, from the shared cache or fetched (and shared) now."""
        cached = ratelimit.cached_value(self.token_key)
        if cached:
            return cached
        async with ratelimit.single_flight(self.token_key):
            cached = ratelimit.cached_value(self.token_key)  # fetched meanwhile by a send of the same batch
            if cached:
                return cached
            answer = await self._request("GET", "/cgi-bin/gettoken", params={"corpid": self.corp_id,
                                         "corpsecret": self.secret}, body=None, idempotent=True)
            errcode = int(answer.get("errcode") or 0)
            if errcode:
                raise error_for(errcode, str(answer.get("errmsg", "")))
            token = str(answer.get("access_token") or "")
            if not token:
                raise ChannelError("bad_answer", "WeCom answered gettoken without a token", retryable=True)
            ttl = max(60.0, float(answer.get("expires_in") or 7200) - TOKEN_MARGIN_SECONDS)
            ratelimit.cache_value(self.token_key, token, ttl=ttl)
            return token

    async def call(self, path: str, body: Mapping[str, Any] | None = None, *, params: Mapping[str, Any] | None = None,
                   idempotent: bool = True) -> dict[str, Any]:
        """POST `body` (GET when None) to an API path; the answer, or ChannelError for any errcode."""
        method = "GET" if body is None else "POST"
        token = await self.token()
        answer = await self._request(method, path, params={**(params or {}), "access_token": token},
                                     body=dict(body) if body is not None else None, idempotent=idempotent)
        if int(answer.get("errcode") or 0) in TOKEN_EXPIRED:
            # Once: drop the refused token (unless another worker already replaced it), fetch, retry.
            ratelimit.drop_value(self.token_key, token)
            token = await self.token()
            answer = await self._request(method, path, params={**(params or {}), "access_token": token},
                                         body=dict(body) if body is not None else None, idempotent=idempotent)
        errcode = int(answer.get("errcode") or 0)
        if errcode:
            error = error_for(errcode, str(answer.get("errmsg", "")))
            error.retryable = error.retryable or errcode in TOKEN_EXPIRED
            raise error
        return answer
