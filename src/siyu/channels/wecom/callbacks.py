"""`/hooks/wecom/{account}`: WeCom's callbacks for both kinds (a self-built app, Customer Service).

GET verifies the URL: `msg_signature` over token, timestamp, nonce and echostr, answered with the bare
decrypted echostr. POST: the body is capped before parsing, the timestamp must be recent, the
signature must match, the XML (outer and decrypted) is parsed with DTDs and entities refused. Each event
goes through `channels.service.receive` in the request's transaction; the answer "success" follows the
commit; then the urgent jobs the hooks queued (a welcome message: its code lives 20 s) run at once in
a background task, ahead of any queue. A worker runs them if this process dies first.

Customer-group events (`change_external_chat`) name a group, not a person, so they don't go through
`receive` (which finds or creates one contact per item). They are parsed into a `ChatChange`, deduped
once here on the account's callback receipts (chat, time, ChangeType, UpdateDetail and the members
changed in the key), then handed to the handlers other modules registered with
`register_chat_handler` (acquisition keeps groups and membership); channels imports none of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from siyu.channels import service, wxcrypto
from siyu.channels.base import Inbound
from siyu.channels.models import ChannelAccount
from siyu.channels.wecom import kf, tasks
from siyu.channels.wecom.models import WeComFollow
from siyu.core import clock, worker
from siyu.core.auth import SessionDep, in_unit_of_work
from siyu.core.db import is_postgres, session_scope
from siyu.core.errors import NotFound, SiyuError, TooLarge
from siyu.core.events import record_event
from siyu.core.models import Job

router = APIRouter(include_in_schema=False)
MAX_BODY_BYTES = 64 * 1024
STALE_SECONDS = 300
WELCOME_CODE_SECONDS = 20
KINDS = ("wecom", "wecom_kf")
# change_external_contact's ChangeType → the event in siyu's words.
CHANGES = {
    "add_external_contact": "joined", "add_half_external_contact": "joined", "edit_external_contact": "edited",
    "del_external_contact": "left", "del_follow_user": "left", "transfer_fail": "transfer_failed",
}


class CallbackRefused(SiyuError):
    status = 400
    code = "refused"


def account_of(session: Session, account_id: str) -> ChannelAccount:
    """The WeCom account (either kind) a callback URL names, the session bound to its workspace."""
    for kind in KINDS:
        try:
            return service.account_for_callback(session, account_id, kind)
        except NotFound:
            continue
    raise NotFound("no such account", field="account")


def _check_fresh(timestamp: str) -> None:
    if not timestamp.isdigit():
        raise CallbackRefused("timestamp is not a Unix time", field="timestamp", code="bad_timestamp")
    if abs(clock.now().timestamp() - int(timestamp)) > STALE_SECONDS:
        raise CallbackRefused("the callback is stale or from the future", field="timestamp", code="stale")


def _opened(account: ChannelAccount, signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Check a signed ciphertext and decrypt it for the account's corp."""
    _check_fresh(timestamp)
    try:
        wxcrypto.check_signature(signature, str(account.secrets.get("token", "")), timestamp, nonce, encrypted)
        return wxcrypto.decrypt(encrypted, str(account.secrets.get("encoding_aes_key", "")),
                                str(account.config.get("corp_id", "")))
    except wxcrypto.CryptoError as exc:
        field = "msg_signature" if exc.code == "bad_signature" else "body"
        raise CallbackRefused(str(exc), field=field, code=exc.code) from exc


