"""A local WeChat Official Account API that follows the published endpoints and misbehaves on cue.

Endpoints: `GET /cgi-bin/token`, `POST /cgi-bin/message/custom/send`, `POST /cgi-bin/message/template/send`,
`POST /cgi-bin/qrcode/create`, `POST /cgi-bin/menu/create`, `GET /cgi-bin/menu/get`,
`GET /cgi-bin/menu/delete`, `GET /cgi-bin/user/info`. Tokens are checked like the platform does (an
unknown one is 40001, an expired one 42001). `fake.misbehave(path, *faults)` queues faults for the next
calls of a path: "expired" (42001 once, and the token stops working), "busy" (-1), "frequency" (45009),
"minute" (45011), "5xx" (HTTP 503), "slow" (answers after `slow_seconds`, past the client's timeout).
Every request is recorded in `fake.requests` as (path, query, JSON body).

Also here: what the platform pushes to siyu — `push_xml(...)` and `signed(...)` build a callback's XML
and its signed query string, plain or encrypted with `wxcrypto`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from siyu.channels import wxcrypto
from siyu.channels.wechat_oa.xml import cdata
from tests.servers import serve

APP_ID = "wxb11529c136998cb6"
APP_SECRET = "test-app-secret-0123456789abcdef"
# The published sample values of the OA's safe mode (../shared/protocol-vectors.md).
TOKEN = "pamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class FakeOA:
    def __init__(self, app_id: str = APP_ID, app_secret: str = APP_SECRET) -> None:
        self.app_id, self.app_secret = app_id, app_secret
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.tokens: set[str] = set()
        self.issued = 0
        self.faults: dict[str, list[str]] = {}
        self.slow_seconds = 1.0
        self.menu: dict[str, Any] | None = None
        self.sent: list[dict[str, Any]] = []
        self.templates: dict[str, int] = {}
        # What user/info tells: openid -> extra fields (unionid, nickname where still given).
        self.profiles: dict[str, dict[str, Any]] = {}
        self._msgids = itertools.count(200_000_001)
        self.app = Starlette(routes=[
            Route("/cgi-bin/token", self.token, methods=["GET"]),
            Route("/cgi-bin/message/custom/send", self.custom_send, methods=["POST"]),
            Route("/cgi-bin/message/template/send", self.template_send, methods=["POST"]),
            Route("/cgi-bin/qrcode/create", self.qrcode_create, methods=["POST"]),
            Route("/cgi-bin/menu/create", self.menu_create, methods=["POST"]),
            Route("/cgi-bin/menu/get", self.menu_get, methods=["GET"]),
            Route("/cgi-bin/menu/delete", self.menu_delete, methods=["GET"]),
            Route("/cgi-bin/user/info", self.user_info, methods=["GET"]),
        ])

    def misbehave(self, path: str, *faults: str) -> None:
        self.faults.setdefault(path, []).extend(faults)

    def calls(self, path: str) -> list[tuple[str, dict[str, str], Any]]:
        return [r for r in self.requests if r[0] == path]

    async def _enter(self, request: Request) -> tuple[Any, Response | None]:
        """Record the call, then play its next fault, or check its token."""
        path = request.url.path
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append((path, dict(request.query_params), body))
        queue = self.faults.get(path) or []
        fault = queue.pop(0) if queue else None
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif fault == "5xx":
            return body, Response("<html>503 Service Unavailable</html>", status_code=503)
        elif fault == "busy":
            return body, _err(-1, "system error")
        elif fault == "frequency":
            return body, _err(45009, "reach max api daily quota limit")
        elif fault == "minute":
            return body, _err(45011, "api minute-quota reach limit")
        elif fault == "expired":
            self.tokens.discard(request.query_params.get("access_token", ""))
            return body, _err(42001, "access_token expired")
        if path != "/cgi-bin/token" and request.query_params.get("access_token") not in self.tokens:
            return body, _err(40001, "invalid credential, access_token is invalid or not latest")
        return body, None

    async def token(self, request: Request) -> Response:
        _, refused = await self._enter(request)
        if refused is not None:
            return refused
        q = request.query_params
        if q.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if q.get("appid") != self.app_id:
            return _err(40013, "invalid appid")
        if q.get("secret") != self.app_secret:
            return _err(40125, "invalid appsecret")
        self.issued += 1
        token = f"TOKEN-{self.issued}-{secrets.token_hex(4)}"
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 7200})

    async def custom_send(self, request: Request) -> Response:
        body, refused = await self._enter(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict) or not body.get("touser") or body.get("msgtype") not in (
                "text", "image", "news", "miniprogrampage", "voice", "video", "mpnews", "msgmenu"):
            return _err(47001, "data format error")
        self.sent.append(body)
        return _err(0, "ok")

    async def template_send(self, request: Request) -> Response:
        body, refused = await self._enter(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict) or not body.get("template_id"):
            return _err(40037, "invalid template_id")
        key = f"{body.get('touser')}:{body.get('client_msg_id')}"
        if body.get("client_msg_id") and key in self.templates:
            return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": self.templates[key]})
        msgid = next(self._msgids)
        self.templates[key] = msgid
        self.sent.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def qrcode_create(self, request: Request) -> Response:
        body, refused = await self._enter(request)
        if refused is not None:
            return refused
        scene = ((body or {}).get("action_info") or {}).get("scene", {}).get("scene_str", "")
        if not 1 <= len(scene) <= 64:
            return _err(40097, "invalid args")
        ticket = "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw=="
        answer: dict[str, Any] = {"ticket": ticket + hashlib.md5(scene.encode()).hexdigest()[:6],
                                  "url": f"http://weixin.qq.com/q/{hashlib.md5(scene.encode()).hexdigest()[:16]}"}
        if body.get("action_name") == "QR_STR_SCENE":
            answer["expire_seconds"] = min(int(body.get("expire_seconds", 60)), 2592000)
        return JSONResponse(answer)

    async def menu_create(self, request: Request) -> Response:
        body, refused = await self._enter(request)
        if refused is not None:
            return refused
        buttons = (body or {}).get("button") or []
        if not 1 <= len(buttons) <= 3:
            return _err(40016, "invalid button size")
        self.menu = {"button": buttons}
        return _err(0, "ok")

    async def menu_get(self, request: Request) -> Response:
        _, refused = await self._enter(request)
        if refused is not None:
            return refused
        if self.menu is None:
            return _err(46003, "menu no exist")
        return JSONResponse({"menu": self.menu})

    async def menu_delete(self, request: Request) -> Response:
        _, refused = await self._enter(request)
        if refused is not None:
            return refused
        self.menu = None
        return _err(0, "ok")

    async def user_info(self, request: Request) -> Response:
        _, refused = await self._enter(request)
        if refused is not None:
            return refused
        openid = request.query_params.get("openid", "")
        if not openid:
            return _err(40003, "invalid openid")
        return JSONResponse({"subscribe": 1, "openid": openid, "nickname": "", "language": "zh_CN",
                             "subscribe_time": 1409304348, "subscribe_scene": "ADD_SCENE_QR_CODE",
                             **self.profiles.get(openid, {})})


def _err(code: int, message: str) -> JSONResponse:
    return JSONResponse({"errcode": code, "errmsg": message})


@contextmanager
def running(fake: FakeOA | None = None) -> Iterator[tuple[FakeOA, str]]:
    """A fake OA served on a local port: (fake, base URL)."""
    fake = fake or FakeOA()
    with serve(fake.app) as base_url:
        yield fake, base_url


# --- what the platform pushes -------------------------------------------------------------------------


def push_xml(*, sender: str = "oUser1", to: str = "gh_test", created: int = 1409304348, **fields: Any) -> str:
    """A callback's XML: `MsgType="text", Content="hi", MsgId="1"` or `MsgType="event", Event="subscribe"`."""
    parts = [f"<ToUserName>{cdata(to)}</ToUserName>", f"<FromUserName>{cdata(sender)}</FromUserName>",
             f"<CreateTime>{created}</CreateTime>"]
    parts += [f"<{name}>{cdata(value)}</{name}>" for name, value in fields.items()]
    return "<xml>" + "".join(parts) + "</xml>"


