"""An Official Account callback from its query and body to the pipeline, and the answer it gets.

Order of checks, cheapest first and nothing parsed before it must be: size (the route), timestamp
freshness (replays), then in plain mode the `signature` before parsing; in encrypted mode the
envelope is parsed with defusedxml to find `Encrypt`, whose `msg_signature` is checked before it is
decrypted and parsed. Every refusal happens before anything is written.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import service
from siyu.channels.models import ChannelAccount
from siyu.channels.wechat_oa import inbound, xml
from siyu.channels.wechat_oa.adapter import open_window
from siyu.channels.wechat_oa.tasks import queue_profile
from siyu.channels.wxcrypto import CryptoError, check_signature, decrypt, encrypt, signature
from siyu.core import clock
from siyu.core.errors import SiyuError

# The platform signs each push with the current time; older ones are replays.
STALE_SECONDS = 300
PASSIVE = "reply:passive"


class Refused(SiyuError):
    """A callback that failed verification or parsing: answered 400 and nothing stored."""

    status = 400
    code = "refused"


@dataclass
class Answer:
    """The callback's response body and the urgent jobs to run once it is committed."""

    body: str = "success"
    content_type: str = "text/plain"
    urgent_jobs: list[int] = field(default_factory=list)


def _fresh(timestamp: str) -> None:
    if not timestamp.isdigit():
        raise Refused("the timestamp is missing", field="timestamp", code="stale")
    if abs(clock.now().timestamp() - int(timestamp)) > STALE_SECONDS:
        raise Refused("the timestamp is too old or in the future", field="timestamp", code="stale")


def _verify(given: str, token: str, params: Mapping[str, str], encrypted: str | None = None) -> None:
    try:
        check_signature(given, token, params.get("timestamp", ""), params.get("nonce", ""), encrypted)
    except CryptoError as exc:
        raise Refused(str(exc), field="signature", code=exc.code) from exc


def verify_url(account: ChannelAccount, params: Mapping[str, str]) -> str:
    """The URL check of the OA admin: the bare `echostr` when `signature` is right."""
    _fresh(params.get("timestamp", ""))
    _verify(params.get("signature", ""), str(account.secrets.get("token", "")), params)
    return params.get("echostr", "")


def _parse(body: bytes) -> dict[str, str]:
    try:
        return xml.parse(body)
    except xml.BadXml as exc:
        raise Refused(str(exc), field="body", code="bad_xml") from exc


def _open(account: ChannelAccount, params: Mapping[str, str], body: bytes) -> tuple[dict[str, str], bool]:
    """The callback's fields and whether it came encrypted."""
    mode = account.config.get("mode") or "safe"
    token = str(account.secrets.get("token", ""))
    encrypted = params.get("encrypt_type") == "aes"
    if not encrypted:
        if mode == "safe":
            raise Refused("this account takes encrypted callbacks only", field="encrypt_type",
                          code="encryption_required")
        _verify(params.get("signature", ""), token, params)
        return _parse(body), False
    key = str(account.secrets.get("encoding_aes_key") or "")
    if not key:
        raise Refused("no EncodingAESKey is configured for encrypted callbacks", field="encrypt_type",
                      code="encryption_unconfigured")
    envelope = _parse(body).get("Encrypt", "")
    if not envelope:
        raise Refused("an encrypted callback without Encrypt", field="body", code="bad_xml")
    _verify(params.get("msg_signature", ""), token, params, envelope)
    try:
        plain = decrypt(envelope, key, str(account.config.get("app_id", "")))
    except CryptoError as exc:
        raise Refused(str(exc), field="body", code=exc.code) from exc
    return _parse(plain.encode()), True


def _seal(account: ChannelAccount, reply: str) -> str:
    """A reply encrypted and signed for safe mode."""
    token = str(account.secrets.get("token", ""))
    ciphertext = encrypt(reply, str(account.secrets["encoding_aes_key"]), str(account.config.get("app_id", "")))
    timestamp, nonce = str(int(clock.now().timestamp())), secrets.token_hex(8)
    return xml.encrypted_reply(ciphertext, signature(token, timestamp, nonce, ciphertext), timestamp, nonce)


def handle(session: Session, account: ChannelAccount, params: Mapping[str, str], body: bytes) -> Answer:
    """Verify, decrypt and parse one push, run it through `service.receive`, and build the answer."""
    _fresh(params.get("timestamp", ""))
    fields, encrypted = _open(account, params, body)
    if not fields.get("FromUserName") or not fields.get("MsgType"):
        raise Refused("a callback without FromUserName or MsgType", field="body", code="bad_xml")
    receipt = inbound.template_receipt(fields)
    if receipt is not None:
        msg_id, status, error = receipt
        at = inbound.to_inbound(fields).occurred_at
        service.update_delivery(session, account, msg_id, status, error=error, at=at)
        return Answer()
    item = inbound.to_inbound(fields)
    received = service.receive(session, account, item)
    answer = Answer(urgent_jobs=received.urgent_jobs)
    key = f"passive:{account.id}:{item.dedupe_key}"[:255]
    if received.duplicate:
        # The platform retries when our answer took over 5 s: it gets the reply it missed, once more.
        prior = service.message_by_key(session, key)
        if prior is not None and prior.status == "sent":
            _reply(account, fields, prior.content, encrypted, answer)
        return answer
    if item.event in inbound.WINDOW_EVENTS:
        open_window(account, item.sender, item.occurred_at)
    if item.event == "joined":
        queue_profile(session, account, item.sender)
    if received.reply is None or received.contact_id is None or account.status != "active":
        return answer  # a paused account stores what arrives and says nothing
    if _reply(account, fields, received.reply, encrypted, answer):
        service.archive_sent(session, account=account, contact_id=received.contact_id, address=item.sender,
                             content=received.reply, origin=received.reply_origin or PASSIVE, idempotency_key=key)
    else:
        # A passive reply can't carry it (a mini-program card): the person just wrote, so it goes out
        # as a customer-service message right after the commit instead.
        service.queue_send(session, account=account, contact_id=received.contact_id, content=received.reply,
                           origin=received.reply_origin or PASSIVE, idempotency_key=key, urgent=True,
                           received=received)
    return answer


def _reply(account: ChannelAccount, fields: Mapping[str, str], content: Mapping[str, Any], encrypted: bool,
           answer: Answer) -> bool:
    """Make `answer` the passive reply carrying `content` (sealed when the push was); False when it can't."""
    reply = xml.passive_reply(fields.get("FromUserName", ""), fields.get("ToUserName", ""),
                              int(clock.now().timestamp()), content)
    if reply is None:
        return False
    answer.body, answer.content_type = (_seal(account, reply) if encrypted else reply), "application/xml"
    return True


