"""The Official Account's HTTP API on httpx: tokens, one call wrapper that maps every failure to a
ChannelError, and the calls siyu uses (customer-service and template messages, QR codes, menus, users).

Failures: an expired or refused token (40001, 40014, 42001) is replaced and the call tried once more;
the frequency limits (45009 daily, 45011 per minute) and a busy system (-1), 5xx answers and timeouts
are retryable. A read timeout of a send is also `unknown`: the message may have gone out, and the
customer-service API has no idempotency key, so the deliver job must not repeat it by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from siyu.channels import ratelimit
from siyu.channels.base import ChannelError
from siyu.channels.models import ChannelAccount
from siyu.channels.webhook import http_client
from siyu.channels.wechat_oa import tokens
from siyu.core import clock

DEFAULT_API_BASE = "https://api.weixin.qq.com"
SHOW_QRCODE = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="
TIMEOUT_SECONDS = 10.0
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# The platform's daily quotas reset at midnight, Beijing time.
_BEIJING = ZoneInfo("Asia/Shanghai")
# The errcodes a person meets, in words (the platform's global return-code page).
ERRORS: dict[int, str] = {
    -1: "the platform is busy; try again later",
    40001: "the access token is invalid (check the AppSecret, or another system refreshed the token)",
    40003: "the openid does not belong to this account",
    40013: "the AppID is invalid",
    40014: "the access token is malformed",
    40037: "the template_id is invalid",
    40053: "the menu has an invalid action type",
    40125: "the AppSecret is invalid",
    40164: "this server's IP address is not on the account's IP allowlist",
    41001: "the access token is missing",
    42001: "the access token has expired",
    43004: "the person does not follow the account",
    43101: "the person refused subscription messages",
    45009: "the daily API quota is used up",
    45011: "the API is called too often; slow down",
    45015: "the person has not written to the account in the last 48 hours",
    45047: "more customer-service messages than allowed since the person last wrote",
    46003: "the account has no menu",
    47001: "the request's JSON or XML is malformed",
    48001: "the account is not authorised for this API (verified service accounts only)",
    61024: "the account has no such permission",
}
RETRY_AFTER = {45009: None, 45011: 60.0, -1: 5.0}


def api_base(account: ChannelAccount) -> str:
    """The API's base URL of an account (the platform's unless tests point it elsewhere)."""
    return str(account.config.get("api_base") or DEFAULT_API_BASE).rstrip("/")


def _fingerprint(account: ChannelAccount) -> str:
    return tokens.fingerprint(str(account.config.get("app_id", "")), str(account.secrets.get("app_secret", "")),
                              api_base(account))


def _until_beijing_midnight() -> float:
    local = clock.now().astimezone(_BEIJING)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=_BEIJING)
    return max(60.0, (midnight - local).total_seconds())


def error_for(errcode: int, errmsg: str) -> ChannelError:
    """The ChannelError of a platform errcode, saying whether and when to try again."""
    message = ERRORS.get(errcode, errmsg or "the platform refused the call")
    code = str(errcode)
    if errcode in (45009, 45011, -1):
        after = RETRY_AFTER[errcode] if errcode != 45009 else _until_beijing_midnight()
        return ChannelError(code, message, retryable=True, retry_after=after)
    if errcode == 45015:
        return ChannelError("outside_window", message)
    if errcode == 45047:
        return ChannelError("window_limit", message)
    return ChannelError(code, f"{message} ({errcode})" if errcode not in ERRORS else message)


async def _request(method: str, url: str, *, params: Mapping[str, Any], json: Any, sends: bool) -> dict[str, Any]:
    try:
        response = await http_client().request(method, url, params=params, json=json, timeout=TIMEOUT_SECONDS)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ChannelError("unreachable", f"the platform could not be reached: {type(exc).__name__}",
                           retryable=True) from exc
    except httpx.HTTPError as exc:
        # The request left: a send may have taken effect.
        raise ChannelError("timeout", f"no complete answer from the platform ({type(exc).__name__})",
                           retryable=True, unknown=sends) from exc
    if response.status_code >= 500:
        raise ChannelError(str(response.status_code), f"the platform answered HTTP {response.status_code}",
                           retryable=True)
    try:
        answer = response.json()
    except ValueError as exc:
        raise ChannelError("bad_answer", f"the platform answered HTTP {response.status_code} without JSON",
                           retryable=response.status_code == 429) from exc
    if not isinstance(answer, dict):
        raise ChannelError("bad_answer", "the platform's answer is not a JSON object")
    return answer


async def fetch_token(account: ChannelAccount) -> tuple[str, int]:
    """A new access token and its lifetime in seconds, from the AppID and AppSecret."""
    params = {"grant_type": "client_credential", "appid": account.config.get("app_id", ""),
              "secret": account.secrets.get("app_secret", "")}
    answer = await _request("GET", api_base(account) + "/cgi-bin/token", params=params, json=None, sends=False)
    if answer.get("errcode"):
        raise error_for(int(answer["errcode"]), str(answer.get("errmsg", "")))
    if not answer.get("access_token"):
        raise ChannelError("bad_answer", "the platform gave no access token")
    return str(answer["access_token"]), int(answer.get("expires_in", 7200))


async def access_token(account: ChannelAccount, *, refused: str | None = None, fetch_new: bool = False) -> str:
    """The account's current token (cached and shared; see `tokens`)."""
    return await tokens.token_for(account, _fingerprint(account), lambda: fetch_token(account), refused=refused,
                                  fetch_new=fetch_new)


