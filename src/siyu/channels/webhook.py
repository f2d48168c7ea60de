"""Webhook channel: messages and events POSTed as JSON to the brand's own endpoint, signed.

Every request carries `X-Siyu-Timestamp` (Unix seconds), `X-Siyu-Signature: v1=<hex>` — HMAC-SHA256
with the account's secret over `"<timestamp>.<body>"` — and `Idempotency-Key`. A receiver checks the
signature in constant time and refuses timestamps older than five minutes (`verify`), and dedupes on
the key, which is why a send whose outcome is unknown (a timeout) may be repeated safely.
Answers: 2xx sent; 408, 429 and 5xx retried with backoff (after Retry-After when given); other 4xx fail
the message with the endpoint's reason.

A webhook account may also subscribe to siyu's events (config `events`): `siyu.channels.webhook_events`
POSTs each matching event, signed the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import weakref
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import httpx

from siyu.channels.base import ChannelError, ConfigField, PlatformRules, SendResult, register_adapter
from siyu.channels.models import ChannelAccount
from siyu.core import clock
from siyu.core.errors import Invalid

TOLERANCE_SECONDS = 300
TIMEOUT_SECONDS = 10.0


def N_(message: str) -> str:
    return message


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Siyu-Signature` value of a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (replays refused)."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def signed_headers(secret: str, body: bytes, idempotency_key: str) -> dict[str, str]:
    """The headers of one signed request."""
    timestamp = str(int(clock.now().timestamp()))
    return {"Content-Type": "application/json", "X-Siyu-Timestamp": timestamp,
            "X-Siyu-Signature": sign(secret, timestamp, body), "Idempotency-Key": idempotency_key,
            "User-Agent": "siyu-webhook/1"}


# Weak keys: a finished thread's loop takes its pool with it, and a new loop never inherits a dead one's
# (keyed by id(), a new loop could reuse a collected loop's id and get connections bound to that loop).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def http_client() -> httpx.AsyncClient:
    """One connection pool per event loop (the worker keeps one loop per thread), shared by the channels
    that speak HTTP (webhooks, SMS, the Official Account, WeCom); pass `timeout=` per request to differ
    from the default."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
    return client


async def post_signed(url: str, secret: str, payload: Mapping[str, Any], idempotency_key: str) -> httpx.Response:
    """POST a signed JSON payload; ChannelError on a failure, saying whether to retry."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    try:
        response = await http_client().post(url, content=body, headers=signed_headers(secret, body, idempotency_key))
    except httpx.TimeoutException as exc:
        # The endpoint dedupes on the idempotency key: trying again is safe.
        raise ChannelError("timeout", f"no answer from {urlsplit(url).netloc} in time", retryable=True) from exc
    except httpx.HTTPError as exc:
        raise ChannelError("unreachable", f"{type(exc).__name__}: {exc}", retryable=True) from exc
    if response.status_code in (408, 429) or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After", "")
        raise ChannelError(str(response.status_code), f"the endpoint answered {response.status_code}",
                           retryable=True, retry_after=float(retry_after) if retry_after.isdigit() else None)
    if response.status_code >= 300:
        raise ChannelError(str(response.status_code),
                           f"the endpoint refused it ({response.status_code}): {response.text[:200]}")
    return response


def check_url(url: Any, field: str = "url") -> str:
    """An http(s) URL with a host."""
    parts = urlsplit(str(url or ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("an http:// or https:// URL", field=field)
    return str(url)


MAX_PATTERNS = 50
PATTERN = re.compile(r"^[a-z0-9_*][a-z0-9_.*-]{0,79}$")


def patterns_of(config: Mapping[str, Any]) -> list[str]:
    """The event types an account subscribes to (config `events`: a list, or one comma-separated line)."""
    value = config.get("events") or []
    if isinstance(value, str):
        value = [p.strip() for p in value.replace(",", " ").split()]
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


def check_patterns(config: Mapping[str, Any], field: str = "config.events") -> None:
    """Event types or patterns (`order.paid`, `order.*`, `*`); none subscribes to no events."""
    value = config.get("events")
    if value is not None and not isinstance(value, (list, str)):
        raise Invalid("a list of event types or patterns", field=field)
    patterns = patterns_of(config)
    if len(patterns) > MAX_PATTERNS or (isinstance(value, list) and len(patterns) != len(value)):
        raise Invalid(f"a list of at most {MAX_PATTERNS} event types or patterns", field=field)
    for n, item in enumerate(patterns):
        if not PATTERN.match(item):
            raise Invalid("an event type or a pattern such as order.* (lower case, digits, _ . * -)",
                          field=f"{field}.{n}")


def subscribes(patterns: Sequence[str], event_type: str) -> bool:
    """True when an account with these patterns wants events of this type."""
    return any(fnmatchcase(event_type, p) for p in patterns)


class WebhookAdapter:
    kind = "webhook"
    label = N_("Webhook")
    rules = PlatformRules(identity_type="contact_id", consent_channel=None,
                          content_types=("text", "link", "image", "miniprogram"), sends_at_once=8)
    fields: tuple[ConfigField, ...] = (
        ConfigField("url", N_("Endpoint URL"), help=N_("siyu POSTs signed JSON here.")),
        ConfigField("secret", N_("Signing secret"), secret=True,
                    help=N_("Shared with the endpoint to check X-Siyu-Signature.")),
        ConfigField("events", N_("Event types"), required=False,
                    help=N_("Events to POST here, e.g. order.*, message.*, contact.merged; empty for none.")),
    )
    accepts_idempotency_key = True

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        check_url(config.get("url"), "config.url")
        check_patterns(config)
        if len(str(secrets.get("secret") or "")) < 16:
            raise Invalid("a signing secret of at least 16 characters", field="secrets.secret")

    async def check_connection(self, account: ChannelAccount) -> str:
        payload = {"type": "ping", "account": account.name, "sent_at": clock.now().isoformat()}
        response = await post_signed(account.config["url"], account.secrets["secret"], payload,
                                     f"ping:{account.id}:{int(clock.now().timestamp())}")
        return f"HTTP {response.status_code}"

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        payload = {"type": "message", "contact_id": int(address) if address.isdigit() else address,
                   "content": dict(content), "idempotency_key": idempotency_key,
                   "sent_at": clock.now().isoformat()}
        response = await post_signed(account.config["url"], account.secrets["secret"], payload, idempotency_key)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        external = answer.get("id") if isinstance(answer, dict) else None
        return SendResult(external_id=str(external) if external is not None else None)


ADAPTER = register_adapter(WebhookAdapter())