def signed(body: str, *, timestamp: int, token: str = TOKEN, encrypt: bool = False, aes_key: str = AES_KEY,
           app_id: str = APP_ID, nonce: str = "xxxxxx") -> tuple[str, dict[str, str]]:
    """(request body, query) of a push: plain with `signature`, or safe mode with `msg_signature`."""
    ts = str(timestamp)
    query = {"timestamp": ts, "nonce": nonce, "signature": wxcrypto.signature(token, ts, nonce),
             "openid": "oUser1"}
    if not encrypt:
        return body, query
    ciphertext = wxcrypto.encrypt(body, aes_key, app_id)
    envelope = f"<xml><ToUserName>{cdata('gh_test')}</ToUserName><Encrypt>{cdata(ciphertext)}</Encrypt></xml>"
    return envelope, {**query, "encrypt_type": "aes",
                      "msg_signature": wxcrypto.signature(token, ts, nonce, ciphertext)}


def deliver(base_url: str, account_id: int, push: str, *, timestamp: int | None = None, encrypt: bool = True,
            **keys: str) -> httpx.Response:
    """POST a push to a running siyu as the platform does (for end-to-end tests: a follow through a QR code
    is `deliver(url, id, push_xml(MsgType="event", Event="subscribe", EventKey="qrscene_<scene>"))`)."""
    ts = int(time.time()) if timestamp is None else timestamp
    body, query = signed(push, timestamp=ts, encrypt=encrypt, **keys)
    return httpx.post(f"{base_url}/hooks/wechat-oa/{account_id}", params=query, content=body.encode(),
                      headers={"Content-Type": "text/xml"}, timeout=10)
