"""The two WeCom channel kinds and their sends.

`wecom` (a self-built app): a content carrying `welcome_code` goes out through `send_welcome_msg`
(once, within 20 s of the add); any other content is a member-confirmed mass message
(`add_msg_template`): "sent" means WeCom handed it to the member, who confirms it in the app.
`wecom_kf` (WeChat Customer Service): `kf/send_msg`, at most 5 messages within 48 h of the customer's
last message; a content carrying `welcome_code` (an enter_session event's) uses `send_msg_on_event`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import object_session

from siyu.channels import service, wxcrypto
from siyu.channels.base import ChannelError, ConfigField, PlatformRules, SendResult, register_adapter
from siyu.channels.models import AccountContact, ChannelAccount
from siyu.channels.webhook import check_url
from siyu.channels.wecom.client import PER_HOUR, PER_MINUTE, WeComClient
from siyu.core import clock
from siyu.core.errors import Invalid

MAX_TEXT_BYTES = 4000
KF_MAX_TEXT_BYTES = 2048
MAX_ATTACHMENTS = 9
KF_WINDOW = timedelta(hours=48)
KF_WINDOW_SENDS = 5
CONTENT_TYPES = ("text", "link", "image", "miniprogram")


def N_(message: str) -> str:
    return message


def _media(part: Mapping[str, Any]) -> str:
    return str(part.get("thumb_media_id") or part.get("media_id") or "")


def _page(part: Mapping[str, Any]) -> str:
    return str(part.get("pagepath") or part.get("page") or "")


def _part(part: Mapping[str, Any]) -> dict[str, Any] | None:
    """One WeCom attachment of a content part (link, image, mini-program card)."""
    kind = part.get("type")
    if kind == "link":
        return {"msgtype": "link", "link": {"title": str(part.get("title", "")), "url": str(part.get("url", "")),
                                            "desc": str(part.get("description", "")),
                                            "picurl": str(part.get("pic_url", ""))}}
    if kind == "image":
        image = ({"media_id": part["media_id"]} if part.get("media_id")
                 else {"pic_url": str(part.get("pic_url") or part.get("url") or "")})
        return {"msgtype": "image", "image": image}
    if kind == "miniprogram":
        return {"msgtype": "miniprogram", "miniprogram": {
            "title": str(part.get("title", "")), "appid": str(part.get("appid", "")),
            "page": _page(part), "pic_media_id": _media(part)}}
    return None


def attachments(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The content's card (its own type when not text) and its `attachments`, as WeCom's attachments."""
    parts = [content, *(a for a in content.get("attachments") or [] if isinstance(a, Mapping))]
    found = [a for a in (_part(p) for p in parts) if a is not None]
    if len(found) > MAX_ATTACHMENTS:
        raise ChannelError("too_many_attachments", f"WeCom takes at most {MAX_ATTACHMENTS} attachments")
    return found


def _text(content: Mapping[str, Any], limit: int) -> str:
    text = str(content.get("text") or "")
    if len(text.encode()) > limit:
        raise ChannelError("too_long", f"WeCom takes at most {limit} bytes of text in one message")
    return text


def _expired(content: Mapping[str, Any]) -> bool:
    """True when the content says when its welcome code expires and that time has passed."""
    raw = content.get("welcome_code_expires_at")
    if not raw:
        return False
    try:
        when = datetime.fromisoformat(str(raw))
    except ValueError:
        return False
    return when.tzinfo is not None and clock.now() > when


def _row(account: ChannelAccount, address: str) -> AccountContact | None:
    """The contact's row on the account, through the deliver job's own session (None outside one)."""
    session = object_session(account)
    return service.address_row(session, account, address) if session is not None else None


