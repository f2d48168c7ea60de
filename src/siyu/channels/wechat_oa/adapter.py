"""The WeChat Official Account adapter: its rules as data, its settings, and `send` for each content type.

Customer-service messages (text, image, link, mini-program card) go out only within 48 hours of the
person's last message or qualifying event, and at most 5 of them in that window: `send` refuses with
`outside_window` / `window_limit` before calling the platform and counts each one that went out.
Template messages (`type: template`) have no window; their delivery arrives later by callback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from siyu.channels import service
from siyu.channels.base import ChannelError, ConfigField, PlatformRules, SendResult, register_adapter
from siyu.channels.models import AccountContact, ChannelAccount
from siyu.channels.webhook import check_url
from siyu.channels.wechat_oa import client
from siyu.channels.wxcrypto import CryptoError, aes_key
from siyu.core import clock
from siyu.core.errors import Invalid


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


KIND = "wechat_oa"
MODES = ("plain", "compatible", "safe")
RULES = PlatformRules(
    identity_type="wechat_openid",
    consent_channel="wechat_oa",
    reply_window_hours=48,
    window_sends=5,
    max_text=2048,
    content_types=("text", "image", "link", "miniprogram", "template"),
    sends_at_once=8,
    notes=(
        N_("Customer-service messages: within 48 hours of the person's last message, at most 5."),
        N_("Template messages: any time, to followers, with a template approved in the OA admin."),
        N_("A passive reply answers a message in the callback itself, within 5 seconds."),
    ),
)
_APP_ID = re.compile(r"^wx[0-9a-f]{16}$")


def _within_window(row: AccountContact | None, now: datetime) -> None:
    if row is None or row.last_inbound_at is None or row.state != "joined":
        raise ChannelError("outside_window", "the person has not written to the account in the last 48 hours")
    if now - row.last_inbound_at > timedelta(hours=RULES.reply_window_hours or 48):
        raise ChannelError("outside_window", "the person has not written to the account in the last 48 hours")
    if row.sent_since_inbound >= (RULES.window_sends or 5):
        raise ChannelError("window_limit", "5 customer-service messages were sent since the person last wrote")


def open_window(account: ChannelAccount, address: str, at: datetime | None = None) -> None:
    """A qualifying event (follow, scan, menu click) opens the 48-hour window, as a message does."""
    session = object_session(account)
    row = service.address_row(session, account, address) if session is not None else None
    if row is not None:
        row.last_inbound_at, row.sent_since_inbound = at or clock.now(), 0


def _locked_address(account: ChannelAccount, address: str) -> AccountContact | None:
    """The person's row on the account, locked until the send's transaction ends (PostgreSQL), so two
    workers sending to the same person can't both take the window's last message."""
    session = object_session(account)
    if session is None:
        return None
    return session.execute(select(AccountContact).where(
        AccountContact.account_id == account.id, AccountContact.address == address).with_for_update()
    ).scalar_one_or_none()


def custom_message(address: str, content: Mapping[str, Any]) -> dict[str, Any]:
    """The `message/custom/send` body of a content; ChannelError when the OA can't carry it."""
    kind = content.get("type", "text")
    if kind == "text":
        text = str(content.get("text", ""))
        if not text or len(text.encode()) > (RULES.max_text or 2048):
            raise ChannelError("bad_content", f"a text of 1 to {RULES.max_text} bytes")
        return {"touser": address, "msgtype": "text", "text": {"content": text}}
    if kind == "image":
        if not content.get("media_id"):
            raise ChannelError("bad_content", "an image is sent by its media_id on the Official Account")
        return {"touser": address, "msgtype": "image", "image": {"media_id": content["media_id"]}}
    if kind in ("link", "news"):
        article = {"title": content.get("title", ""), "description": content.get("description", ""),
                   "url": content.get("url", ""), "picurl": content.get("pic_url", "")}
        return {"touser": address, "msgtype": "news", "news": {"articles": [article]}}
    if kind == "miniprogram":
        card = {"title": content.get("title", ""), "appid": content.get("appid", ""),
                "pagepath": content.get("pagepath", ""), "thumb_media_id": content.get("thumb_media_id", "")}
        return {"touser": address, "msgtype": "miniprogrampage", "miniprogrampage": card}
    raise ChannelError("bad_content", f"the Official Account can't send {kind!r} content")


def template_message(address: str, content: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The `message/template/send` body; `client_msg_id` lets the platform drop a repeated send."""
    if not content.get("template_id"):
        raise ChannelError("bad_content", "a template message needs its template_id")
    data = {k: v if isinstance(v, Mapping) else {"value": str(v)} for k, v in dict(content.get("data") or {}).items()}
    body: dict[str, Any] = {"touser": address, "template_id": content["template_id"], "data": data,
                            "client_msg_id": idempotency_key[:64]}
    if content.get("url"):
        body["url"] = content["url"]
    if content.get("miniprogram"):
        body["miniprogram"] = dict(content["miniprogram"])
    return body


class WechatOAAdapter:
    kind = KIND
    label = N_("WeChat Official Account")
    rules = RULES
    fields: tuple[ConfigField, ...] = (
        ConfigField("app_id", N_("AppID"), help=N_("In the OA admin: Settings and development, Basic configuration.")),
        ConfigField("app_secret", N_("AppSecret"), secret=True),
        ConfigField("token", N_("Token"), secret=True, help=N_("The Token you enter in the server configuration.")),
        ConfigField("encoding_aes_key", N_("EncodingAESKey"), secret=True, required=False,
                    help=N_("43 characters; needed in compatible and safe mode.")),
        ConfigField("mode", N_("Message encryption"), required=False, default="safe",
                    help=N_("plain, compatible or safe, as chosen in the OA admin.")),
        ConfigField("api_base", N_("API base URL"), required=False, default=client.DEFAULT_API_BASE),
    )
    accepts_idempotency_key = False

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        if not _APP_ID.match(str(config.get("app_id") or "")):
            raise Invalid("an AppID: wx followed by 16 hexadecimal characters", field="config.app_id")
        mode = config.get("mode") or "safe"
        if mode not in MODES:
            raise Invalid("mode is plain, compatible or safe", field="config.mode")
        if config.get("api_base"):
            check_url(config["api_base"], "config.api_base")
        if not str(secrets.get("app_secret") or "").strip():
            raise Invalid("the AppSecret is required", field="secrets.app_secret")
        token = str(secrets.get("token") or "")
        if not re.fullmatch(r"[A-Za-z0-9]{3,32}", token):
            raise Invalid("a Token of 3 to 32 letters and digits", field="secrets.token")
        if mode != "plain" or secrets.get("encoding_aes_key"):
            try:
                aes_key(str(secrets.get("encoding_aes_key") or ""))
            except CryptoError as exc:
                raise Invalid(str(exc), field="secrets.encoding_aes_key") from exc

    async def check_connection(self, account: ChannelAccount) -> str:
        await client.access_token(account, fetch_new=True)
        return "access token fetched"

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        if content.get("type") == "template":
            msg_id = await client.send_template(account, template_message(address, content, idempotency_key))
            return SendResult(external_id=msg_id or None)
        body = custom_message(address, content)
        row = _locked_address(account, address)
        _within_window(row, clock.now())
        await client.send_custom(account, body)
        if row is not None:
            row.sent_since_inbound += 1
        return SendResult()


ADAPTER = register_adapter(WechatOAAdapter())
