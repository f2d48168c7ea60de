"""Aliyun SMS (dysmsapi) over its RPC protocol: signed GET requests, JSON answers.

Signature (RPC, version 1.0): the parameters sorted by name, each key and value percent-encoded per
RFC 3986 (space %20, `*` %2A, `~` kept), joined with `&`; the string to sign is
`GET&%2F&` + percent-encode(that query); HMAC-SHA1 keyed with `AccessKeySecret + "&"`, base64.
`tests/contract/test_aliyun_signature.py` reproduces the worked example of Aliyun's documentation.

SendSms answers `{"Code": "OK", "BizId", "RequestId", "Message"}`; any other Code is a refusal. The
platform does not dedupe on OutId, so a send whose answer was lost is `unknown`, never repeated blindly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from siyu.channels.base import ChannelError
from siyu.channels.sms.pushes import AliyunPushes
from siyu.channels.webhook import http_client
from siyu.core import clock

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
DEFAULT_REGION = "cn-hangzhou"
VERSION = "2017-05-25"
TIMEOUT_SECONDS = 10.0
# Refusals worth trying again later: flow control and the platform's own trouble.
RETRYABLE = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling", "Throttling.User", "Throttling.Api",
             "ServiceUnavailable", "InternalError", "isp.SYSTEM_ERROR", "isp.RAM_PERMISSION_DENY_TEMP")


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's RPC signature wants it (unreserved characters kept, UTF-8)."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, encoded `key=value&...` string that is signed (and sent)."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def signature(params: Mapping[str, str], secret: str, method: str = "GET") -> str:
    """The `Signature` parameter of a request with these parameters (Signature itself excluded)."""
    mac = hmac.new((secret + "&").encode(), string_to_sign(params, method).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def verify(params: Mapping[str, str], secret: str, method: str = "GET") -> bool:
    """What the platform checks (our test server uses it): the Signature matches, in constant time."""
    given = params.get("Signature", "")
    rest = {k: v for k, v in params.items() if k != "Signature"}
    return hmac.compare_digest(signature(rest, secret, method), given)


def timestamp(at: datetime | None = None) -> str:
    return (at or clock.now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_params(action: str, params: Mapping[str, str], *, access_key_id: str, secret: str,
                  region: str = DEFAULT_REGION, nonce: str | None = None) -> dict[str, str]:
    """Common parameters + the action's, with the Signature added."""
    everything = {
        "AccessKeyId": access_key_id, "Action": action, "Format": "JSON", "RegionId": region,
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce or uuid.uuid4().hex,
        "SignatureVersion": "1.0", "Timestamp": timestamp(), "Version": VERSION, **params,
    }
    return {**everything, "Signature": signature(everything, secret)}


def retry_after_of(message: str) -> float:
    """How long Aliyun's flow control asks to wait, read from its message (minute, hour or day limits)."""
    lowered = message.lower()
    if "天" in message or "day" in lowered:
        return 86400.0
    if "小时" in message or "hour" in lowered:
        return 3600.0
    return 60.0


def aliyun_phone(phone: str) -> str:
    """The number as PhoneNumbers takes it: mainland numbers bare, others with their country code."""
    digits = phone.strip().replace(" ", "").replace("-", "")
    if digits.startswith("+86"):
        return digits[3:]
    if digits.startswith("+"):
        return digits[1:]
    return digits


class AliyunSms(AliyunPushes):
    """The Aliyun SMS provider of one account: signed calls out, and its pushes read (`AliyunPushes`)."""

    name = "aliyun"

    def __init__(self, *, access_key_id: str, access_key_secret: str, region: str = DEFAULT_REGION,
                 endpoint: str = DEFAULT_ENDPOINT) -> None:
        self.access_key_id, self.secret = access_key_id, access_key_secret
        self.region, self.endpoint = region or DEFAULT_REGION, (endpoint or DEFAULT_ENDPOINT).rstrip("/")

    async def call(self, action: str, params: Mapping[str, str], *, may_repeat: bool) -> dict[str, Any]:
        """One signed RPC call; the JSON answer when Code is OK, else ChannelError."""
        query = signed_params(action, params, access_key_id=self.access_key_id, secret=self.secret,
                              region=self.region)
        url = f"{self.endpoint}/?{canonical_query(query)}"
        host = urlsplit(self.endpoint).netloc
        try:
            response = await http_client().get(url, timeout=TIMEOUT_SECONDS)
        except httpx.ConnectError as exc:
            raise ChannelError("unreachable", f"could not reach {host}: {exc}", retryable=True) from exc
        except httpx.TimeoutException as exc:
            # The request may have been sent: only calls that change nothing are repeated.
            raise ChannelError("timeout", f"no answer from {host} in time", retryable=may_repeat,
                               unknown=not may_repeat) from exc
        except httpx.HTTPError as exc:
            raise ChannelError("unreachable", f"{type(exc).__name__}: {exc}", retryable=may_repeat,
                               unknown=not may_repeat) from exc
        try:
            answer = response.json()
        except (ValueError, json.JSONDecodeError):
            answer = None
        if not isinstance(answer, dict):
            if response.status_code >= 500:
                raise ChannelError(str(response.status_code), f"{host} answered {response.status_code}",
                                   retryable=True)
            raise ChannelError(str(response.status_code), f"{host} answered {response.status_code} without JSON")
        code, message = str(answer.get("Code", "")), str(answer.get("Message", ""))
        if code == "OK":
            return answer
        if code in RETRYABLE or response.status_code >= 500:
            wait = retry_after_of(message) if code == "isv.BUSINESS_LIMIT_CONTROL" else None
            raise ChannelError(code or str(response.status_code), message or "try again later", retryable=True,
                               retry_after=wait)
        raise ChannelError(code or str(response.status_code), message or "refused")

    async def send(self, phone: str, sign: str, template: str, params: Mapping[str, Any], out_id: str) -> str:
        """SendSms to one number; the BizId of the accepted message."""
        request = {"PhoneNumbers": aliyun_phone(phone), "SignName": sign, "TemplateCode": template,
                   "TemplateParam": json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")),
                   "OutId": out_id[:256]}
        answer = await self.call("SendSms", request, may_repeat=False)
        return str(answer.get("BizId") or "")

    async def check(self) -> str:
        """A harmless signed call: the account's signs list (QuerySmsSignList)."""
        answer = await self.call("QuerySmsSignList", {"PageIndex": "1", "PageSize": "10"}, may_repeat=True)
        return f"Aliyun SMS answered (RequestId {answer.get('RequestId', '?')})"