async def call(account: ChannelAccount, path: str, *, method: str = "POST", json: Any = None,
               params: Mapping[str, Any] | None = None, sends: bool = False) -> dict[str, Any]:
    """One API call with the account's token; its answer, or ChannelError. A refused token is replaced
    and the call tried once more."""
    # A quota the platform says is used up (45009 until midnight, 45011 for a minute) stops every worker
    # calling this API of this account, through the shared limits (Redis or the database), not only us.
    limit_key = f"wechat_oa:{account.config.get('app_id', account.id)}:{path}"
    await ratelimit.wait_turn(limit_key)
    token = await access_token(account)
    for attempt in (1, 2):
        query = {**(params or {}), "access_token": token}
        answer = await _request(method, api_base(account) + path, params=query, json=json, sends=sends)
        errcode = int(answer.get("errcode") or 0)
        if errcode == 0:
            return answer
        if errcode in TOKEN_ERRORS and attempt == 1:
            token = await access_token(account, refused=token)
            continue
        error = error_for(errcode, str(answer.get("errmsg", "")))
        if errcode in (45009, 45011) and error.retry_after:
            ratelimit.block(limit_key, error.retry_after)
        raise error
    raise AssertionError("unreachable")


# --- the calls --------------------------------------------------------------------------------------


async def send_custom(account: ChannelAccount, message: Mapping[str, Any]) -> dict[str, Any]:
    """A customer-service message (`message/custom/send`)."""
    return await call(account, "/cgi-bin/message/custom/send", json=dict(message), sends=True)


async def send_template(account: ChannelAccount, message: Mapping[str, Any]) -> str:
    """A template message; its MsgID (the TEMPLATESENDJOBFINISH callback reports its delivery)."""
    answer = await call(account, "/cgi-bin/message/template/send", json=dict(message), sends=False)
    return str(answer.get("msgid", ""))


async def create_qrcode(account: ChannelAccount, scene: str, *, permanent: bool, expire_seconds: int) -> dict[str, Any]:
    """A parameterised QR code for `scene` (scene_str); ticket, url, image URL and lifetime."""
    body: dict[str, Any] = {"action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
                            "action_info": {"scene": {"scene_str": scene}}}
    if not permanent:
        body["expire_seconds"] = expire_seconds
    answer = await call(account, "/cgi-bin/qrcode/create", json=body)
    ticket = str(answer.get("ticket", ""))
    return {"scene": scene, "ticket": ticket, "url": answer.get("url", ""),
            "image_url": SHOW_QRCODE + quote(ticket, safe=""),
            "expire_seconds": None if permanent else int(answer.get("expire_seconds", expire_seconds))}


async def create_menu(account: ChannelAccount, menu: Mapping[str, Any]) -> None:
    """Replace the account's custom menu."""
    await call(account, "/cgi-bin/menu/create", json=dict(menu))


async def get_menu(account: ChannelAccount) -> dict[str, Any]:
    """The account's custom menu (`{"button": [...]}`); empty when it has none."""
    try:
        answer = await call(account, "/cgi-bin/menu/get", method="GET")
    except ChannelError as exc:
        if exc.code == "46003":
            return {"button": []}
        raise
    menu = answer.get("menu") or {}
    return {"button": list(menu.get("button") or [])}


async def delete_menu(account: ChannelAccount) -> None:
    """Remove the account's custom menu."""
    await call(account, "/cgi-bin/menu/delete", method="GET")


async def user_info(account: ChannelAccount, openid: str) -> dict[str, Any]:
    """What the platform tells about a follower (`user/info`; nicknames only where still allowed)."""
    return await call(account, "/cgi-bin/user/info", method="GET", params={"openid": openid, "lang": "zh_CN"})
