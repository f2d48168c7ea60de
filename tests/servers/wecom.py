"""A local WeCom server following the published API (gettoken, external contacts, contact ways, welcome
messages, tags, transfers, member-confirmed mass messages, WeChat Customer Service), misbehaving like the
real one when told to: an expired token (42001), frequency limits (45009), too many at once (45033), a
welcome code used twice (41051), HTTP 5xx, an answer slower than the client waits. Every request is
recorded. `deliver_callback` / `send_add` POST encrypted callbacks to siyu as WeCom does.

    fake = FakeWeCom()
    with serve(fake.app()) as base:   # tests.servers.serve
        fake.fail("/cgi-bin/externalcontact/send_welcome_msg", 45009)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from siyu.channels import wxcrypto

CORP_ID = "ww5823bf96d3bd56c7"
SECRET = "app-secret-for-tests"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
OPEN_KFID = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"


def ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"errcode": 0, "errmsg": "ok", **fields})


def err(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": f"{errmsg}, hint: [{secrets.token_hex(4)}]"})


@dataclass
class FakeWeCom:
    corp_id: str = CORP_ID
    secret: str = SECRET
    slow_seconds: float = 2.0
    base_url: str = "https://wework.qpic.cn"
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    faults: dict[str, list[Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    used_welcome_codes: set[str] = field(default_factory=set)
    welcomes: list[dict[str, Any]] = field(default_factory=list)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    contact_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    mass_messages: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    kf_messages: list[dict[str, Any]] = field(default_factory=list)
    kf_sync_tokens: set[str] = field(default_factory=set)
    kf_sent: list[dict[str, Any]] = field(default_factory=list)
    # Members WeCom refuses on a contact way: not real-name verified (40098), no customer-contact
    # permission (84074). The refusal names no member, as WeCom's does.
    unverified: set[str] = field(default_factory=set)
    no_permission: set[str] = field(default_factory=set)
    seen_users: set[str] = field(default_factory=set)
    mark_tag_running: int = 0
    mark_tag_most: int = 0

    def fail(self, path: str, *faults: Any) -> None:
        """Answer the next calls of `path` with these faults, in order: an errcode, 500, "slow"."""
        self.faults.setdefault(path, []).extend(faults)

    def expire_tokens(self) -> None:
        """Every token issued so far expires (the next call with one gets 42001)."""
        self.tokens = {f"expired:{t}" for t in self.tokens}

    def calls(self, path: str) -> list[Any]:
        """Bodies (or query parameters for GETs) of the calls made to `path`."""
        return [body if body is not None else params for p, params, body in self.requests if p == path]

    def kf_event(self, external_userid: str, msgtype: str = "text", **fields: Any) -> str:
        """Queue one customer-service message for sync_msg; returns its msgid."""
        msgid = f"kfmsg-{len(self.kf_messages) + 1}"
        message = {"msgid": msgid, "open_kfid": OPEN_KFID, "external_userid": external_userid,
                   "send_time": int(time.time()), "origin": 4 if msgtype == "event" else 3, "msgtype": msgtype,
                   **fields}
        self.kf_messages.append(message)
        return msgid

    def new_kf_sync_token(self) -> str:
        token = f"ENC{secrets.token_hex(12)}"
        self.kf_sync_tokens.add(token)
        return token

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/cgi-bin/{path:path}", self._endpoint, methods=["GET", "POST"]),
                                 Route("/wwpic/{config_id}/0", self._qr_image)])

    async def _qr_image(self, request: Request) -> Response:
        """The contact way's QR image, as wework.qpic.cn serves it: a PNG of the way's URL."""
        import io

        import segno

        config_id = request.path_params["config_id"]
        if config_id not in self.contact_ways:
            return Response("not found", status_code=404)
        out = io.BytesIO()
        segno.make(self.qr_target(config_id), error="m").save(out, kind="png", scale=6)
        return Response(out.getvalue(), media_type="image/png")

    @staticmethod
    def qr_target(config_id: str) -> str:
        """What the QR image of a contact way encodes."""
        return f"https://work.weixin.qq.com/ca/cawcde{config_id}"

    def _refused_member(self, users: list[str]) -> Response | None:
        self.seen_users.update(users)
        if any(u in self.no_permission for u in users):
            return err(84074, "no external contact permission")
        if any(u in self.unverified for u in users):
            return err(40098, "user not verified")
        return None

    async def _endpoint(self, request: Request) -> Response:
        self.base_url = str(request.base_url).rstrip("/")
        path = request.url.path
        params = dict(request.query_params)
        body = await request.json() if request.method == "POST" else None
        self.requests.append((path, params, body))
        queued = self.faults.get(path) or []
        fault = queued.pop(0) if queued else None
        if fault == 500:
            return Response("upstream error", status_code=502)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif isinstance(fault, int):
            return err(fault, {45009: "api freq out of limit", 45033: "api concurrent out of limit",
                               -1: "system busy", 42001: "access_token expired"}.get(fault, "refused"))
        if path == "/cgi-bin/gettoken":
            if params.get("corpid") != self.corp_id or params.get("corpsecret") != self.secret:
                return err(40001, "invalid credential")
            token = f"tok-{secrets.token_hex(6)}"
            self.tokens.add(token)
            return ok(access_token=token, expires_in=7200)
        token = params.get("access_token", "")
        if f"expired:{token}" in self.tokens:
            return err(42001, "access_token expired")
        if token not in self.tokens:
            return err(40014, "invalid access_token")
        handler = getattr(self, "_" + path.removeprefix("/cgi-bin/").replace("/", "__"), None)
        if handler is None:
            return err(48002, "api forbidden")
        result: Response = await handler(body or {}, params)
        return result

    async def _externalcontact__get(self, body: dict[str, Any], params: dict[str, str]) -> Response:
        found = self.contacts.get(params.get("external_userid", ""))
        if found is None:
            return err(40096, "invalid external userid")
        return ok(external_contact=found["external_contact"], follow_user=found.get("follow_user", []))

    async def _externalcontact__add_contact_way(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        if body.get("type") not in (1, 2) or body.get("scene") not in (1, 2):
            return err(40058, "invalid type or scene")
        if len(body.get("state") or "") > 30:
            return err(40058, "state exceed max length")
        if body.get("type") == 1 and len(body.get("user") or []) != 1:
            return err(40058, "single type needs exactly one user")
        refused = self._refused_member(list(body.get("user") or []))
        if refused is not None:
            return refused
        config_id = f"cfg{secrets.token_hex(8)}"
        qr = f"{self.base_url}/wwpic/{config_id}/0" if body.get("scene") == 2 else ""
        self.contact_ways[config_id] = {**body, "config_id": config_id, "qr_code": qr}
        return ok(config_id=config_id, qr_code=qr) if qr else ok(config_id=config_id)

    async def _externalcontact__get_contact_way(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        way = self.contact_ways.get(body.get("config_id", ""))
        return ok(contact_way=way) if way else err(40058, "invalid config_id")

    async def _externalcontact__update_contact_way(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        way = self.contact_ways.get(body.get("config_id", ""))
        if way is None:
            return err(40058, "invalid config_id")
        if len(body.get("state") or "") > 30:
            return err(40058, "state exceed max length")
        if "user" in body:
            refused = self._refused_member(list(body.get("user") or []))
            if refused is not None:
                return refused
            if way.get("type") == 1 and len(body["user"]) != 1:
                return err(40058, "single type needs exactly one user")
        way.update({k: v for k, v in body.items() if v is not None})
        return ok()

    async def _externalcontact__get_follow_user_list(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        return ok(follow_user=sorted(self.seen_users - self.no_permission))

    async def _externalcontact__del_contact_way(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        return ok() if self.contact_ways.pop(body.get("config_id", ""), None) else err(40058, "invalid config_id")

    async def _externalcontact__send_welcome_msg(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        code = str(body.get("welcome_code") or "")
        if code.startswith("expired"):
            return err(40058, "invalid welcome_code")
        if code in self.used_welcome_codes:
            return err(41051, "welcome_code has been used")
        self.used_welcome_codes.add(code)
        self.welcomes.append(body)
        return ok()

    async def _externalcontact__mark_tag(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        self.mark_tag_running += 1
        try:
            self.mark_tag_most = max(self.mark_tag_most, self.mark_tag_running)
            if self.mark_tag_running > 5:
                return err(45033, "api concurrent out of limit")
            await asyncio.sleep(0.01)
            self.tags.append(body)
            return ok()
        finally:
            self.mark_tag_running -= 1

    async def _externalcontact__transfer_customer(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        users = list(body.get("external_userid") or [])
        if not users or len(users) > 100:
            return err(40058, "external_userid is 1 to 100 users")
        self.transfers.append(body)
        return ok(customer=[{"external_userid": u, "errcode": 0 if u in self.contacts or not self.contacts
                             else 84061} for u in users])

    async def _externalcontact__transfer_result(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        done = [{"external_userid": u, "status": 2, "takeover_time": int(time.time())}
                for t in self.transfers if t["handover_userid"] == body.get("handover_userid")
                for u in t["external_userid"]]
        return ok(customer=done, next_cursor="")

    async def _externalcontact__add_msg_template(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        unknown = [u for u in body.get("external_userid") or [] if self.contacts and u not in self.contacts]
        self.mass_messages.append(body)
        return ok(fail_list=unknown, msgid=f"msg{secrets.token_hex(10)}")

    async def _kf__sync_msg(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        if body.get("token") and body["token"] not in self.kf_sync_tokens:
            return err(95007, "invalid msg token")
        start = int(body.get("cursor") or 0)
        limit = int(body.get("limit") or 1000)
        page = self.kf_messages[start:start + limit]
        end = start + len(page)
        return ok(next_cursor=str(end), has_more=int(end < len(self.kf_messages)), msg_list=page)

    async def _kf__send_msg(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        self.kf_sent.append(body)
        return ok(msgid=body.get("msgid") or f"kfout{secrets.token_hex(6)}")

    async def _kf__send_msg_on_event(self, body: dict[str, Any], _p: dict[str, str]) -> Response:
        code = str(body.get("code") or "")
        if code in self.used_welcome_codes:
            return err(95002, "code has been used")
        self.used_welcome_codes.add(code)
        self.kf_sent.append(body)
        return ok(msgid=body.get("msgid") or f"kfout{secrets.token_hex(6)}")


def callback_body(xml: str, *, token: str = TOKEN, aes_key: str = AES_KEY, corp_id: str = CORP_ID,
                  timestamp: int | None = None, nonce: str | None = None) -> tuple[dict[str, str], bytes]:
    """The query and body WeCom POSTs for one event: `xml` encrypted, wrapped and signed."""
    encrypted = wxcrypto.encrypt(xml, aes_key, corp_id)
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or secrets.token_hex(5)
    query = {"msg_signature": wxcrypto.signature(token, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    body = (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>").encode()
    return query, body


def deliver_callback(url: str, xml: str, **kwargs: Any) -> httpx.Response:
    """POST one encrypted event to siyu's callback URL (`/hooks/wecom/<account id>`), as WeCom does."""
    query, body = callback_body(xml, **kwargs)
    return httpx.post(url, params=query, content=body, headers={"Content-Type": "text/xml"}, timeout=10)


def add_external_contact_xml(external_userid: str, *, userid: str = "zhangsan", state: str = "",
                             welcome_code: str = "", create_time: int | None = None,
                             change_type: str = "add_external_contact", corp_id: str = CORP_ID) -> str:
    """The decrypted XML of a `change_external_contact` event (add by default)."""
    extra = f"<State><![CDATA[{state}]]></State>" if state else ""
    extra += f"<WelcomeCode><![CDATA[{welcome_code}]]></WelcomeCode>" if welcome_code else ""
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change_type}]]></ChangeType>"
            f"<UserID><![CDATA[{userid}]]></UserID><ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>"
            f"{extra}</xml>")


def send_add(url: str, external_userid: str, **kwargs: Any) -> httpx.Response:
    """Deliver an `add_external_contact` callback (with State and WelcomeCode when given) to `url`."""
    crypto = {k: kwargs.pop(k) for k in ("token", "aes_key", "timestamp", "nonce") if k in kwargs}
    corp_id = kwargs.get("corp_id", CORP_ID)
    return deliver_callback(url, add_external_contact_xml(external_userid, **kwargs), corp_id=corp_id, **crypto)
