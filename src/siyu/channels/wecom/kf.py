"""WeChat Customer Service (微信客服): the callback only says "there is something" (`kf_msg_or_event`
with a Token valid 10 minutes); the `wecom.kf_sync` job pulls it with `kf/sync_msg` from the account's
saved cursor, page by page while `has_more`, and hands each message to `channels.service.receive`
(deduped on msgid). A customer's first message makes them joined (consent channel `wecom`); an
`enter_session` event is a join too, carrying its welcome code (20 s) for `send_msg_on_event`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import service
from siyu.channels.base import ChannelError, Inbound
from siyu.channels.models import ChannelAccount
from siyu.channels.wecom.client import RetryLater, WeComClient
from siyu.core import clock, jobs
from siyu.core.tenancy import parse_id

SYNC = "wecom.kf_sync"
PAGE_SIZE = 1000
MAX_PAGES = 50
WELCOME_CODE_SECONDS = 20
INVALID_SYNC_TOKEN = "95007"
CUSTOMER, SYSTEM = 3, 4
# Customer-service events in siyu's words (msg_send_fail updates the message instead).
EVENTS = {"enter_session": "joined", "session_status_change": "session_changed", "user_recall_msg": "recalled"}


def queue_sync(session: Session, account: ChannelAccount, *, token: str) -> list[int]:
    """Queue one pull for a callback's token; its job id, to run at once after the commit."""
    key = f"kf:{account.id}:{token}"[:200]
    jobs.enqueue(session, SYNC, key, {"account_id": account.id, "token": token[:200]})
    job = jobs.get_job(session, SYNC, key)
    return [job.id] if job is not None and job.status == jobs.PENDING else []


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _at(message: dict[str, Any]) -> datetime:
    sent = message.get("send_time")
    return datetime.fromtimestamp(int(sent), UTC) if isinstance(sent, int) else clock.now()


def _customer_message(session: Session, account: ChannelAccount, message: dict[str, Any]) -> list[Inbound]:
    external = str(message.get("external_userid") or "")
    kind = str(message.get("msgtype") or "text")[:16]
    payload = _dict(message.get(kind))
    items = []
    if service.address_row(session, account, external) is None:
        items.append(Inbound(dedupe_key=f"kfjoin:{external}", sender=external, kind="event", event="joined",
                             details={"via": "message", "open_kfid": message.get("open_kfid")},
                             occurred_at=_at(message)))
    text = str(payload.get("content") or "") if kind == "text" else ""
    items.append(Inbound(dedupe_key=f"msg:{message.get('msgid')}", sender=external, kind=kind, text=text,
                         details=dict(payload), occurred_at=_at(message), external_id=str(message.get("msgid"))))
    return items


def _event(session: Session, account: ChannelAccount, message: dict[str, Any]) -> list[Inbound]:
    event = _dict(message.get("event"))
    kind, external = str(event.get("event_type") or ""), str(event.get("external_userid") or "")
    if kind == "msg_send_fail" and event.get("fail_msgid"):
        reason = f"WeChat Customer Service could not deliver it (fail_type {event.get('fail_type')})"
        service.update_delivery(session, account, str(event["fail_msgid"]), "failed", error=reason)
        return []
    if kind not in EVENTS or not external:
        return []
    details = {k: v for k, v in event.items() if k not in ("external_userid", "event_type") and v not in ("", None)}
    if event.get("welcome_code"):
        details["welcome_code_expires_at"] = (_at(message) + timedelta(seconds=WELCOME_CODE_SECONDS)).isoformat()
    return [Inbound(dedupe_key=f"msg:{message.get('msgid')}", sender=external, kind="event", event=EVENTS[kind],
                    details=details, occurred_at=_at(message), external_id=str(message.get("msgid")))]


def items_of(session: Session, account: ChannelAccount, message: dict[str, Any]) -> list[Inbound]:
    """What one sync_msg message is to siyu (staff replies sent from WeCom itself are not inbound)."""
    if not message.get("msgid"):
        return []
    if message.get("origin") == CUSTOMER:
        return _customer_message(session, account, message)
    if message.get("origin") == SYSTEM and message.get("msgtype") == "event":
        return _event(session, account, message)
    return []


def _page(client: WeComClient, account: ChannelAccount, cursor: str, token: str) -> dict[str, Any]:
    body: dict[str, Any] = {"limit": PAGE_SIZE, "open_kfid": str(account.config.get("open_kfid", ""))}
    if token:
        body["token"] = token
    if cursor:
        body["cursor"] = cursor
    try:
        return service.run_async(client.call("/cgi-bin/kf/sync_msg", body))
    except ChannelError as exc:
        if exc.code == INVALID_SYNC_TOKEN and token:
            # The callback's token lived 10 minutes; without it the pull still works, at a lower rate.
            return _page(client, account, cursor, "")
        raise


def sync(session: Session, account: ChannelAccount, *, token: str) -> dict[str, Any]:
    """Pull every new customer-service message of the account and receive each once."""
    client = WeComClient.of(account.config, account.secrets)
    cursor = str(account.config.get("kf_cursor") or "")
    received, urgent = 0, []
    for _ in range(MAX_PAGES):
        answer = _page(client, account, cursor, token)
        for message in answer.get("msg_list") or []:
            if not isinstance(message, dict):
                continue
            for item in items_of(session, account, message):
                outcome = service.receive(session, account, item)
                received += 0 if outcome.duplicate else 1
                urgent.extend(outcome.urgent_jobs)
        cursor = str(answer.get("next_cursor") or cursor)
        account.config = {**account.config, "kf_cursor": cursor}
        if not answer.get("has_more"):
            break
    service.record_health(session, account)
    return {"received": received, "urgent": urgent, "cursor": cursor}


def _sync_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    account = session.get(ChannelAccount, parse_id(ctx.payload["account_id"], "account"))
    if account is None:
        return {"skipped": "account_deleted"}
    try:
        return sync(session, account, token=str(ctx.payload.get("token") or ""))
    except ChannelError as exc:
        if exc.retryable:
            # Retried from the saved cursor: what this run received rolls back with it.
            raise RetryLater(exc) from exc
        service.record_health(session, account, error=f"{exc.code}: {exc}")
        return {"failed": f"{exc.code}: {exc}"}


# A repeated pull is harmless (messages are deduped on msgid), so a lost worker's job simply runs again.
jobs.handler(SYNC, external=True, accepts_idempotency_key=True)(_sync_job)