def verify_url(session: Session, account_id: str, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
    """The answer to WeCom's URL verification: the decrypted echostr."""
    # Base64 has no spaces: a '+' sent without percent-encoding arrives decoded as one.
    return _opened(account_of(session, account_id), signature, timestamp, nonce, echostr.replace(" ", "+"))


def parse_xml(raw: bytes | str) -> Element:
    """A WeCom XML document, DTDs and entities refused."""
    try:
        root = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise CallbackRefused(f"the body is not acceptable XML ({type(exc).__name__})", field="body",
                              code="bad_xml") from exc
    if not isinstance(root, Element) or root.tag != "xml":
        raise CallbackRefused("the body is not a WeCom <xml> document", field="body", code="bad_xml")
    return root


def _fields(root: Element) -> dict[str, str]:
    return {child.tag: (child.text or "").strip() for child in root}


def _time(fields: dict[str, str]) -> datetime:
    created = fields.get("CreateTime", "")
    return datetime.fromtimestamp(int(created), UTC) if created.isdigit() else clock.now()


def contact_change(fields: dict[str, str]) -> Inbound | None:
    """A change_external_contact event as an Inbound item (None for a change type siyu does not use)."""
    change = fields.get("ChangeType", "")
    event = CHANGES.get(change)
    external, staff = fields.get("ExternalUserID", ""), fields.get("UserID", "")
    if event is None or not external:
        return None
    at = _time(fields)
    details: dict[str, Any] = {"change_type": change, "staff_userid": staff}
    for name, key in (("State", "state"), ("WelcomeCode", "welcome_code"), ("FailReason", "fail_reason"),
                      ("Source", "source")):
        if fields.get(name):
            details[key] = fields[name]
    if "welcome_code" in details:
        details["welcome_code_expires_at"] = (at + timedelta(seconds=WELCOME_CODE_SECONDS)).isoformat()
    if change == "add_half_external_contact":
        details["half"] = True
    key = (f"msg:{fields['MsgId']}" if fields.get("MsgId")
           else f"{external}:{fields.get('CreateTime', '')}:{fields.get('Event', '')}:{change}:{staff}")
    return Inbound(dedupe_key=key, sender=external, kind="event", event=event, details=details, occurred_at=at,
                   staff_userid=staff if event in ("joined", "edited") and staff else None)


def tag_change(session: Session, account: ChannelAccount, fields: dict[str, str]) -> None:
    """A change_external_tag event: no person, so an event of its own, deduped with its ChangeType."""
    parts = [fields.get(k, "") for k in ("FromUserName", "CreateTime", "Event", "ChangeType", "TagType", "Id")]
    key = "wecomtag:" + hashlib.sha256(f"{account.id}:{':'.join(parts)}".encode()).hexdigest()
    record_event(session, type="channel.tags_changed", occurred_at=_time(fields), idempotency_key=key,
                 source="channels", properties={"account_id": account.id, "channel": account.kind,
                                                "tag_id": fields.get("Id", ""), "tag_type": fields.get("TagType", ""),
                                                "change_type": fields.get("ChangeType", "")})


@dataclass(frozen=True)
class ChatChange:
    """One `change_external_chat` event: `change_type` create | update | dismiss; for an update,
    `update_detail` add_member | del_member | change_owner | change_name | change_notice. `members`
    are the userids / external_userids that joined or left (MemChangeList), `join_scene` 1 invited,
    2 invited by link, 3 scanned the group's QR code; `quit_scene` 0 left, 1 removed."""

    chat_id: str
    change_type: str
    update_detail: str
    occurred_at: datetime
    dedupe_key: str
    join_scene: int | None = None
    quit_scene: int | None = None
    changed_count: int | None = None
    members: tuple[str, ...] = ()
    member_version: str = ""


# A chat handler returns the ids of urgent jobs it queued (or nothing).
ChatHandler = Callable[[Session, ChannelAccount, ChatChange], "list[int] | None"]
_chat_handlers: dict[str, ChatHandler] = {}


def register_chat_handler(name: str, handler: ChatHandler) -> ChatHandler:
    """Hand every new customer-group event of a WeCom account to `handler` (a later one of the same name
    replaces it), in the callback's transaction."""
    _chat_handlers[name] = handler
    return handler


def remove_chat_handler(name: str) -> None:
    """Forget a chat handler (tests, plugins unloading)."""
    _chat_handlers.pop(name, None)


def _number(value: str) -> int | None:
    return int(value) if value.strip().lstrip("-").isdigit() else None


def chat_change(root: Element) -> ChatChange | None:
    """A change_external_chat event's fields (None without a ChatId)."""
    fields = _fields(root)
    chat_id = fields.get("ChatId", "")
    if not chat_id:
        return None
    listed = root.find("MemChangeList")
    members = tuple((i.text or "").strip()[:64] for i in (listed.findall("Item") if listed is not None else [])
                    if (i.text or "").strip())
    change, detail = fields.get("ChangeType", ""), fields.get("UpdateDetail", "")
    raw = ":".join((chat_id, fields.get("CreateTime", ""), change, detail, fields.get("CurMemVer", ""),
                    ",".join(members)))
    return ChatChange(chat_id=chat_id[:64], change_type=change[:32], update_detail=detail[:32],
                      occurred_at=_time(fields), dedupe_key="chat:" + hashlib.sha256(raw.encode()).hexdigest(),
                      join_scene=_number(fields.get("JoinScene", "")), quit_scene=_number(fields.get("QuitScene", "")),
                      changed_count=_number(fields.get("MemChangeCnt", "")), members=members,
                      member_version=fields.get("CurMemVer", "")[:64])


def _chat_event(session: Session, account: ChannelAccount, change: ChatChange) -> list[int]:
    if not service.first_receipt(session, account, change.dedupe_key):
        return []
    urgent: list[int] = []
    for handler in list(_chat_handlers.values()):
        urgent.extend(handler(session, account, change) or [])
    return urgent


def follow(session: Session, account: ChannelAccount, external_userid: str, staff_userid: str) -> None:
    """Remember that this member has this customer."""
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    session.execute(insert(WeComFollow).values(
        workspace_id=account.workspace_id, account_id=account.id, external_userid=external_userid[:64],
        staff_userid=staff_userid[:64], created_at=clock.now(),
    ).on_conflict_do_nothing(index_elements=["account_id", "external_userid", "staff_userid"]))


def unfollow(session: Session, account: ChannelAccount, external_userid: str, staff_userid: str) -> int:
    """Forget one member's relationship with a customer; how many members still have them."""
    mine = (WeComFollow.account_id == account.id, WeComFollow.external_userid == external_userid)
    session.execute(delete(WeComFollow).where(*mine, WeComFollow.staff_userid == staff_userid))
    return int(session.execute(select(func.count()).select_from(WeComFollow).where(*mine)).scalar_one())


def _contact_event(session: Session, account: ChannelAccount, item: Inbound) -> list[int]:
    staff = str(item.details.get("staff_userid") or "")
    if item.event == "left" and staff and unfollow(session, account, item.sender, staff):
        # Another member still has the customer: they stay joined (and their consent stays).
        item = replace(item, event="staff_removed")
    received = service.receive(session, account, item)
    if received.duplicate:
        return []
    if item.event == "joined" and staff:
        follow(session, account, item.sender, staff)
    if item.details.get("change_type") == "add_external_contact":
        tasks.queue_profile(session, account, item.sender, item.dedupe_key)
    return received.urgent_jobs


def handle_callback(session: Session, account_id: str, signature: str, timestamp: str, nonce: str,
                    body: bytes) -> list[int]:
    """Verify, decrypt and store one callback; the ids of the urgent jobs to run after the commit."""
    account = account_of(session, account_id)
    encrypted = parse_xml(body).findtext("Encrypt")
    if not encrypted:
        raise CallbackRefused("the body has no <Encrypt>", field="body", code="bad_xml")
    root = parse_xml(_opened(account, signature, timestamp, nonce, encrypted.strip()))
    fields = _fields(root)
    event = fields.get("Event", "") if fields.get("MsgType") == "event" else ""
    if event == "change_external_chat":
        change = chat_change(root)
        return _chat_event(session, account, change) if change is not None else []
    if event == "change_external_contact":
        item = contact_change(fields)
        return _contact_event(session, account, item) if item is not None else []
    if event == "change_external_tag":
        tag_change(session, account, fields)
    elif event == "kf_msg_or_event" and fields.get("Token"):
        return kf.queue_sync(session, account, token=fields["Token"])
    return []


def run_urgent(job_ids: list[int], *, sessions: Callable[[], Any] = session_scope) -> None:
    """Run a callback's urgent jobs now, then the urgent jobs those listed in their results (a customer
    service sync that received an enter_session with a welcome code)."""
    worker.run_now(job_ids, sessions=sessions)
    with sessions() as session:
        results = session.execute(select(Job.result).where(Job.id.in_(job_ids), Job.status == "done")).scalars()
        follow = [int(i) for r in results if isinstance(r, dict) for i in r.get("urgent") or []]
    if follow:
        worker.run_now(follow, sessions=sessions)


def urgent_runner() -> Callable[[list[int]], None]:
    """The function a callback hands its urgent jobs to (tests run them in their own transaction)."""
    return partial(run_urgent, sessions=session_scope)


Runner = Annotated[Callable[[list[int]], None], Depends(urgent_runner)]


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge(f"a WeCom callback is at most {MAX_BODY_BYTES} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


# Both kinds answer on both paths: /hooks/wecom-kf/ is what the accounts page shows for a customer
# service account (its kind's path), /hooks/wecom/ what the platform docs name.
@router.get("/hooks/wecom/{account_id}", response_class=PlainTextResponse)
@router.get("/hooks/wecom-kf/{account_id}", response_class=PlainTextResponse)
def url_verification(
    account_id: str, session: SessionDep, msg_signature: Annotated[str, Query(max_length=64)] = "",
    timestamp: Annotated[str, Query(max_length=20)] = "", nonce: Annotated[str, Query(max_length=64)] = "",
    echostr: Annotated[str, Query(max_length=1024)] = "",
) -> PlainTextResponse:
    """WeCom's check of the callback URL: the bare decrypted echostr."""
    return PlainTextResponse(verify_url(session, account_id, msg_signature, timestamp, nonce, echostr))


@router.post("/hooks/wecom/{account_id}", response_class=PlainTextResponse)
@router.post("/hooks/wecom-kf/{account_id}", response_class=PlainTextResponse)
async def callback(account_id: str, request: Request, session: SessionDep, run: Runner) -> PlainTextResponse:
    """One encrypted event: stored, committed, answered "success"; urgent work right after."""
    body = await _body(request)
    q = request.query_params
    urgent = await in_unit_of_work(session, handle_callback, session, account_id, q.get("msg_signature", ""),
                                   q.get("timestamp", ""), q.get("nonce", ""), body)
    return PlainTextResponse("success", background=BackgroundTask(run, urgent) if urgent else None)