def _check_common(config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
    corp_id = str(config.get("corp_id") or "")
    if not corp_id or len(corp_id) > 64 or not corp_id.isalnum():
        raise Invalid("the CorpID: letters and digits, up to 64", field="config.corp_id")
    if not str(secrets.get("secret") or ""):
        raise Invalid("the app's Secret is required", field="secrets.secret")
    token = str(secrets.get("token") or "")
    if not token or len(token) > 32 or not token.isalnum():
        raise Invalid("the callback Token: 1 to 32 letters and digits", field="secrets.token")
    try:
        wxcrypto.aes_key(str(secrets.get("encoding_aes_key") or ""))
    except wxcrypto.CryptoError as exc:
        raise Invalid(f"the EncodingAESKey: {exc}", field="secrets.encoding_aes_key") from exc
    if config.get("api_base"):
        check_url(config["api_base"], "config.api_base")


_CALLBACK_FIELDS = (
    ConfigField("secret", N_("Secret"), secret=True),
    ConfigField("token", N_("Callback Token"), secret=True,
                help=N_("Set on the same page as the callback URL /hooks/wecom/<account id>.")),
    ConfigField("encoding_aes_key", N_("EncodingAESKey"), secret=True, help=N_("43 characters.")),
    ConfigField("api_base", N_("API address"), required=False, default="https://qyapi.weixin.qq.com",
                help=N_("Change only for a proxy or a test server.")),
)


class _WeComKind:
    """What both kinds share: the corp's app credentials, the callback settings, no idempotency keys."""

    accepts_idempotency_key = False

    async def check_connection(self, account: ChannelAccount) -> str:
        await WeComClient.of(account.config, account.secrets).token()
        return "access token fetched"

    @staticmethod
    def welcome_code(content: Mapping[str, Any]) -> str:
        """The content's welcome code ("" for none); ChannelError once its 20 seconds are over."""
        code = str(content.get("welcome_code") or "")
        if code and _expired(content):
            raise ChannelError("welcome_code_expired", "the welcome code expired before it could be used")
        return code


class WeComAdapter(_WeComKind):
    kind = "wecom"
    label = N_("WeCom app")
    rules = PlatformRules(
        identity_type="wecom_external_userid", consent_channel="wecom", per_minute=PER_MINUTE, per_hour=PER_HOUR,
        marketing_per_month=4, max_text=MAX_TEXT_BYTES, content_types=CONTENT_TYPES, sends_at_once=8,
        notes=(N_("A welcome message goes out once, within 20 seconds of the add."),
               N_("Other messages are mass messages the staff member confirms in WeCom."),
               N_("Text is at most 4,000 bytes; at most 9 attachments.")),
    )
    fields: tuple[ConfigField, ...] = (
        ConfigField("corp_id", N_("CorpID")),
        ConfigField("agent_id", N_("AgentID"), help=N_("The self-built app's AgentId.")),
        *_CALLBACK_FIELDS,
    )

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        _check_common(config, secrets)
        if not str(config.get("agent_id") or "").isdigit():
            raise Invalid("the AgentID is a number", field="config.agent_id")

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        client = WeComClient.of(account.config, account.secrets)
        text = _text(content, MAX_TEXT_BYTES)
        parts = attachments(content)
        code = self.welcome_code(content)
        if code:
            body: dict[str, Any] = {"welcome_code": code}
            if text:
                body["text"] = {"content": text}
            if parts:
                body["attachments"] = parts
            # A welcome code works once: repeating the call after a timeout answers 41051, which is done.
            await client.call("/cgi-bin/externalcontact/send_welcome_msg", body)
            return SendResult(status="sent")
        row = _row(account, address)
        sender = str(content.get("sender") or (row.staff_userid if row is not None else "") or "")
        if not sender:
            raise ChannelError("no_sender", "no staff member of this customer is known to send it")
        body = {"chat_type": "single", "external_userid": [address], "sender": sender}
        if text:
            body["text"] = {"content": text}
        if parts:
            body["attachments"] = parts
        answer = await client.call("/cgi-bin/externalcontact/add_msg_template", body, idempotent=False)
        if address in (answer.get("fail_list") or []):
            raise ChannelError("not_sent", "WeCom did not take the message for this customer")
        return SendResult(external_id=str(answer.get("msgid") or "") or None, status="sent")


def kf_message(content: Mapping[str, Any]) -> dict[str, Any]:
    """The msgtype and body of one customer-service message."""
    kind = str(content.get("type") or "text")
    if kind == "link":
        return {"msgtype": "link", "link": {"title": str(content.get("title", "")), "url": str(content.get("url", "")),
                                            "desc": str(content.get("description", "")),
                                            "thumb_media_id": _media(content)}}
    if kind == "miniprogram":
        return {"msgtype": "miniprogram", "miniprogram": {
            "appid": str(content.get("appid", "")), "title": str(content.get("title", "")),
            "thumb_media_id": _media(content), "pagepath": _page(content)}}
    if kind == "image" and content.get("media_id"):
        return {"msgtype": "image", "image": {"media_id": str(content["media_id"])}}
    return {"msgtype": "text", "text": {"content": _text(content, KF_MAX_TEXT_BYTES)}}


def kf_msgid(idempotency_key: str) -> str:
    """Our id of a customer-service message (32 characters of [0-9a-f]), kept as its external id."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


class WeComKfAdapter(_WeComKind):
    kind = "wecom_kf"
    label = N_("WeChat Customer Service")
    rules = PlatformRules(
        identity_type="wecom_external_userid", consent_channel="wecom", per_minute=PER_MINUTE, per_hour=PER_HOUR,
        reply_window_hours=48, window_sends=KF_WINDOW_SENDS, max_text=KF_MAX_TEXT_BYTES,
        content_types=CONTENT_TYPES, sends_at_once=8,
        notes=(N_("Replies only within 48 hours of the customer's last message, at most 5 of them."),),
    )
    fields: tuple[ConfigField, ...] = (
        ConfigField("corp_id", N_("CorpID")),
        ConfigField("open_kfid", N_("Customer service account ID"), help=N_("open_kfid, starting with wk.")),
        *_CALLBACK_FIELDS,
    )

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        _check_common(config, secrets)
        open_kfid = str(config.get("open_kfid") or "")
        if not open_kfid or len(open_kfid) > 64:
            raise Invalid("the customer service account's open_kfid is required", field="config.open_kfid")

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        client = WeComClient.of(account.config, account.secrets)
        msgid = kf_msgid(idempotency_key)
        message = kf_message(content)
        code = self.welcome_code(content)
        if code:
            await client.call("/cgi-bin/kf/send_msg_on_event", {"code": code, "msgid": msgid, **message})
            return SendResult(external_id=msgid)
        row = _row(account, address)
        if row is not None:
            if row.last_inbound_at is None or clock.now() - row.last_inbound_at > KF_WINDOW:
                raise ChannelError("window_closed", "the customer has not written in the last 48 hours")
            if row.sent_since_inbound >= KF_WINDOW_SENDS:
                raise ChannelError("window_full", "5 messages were sent since the customer's last message")
        await client.call("/cgi-bin/kf/send_msg", {"touser": address, "open_kfid": str(account.config["open_kfid"]),
                                                    "msgid": msgid, **message}, idempotent=False)
        if row is not None:
            row.sent_since_inbound += 1
        return SendResult(external_id=msgid)


WECOM = register_adapter(WeComAdapter())
WECOM_KF = register_adapter(WeComKfAdapter())
