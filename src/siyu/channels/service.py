"""Channels' public face: accounts, the one inbound pipeline, the one outbound path.

In: an adapter's callback route verifies and parses, then calls `receive` once per item, in the
request's transaction. `receive` skips a callback already processed (by its dedupe key), finds or
creates the contact, keeps the contact's address on the account, grants or withdraws consent on
join/leave, archives a message, records the event — and asks the receive hooks (welcome, keyword
replies, sensitive words...) what to do. The route answers after the commit.

Out: `queue_send` writes the message to the archive as `queued` and enqueues one `channels.deliver`
job in the caller's transaction; the worker sends it through the adapter and records the outcome.
A message's idempotency key is unique per workspace, so asking twice sends once.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.channels.base import ChannelError, Inbound, adapter_for, adapter_kinds
from siyu.channels.models import AccountContact, CallbackReceipt, ChannelAccount
from siyu.contacts import service as contacts
from siyu.contacts.consent import JOINED_CHANNELS
from siyu.conversations.models import Message
from siyu.core import audit, clock, jobs
from siyu.core.audit import Actor
from siyu.core.db import any_of
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.events import record_event, record_events
from siyu.core.tenancy import bind_workspace, bound_workspace, get_scoped, parse_id

T = TypeVar("T")
# The "identity type" of channels that address a person by their siyu contact id (webhooks to the
# brand's own app).
CONTACT_ID = "contact_id"
# Identity types that address a person on any account of their channel.
GLOBAL_ADDRESSES = ("phone", "email")
DELIVER = "channels.deliver"
# The same work for targets that dedupe on our idempotency key: a crashed send may be repeated.
DELIVER_IDEMPOTENT = "channels.deliver_idempotent"
KINDS_OUT = ("queued", "sending", "sent", "delivered", "opened", "clicked", "failed", "skipped")
# Later statuses never go back to earlier ones (a late "delivered" receipt after "clicked" is kept as is).
_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "opened": 4, "clicked": 5}


# --- accounts ---------------------------------------------------------------------------------------


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("channels work through a session bound to a workspace")
    return workspace_id


def list_accounts(session: Session, *, kind: str | None = None) -> list[ChannelAccount]:
    """The workspace's accounts, by name."""
    stmt = select(ChannelAccount).order_by(ChannelAccount.name, ChannelAccount.id)
    if kind is not None:
        stmt = stmt.where(ChannelAccount.kind == kind)
    return list(session.execute(stmt).scalars())


def get_account(session: Session, account_id: Any) -> ChannelAccount:
    """One account of the bound workspace (404 for any other)."""
    return get_scoped(session, ChannelAccount, account_id, what="account")


def account_for_callback(session: Session, account_id: Any, kind: str) -> ChannelAccount:
    """The account a callback URL names, then the session bound to its workspace; 404 when unknown."""
    bind_workspace(session, None)
    account = session.get(ChannelAccount, parse_id(account_id, "account"))
    if account is None or account.kind != kind:
        raise NotFound("no such account", field="account")
    bind_workspace(session, account.workspace_id)
    return account


def _check_kind(kind: str) -> Any:
    adapter = adapter_for(kind)
    if adapter is None:
        raise Invalid(f"kind is one of {', '.join(adapter_kinds())}", field="kind")
    return adapter


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("a name of 1 to 120 characters", field="name")
    return name


def _check_unique(session: Session, name: str, account_id: int | None) -> None:
    other = session.execute(select(ChannelAccount.id).where(ChannelAccount.name == name)).scalar_one_or_none()
    if other is not None and other != account_id:
        raise Conflict("another account has this name", field="name")


def _shown(account: ChannelAccount) -> dict[str, Any]:
    """An account as the audit log keeps it: secrets named, never their values."""
    return {"kind": account.kind, "name": account.name, "status": account.status, "config": dict(account.config),
            "secrets": sorted(account.secrets or {})}


def create_account(
    session: Session, *, kind: str, name: str, config: Mapping[str, Any], secrets: Mapping[str, Any], actor: Actor
) -> ChannelAccount:
    """Configure a channel account after its adapter checked the settings."""
    adapter = _check_kind(kind)
    name = _clean_name(name)
    _check_unique(session, name, None)
    adapter.validate_config(config, secrets)
    account = ChannelAccount(kind=kind, name=name, config=dict(config), secrets=dict(secrets), status="active")
    session.add(account)
    session.flush()
    audit.record(session, actor, workspace_id=account.workspace_id, action="channel_account.create",
                 entity_type="channel_account", entity_id=account.id, before=None, after=_shown(account))
    return account


def update_account(
    session: Session, account: ChannelAccount, *, name: str | None = None, status: str | None = None,
    config: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None, actor: Actor,
) -> ChannelAccount:
    """Change an account; `secrets` given are merged over the kept ones (an empty value keeps the old)."""
    before = _shown(account)
    adapter = _check_kind(account.kind)
    if name is not None:
        # Checked before assigning: the query would otherwise flush the clashing name first.
        name = _clean_name(name)
        _check_unique(session, name, account.id)
        account.name = name
    if status is not None:
        if status not in ("active", "paused"):
            raise Invalid("status is active or paused", field="status")
        account.status = status
    new_config = dict(config) if config is not None else dict(account.config)
    new_secrets = {**account.secrets, **{k: v for k, v in (secrets or {}).items() if v not in (None, "")}}
    adapter.validate_config(new_config, new_secrets)
    account.config, account.secrets = new_config, new_secrets
    session.flush()
    audit.record(session, actor, workspace_id=account.workspace_id, action="channel_account.update",
                 entity_type="channel_account", entity_id=account.id, before=before, after=_shown(account))
    return account


def delete_account(session: Session, account: ChannelAccount, *, actor: Actor) -> None:
    """Remove an account; its archived messages stay, naming the channel."""
    audit.record(session, actor, workspace_id=account.workspace_id, action="channel_account.delete",
                 entity_type="channel_account", entity_id=account.id, before=_shown(account), after=None)
    session.delete(account)
    session.flush()


# A success is written at most this often while nothing failed since: a broadcast's every send would
# otherwise update (and lock) the account's row.
HEALTH_RESOLUTION = timedelta(seconds=60)


def record_health(session: Session, account: ChannelAccount, *, error: str | None = None) -> None:
    """Note that a call to the platform worked (error None) or failed, for the console's sync health."""
    now = clock.now()
    if error is not None:
        account.last_error_at, account.last_error = now, error[:2000]
        return
    ok, failed = account.last_ok_at, account.last_error_at
    if ok is not None and (failed is None or failed < ok) and now - ok < HEALTH_RESOLUTION:
        return
    account.last_ok_at = now


_LOOP = threading.local()
_BACKGROUND: list[asyncio.AbstractEventLoop] = []
_BACKGROUND_LOCK = threading.Lock()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run an adapter coroutine from sync code (a worker thread) on this thread's own event loop.

    One loop per thread lets adapters keep their HTTP connection pools between jobs. A thread that
    already runs a loop (sync code called from async code, or under Playwright's sync API in tests)
    can't run another: the coroutine then runs on one background thread's loop, and this thread waits.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_LOOP, "loop", None)
        if loop is None or loop.is_closed():
            loop = _LOOP.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


def _background_loop() -> asyncio.AbstractEventLoop:
    with _BACKGROUND_LOCK:
        if not _BACKGROUND or _BACKGROUND[0].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="siyu-adapters", daemon=True).start()
            _BACKGROUND[:] = [loop]
        return _BACKGROUND[0]


# --- in ---------------------------------------------------------------------------------------------


@dataclass
class Received:
    """What `receive` did with one item. `reply` is a passive reply a hook chose (the OA answers it in
    the callback's own response); `urgent_jobs` are jobs the route runs right after its commit (a
    WeCom welcome code lives 20 s: it can't wait behind bulk work in the queue)."""

    duplicate: bool
    contact_id: int | None = None
    message_id: int | None = None
    event_id: int | None = None
    reply: dict[str, Any] | None = None
    # What chose the passive reply (`keyword:<rule id>`), kept as the archived reply's origin.
    reply_origin: str | None = None
    urgent_jobs: list[int] = field(default_factory=list)
    # The contact was made by this item (nobody had its identities before).
    created: bool = False


# A receive hook sees every new item after it was stored; it may return a passive reply's content.
ReceiveHook = Callable[[Session, ChannelAccount, Inbound, Received], "dict[str, Any] | None"]
_hooks: dict[str, tuple[int, ReceiveHook]] = {}
_ordered: list[ReceiveHook] = []


def on_receive(name: str, *, order: int = 100) -> Callable[[ReceiveHook], ReceiveHook]:
    """Register a hook run on every new inbound item (not on duplicates), lowest `order` first, then in
    registration order. Hooks that keep state about the conversation (the archive's threads) run
    before hooks that answer (welcome, keyword replies), so the answers join the thread."""

    def register(fn: ReceiveHook) -> ReceiveHook:
        _hooks[name] = (order, fn)
        _sort_hooks()
        return fn

    return register


def remove_receive_hook(name: str) -> None:
    """Forget a hook (tests, plugins unloading)."""
    _hooks.pop(name, None)
    _sort_hooks()


def _sort_hooks() -> None:
    _ordered[:] = [fn for _order, fn in sorted(_hooks.values(), key=lambda pair: pair[0])]


def _key(*parts: Any) -> str:
    raw = ":".join(str(p) for p in parts)
    return raw if len(raw) <= 200 else raw[:150] + ":" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _first_time(session: Session, account: ChannelAccount, dedupe_key: str) -> bool:
    stmt = _insert(session)(CallbackReceipt).values(
        workspace_id=account.workspace_id, account_id=account.id, dedupe_key=_key(dedupe_key),
        received_at=clock.now(),
    ).on_conflict_do_nothing(index_elements=["account_id", "dedupe_key"])
    return session.execute(stmt.returning(CallbackReceipt.id)).first() is not None


def first_receipt(session: Session, account: ChannelAccount, dedupe_key: str) -> bool:
    """Note a callback item that does not go through `receive` (a WeCom group event); False when the
    account already had it."""
    return _first_time(session, account, dedupe_key)


def address_count(session: Session, account: ChannelAccount) -> int:
    """How many contacts have an address on the account (joined or left)."""
    return int(session.execute(select(func.count()).select_from(AccountContact).where(
        AccountContact.account_id == account.id)).scalar_one())


def address_row(session: Session, account: ChannelAccount, address: str) -> AccountContact | None:
    """The contact's row on an account by their address there."""
    return session.execute(select(AccountContact).where(
        AccountContact.account_id == account.id, AccountContact.address == address)).scalar_one_or_none()


def _keep_address(session: Session, account: ChannelAccount, contact_id: int, item: Inbound) -> AccountContact:
    row = address_row(session, account, item.sender)
    now = item.occurred_at or clock.now()
    if row is None:
        row = AccountContact(account_id=account.id, contact_id=contact_id, address=item.sender, state="joined",
                             joined_at=now, sent_since_inbound=0)
        session.add(row)
    row.contact_id = contact_id
    if item.staff_userid:
        row.staff_userid = item.staff_userid
    if item.event == "joined":
        row.state, row.joined_at, row.left_at = "joined", now, None
    elif item.event == "left":
        row.state, row.left_at = "left", now
    elif item.kind != "event":
        row.last_inbound_at, row.sent_since_inbound = now, 0
    session.flush()
    return row


def receive(session: Session, account: ChannelAccount, item: Inbound) -> Received:
    """Store one inbound item once; see the module's docstring for everything it does."""
    if not _first_time(session, account, item.dedupe_key):
        return Received(duplicate=True)
    adapter = _check_kind(account.kind)
    rules = adapter.rules
    identities = [{"type": rules.identity_type, "value": item.sender},
                  *({"type": t, "value": v} for t, v in item.extra_identities)]
    fields = {"nickname": item.nickname} if item.nickname else None
    contact, created = contacts.upsert_contact(session, identities=identities, fields=fields, actor=None,
                                                source=f"channel:{account.kind}")
    _keep_address(session, account, contact.id, item)
    consent = rules.consent_channel
    if consent in JOINED_CHANNELS and item.event in ("joined", "left"):
        change = contacts.grant_from_channel if item.event == "joined" else contacts.withdraw_from_channel
        change(session, contact, consent, source=f"{account.kind}:{account.id}", proof=item.dedupe_key[:200])
    received = Received(duplicate=False, contact_id=contact.id, created=created)
    base = {"account_id": account.id, "channel": account.kind}
    if item.kind == "event":
        properties = {**base, **dict(item.details)}
        event_type = f"channel.{item.event or 'event'}"
    else:
        message = Message(account_id=account.id, channel=account.kind, contact_id=contact.id, direction="in",
                          msg_type=item.kind, text=item.text, content=dict(item.details), address=item.sender,
                          status="received", external_id=item.external_id,
                          created_at=item.occurred_at or clock.now())
        session.add(message)
        session.flush()
        received.message_id = message.id
        properties = {**base, "message_id": message.id, "msg_type": item.kind, "text": item.text[:500]}
        event_type = "message.received"
    event = record_event(session, type=event_type, contact_id=contact.id, properties=properties,
                         occurred_at=item.occurred_at, idempotency_key=_key("cb", account.id, item.dedupe_key),
                         source="channels")
    received.event_id = event.id if event is not None else None
    for hook in list(_ordered):
        reply = hook(session, account, item, received)
        if reply is not None and received.reply is None:
            received.reply = reply
    return received


# --- out --------------------------------------------------------------------------------------------


def address_of(session: Session, account: ChannelAccount, contact_id: int) -> str | None:
    """Where a contact is reached on an account: their joined address there, else their identity of the
    channel's type (a phone for SMS, an email for email)."""
    return addresses_of(session, account, [contact_id]).get(contact_id)


def addresses_of(session: Session, account: ChannelAccount, contact_ids: Sequence[int]) -> dict[int, str]:
    """`address_of` for many contacts in a few queries; contacts with no address are left out."""
    found: dict[int, str] = {}
    ids = list(dict.fromkeys(contact_ids))
    rows = session.execute(select(AccountContact.contact_id, AccountContact.address).where(
        AccountContact.account_id == account.id, any_of(session, AccountContact.contact_id, ids),
        AccountContact.state == "joined").order_by(AccountContact.id.desc()))
    for contact_id, address in rows:
        found.setdefault(int(contact_id), str(address))
    rest = [i for i in ids if i not in found]
    adapter = _check_kind(account.kind)
    if not rest:
        return found
    if adapter.rules.identity_type == CONTACT_ID:
        found.update({i: str(i) for i in rest})
        return found
    # Only a phone or an email reaches the person from any account; an openid or an external_userid
    # belongs to one OA or one corp, so those come from the account's own rows above.
    wanted = contacts.canonical_type(adapter.rules.identity_type)
    if wanted in GLOBAL_ADDRESSES:
        found.update(contacts.identity_values(session, rest, wanted))
    return found


def get_message(session: Session, message_id: Any) -> Message:
    """One archived message of the bound workspace."""
    return get_scoped(session, Message, message_id, what="message")


def message_by_key(session: Session, idempotency_key: str) -> Message | None:
    """The message a sender queued under this key, if any."""
    return session.execute(select(Message).where(Message.idempotency_key == idempotency_key)).scalar_one_or_none()


@dataclass
class Outgoing:
    """One message for `queue_sends`: to whom, what, and under which key (see `queue_send`)."""

    contact_id: int
    content: Mapping[str, Any]
    origin: str
    idempotency_key: str
    purpose: str = "service"
    address: str | None = None
    staff_id: int | None = None
    run_at: datetime | None = None
    skip_reason: str | None = None


def queue_send(
    session: Session, *, account: ChannelAccount, contact_id: int, content: Mapping[str, Any], origin: str,
    idempotency_key: str, purpose: str = "service", address: str | None = None, staff_id: int | None = None,
    run_at: datetime | None = None, urgent: bool = False, received: Received | None = None,
    skip_reason: str | None = None,
) -> Message:
    """Queue one message to one contact on one account (in the caller's transaction); returns its archive row.

    The same `idempotency_key` returns the first message and queues nothing. Consent is checked here
    (`may_contact` with `purpose`): a refused message is archived as `skipped` with the reason, not sent.
    `urgent` puts the job on `received.urgent_jobs` so the callback route runs it right after its commit.
    `skip_reason` archives the message as `skipped` with that reason without sending it (a sender that
    could not build it, e.g. a template that failed to render, leaves this record instead of nothing).
    An unknown contact is a NotFound.
    """
    item = Outgoing(contact_id=contact_id, content=content, origin=origin, idempotency_key=idempotency_key,
                    purpose=purpose, address=address, staff_id=staff_id, run_at=run_at, skip_reason=skip_reason)
    message = queue_sends(session, account=account, items=[item])[0]
    if message is None:
        raise NotFound("contact not found")
    if urgent and received is not None and message.job_id is not None and message.status == "queued":
        received.urgent_jobs.append(message.job_id)
    return message


def queue_sends(session: Session, *, account: ChannelAccount, items: Sequence[Outgoing]) -> list[Message | None]:
    """`queue_send` for many messages on one account, in a few statements whatever their number: each
    item's archive row (the first one for a key already used), None for a contact that is gone."""
    adapter = _check_kind(account.kind)
    keys = [item.idempotency_key for item in items]
    existing = {m.idempotency_key: m for m in session.execute(
        select(Message).where(any_of(session, Message.idempotency_key, keys))).scalars()} if keys else {}
    fresh = [item for item in items if item.idempotency_key not in existing]
    people = contacts.get_contacts(session, [item.contact_id for item in fresh])
    fresh = [item for item in fresh if item.contact_id in people]
    consent: dict[tuple[int, str], contacts.Permission] = {}
    if adapter.rules.consent_channel is not None and account.status == "active":
        for purpose in {item.purpose for item in fresh}:
            asked = [people[item.contact_id] for item in fresh if item.purpose == purpose and not item.skip_reason]
            for contact_id, permission in contacts.contact_permissions(
                    session, asked, adapter.rules.consent_channel, purpose).items():
                consent[(contact_id, purpose)] = permission
    found = addresses_of(session, account, [item.contact_id for item in fresh if not item.address])
    now = clock.now()
    made: dict[str, Message] = {}
    to_send: list[tuple[Message, Outgoing]] = []
    for item in fresh:
        if item.idempotency_key in made:
            continue
        content = item.content
        text = str(content.get("text") or content.get("title") or content.get("subject") or "")
        message = Message(account_id=account.id, channel=account.kind, contact_id=item.contact_id,
                          staff_id=item.staff_id, direction="out", msg_type=str(content.get("type", "text")),
                          text=text, content=dict(content), origin=item.origin, purpose=item.purpose,
                          status="queued", idempotency_key=item.idempotency_key, created_at=now,
                          address=item.address or found.get(item.contact_id))
        refusal = item.skip_reason[:2000] if item.skip_reason else None
        if refusal is None and account.status != "active":
            refusal = "account_paused"
        elif refusal is None and (item.contact_id, item.purpose) in consent:
            permission = consent[(item.contact_id, item.purpose)]
            if not permission:
                refusal = f"consent:{permission.reason}"
        if refusal is None and not message.address:
            refusal = "no_address"
        if refusal is not None:
            message.status, message.error = "skipped", refusal
        else:
            to_send.append((message, item))
        made[item.idempotency_key] = message
    session.add_all(made.values())
    session.flush()
    if to_send:
        kind = DELIVER_IDEMPOTENT if adapter.accepts_idempotency_key else DELIVER
        ids = jobs.enqueue_many(session, kind, [(f"msg:{m.id}", {"message_id": m.id}, item.run_at)
                                                for m, item in to_send])
        for message, _item in to_send:
            message.job_id = ids.get(f"msg:{message.id}")
        session.flush()
    return [existing.get(item.idempotency_key) or made.get(item.idempotency_key) for item in items]


def archive_sent(
    session: Session, *, account: ChannelAccount, contact_id: int, address: str, content: Mapping[str, Any],
    origin: str, idempotency_key: str, purpose: str = "service", staff_id: int | None = None,
) -> Message:
    """Archive a message that leaves without the outbox (an OA passive reply goes out in the callback's
    own response) as sent, recording `message.sent`; the same key returns the first row."""
    existing = message_by_key(session, idempotency_key)
    if existing is not None:
        return existing
    text = str(content.get("text") or content.get("title") or "")
    message = Message(account_id=account.id, channel=account.kind, contact_id=contact_id, staff_id=staff_id,
                      direction="out", msg_type=str(content.get("type", "text"))[:16], text=text,
                      content=dict(content), address=address, origin=origin, purpose=purpose, status="queued",
                      idempotency_key=idempotency_key, created_at=clock.now())
    session.add(message)
    session.flush()
    set_status(session, message, "sent")
    return message


def set_status(
    session: Session, message: Message, status: str, *, error: str | None = None, at: datetime | None = None,
) -> bool:
    """Move an outbound message on (sent → delivered → opened → clicked, or failed); records
    `message.<status>` once per change. False when the change would go backwards."""
    return set_statuses(session, [(message, status, error)], at=at)[0]


def set_statuses(
    session: Session, changes: Sequence[tuple[Message, str, str | None]], *, at: datetime | None = None,
) -> list[bool]:
    """`set_status` for many messages — (message, status, error) each — with their events recorded as
    one batch; per change, whether it moved its message on."""
    for _, status, _ in changes:
        if status not in KINDS_OUT:
            raise Invalid(f"status is one of {', '.join(KINDS_OUT)}", field="status")
    when = at or clock.now()
    moved: list[bool] = []
    events: list[dict[str, Any]] = []
    for message, status, error in changes:
        current = message.status
        if current == status or (status in _RANK and current in _RANK and _RANK[status] < _RANK[current]):
            moved.append(False)
            continue
        if status != "failed" and current in ("failed", "skipped") and status in ("queued", "sending"):
            moved.append(False)
            continue
        moved.append(True)
        message.status = status
        if status == "failed":
            message.error = (error or "failed")[:2000]
        stamp = _STAMPS.get(status)
        if stamp is not None and getattr(message, stamp) is None:
            setattr(message, stamp, when)
        if status in ("sent", "delivered", "opened", "clicked", "failed"):
            props = {"message_id": message.id, "account_id": message.account_id, "channel": message.channel,
                     "origin": message.origin, "purpose": message.purpose}
            if error:
                props["error"] = error[:500]
            events.append({"type": f"message.{status}", "contact_id": message.contact_id, "properties": props,
                           "occurred_at": when, "idempotency_key": f"msg:{message.id}:{status}"})
    if events:
        result = record_events(session, events, source="channels")
        if result.errors:
            error_item = result.errors[0]
            raise Invalid(error_item.message, field=error_item.field, code=error_item.code)
    session.flush()
    return moved


_STAMPS = {"sent": "sent_at", "delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}


def update_delivery(
    session: Session, account: ChannelAccount, external_id: str, status: str, *, error: str | None = None,
    at: datetime | None = None,
) -> Message | None:
    """A platform's receipt for a message it accepted (SMS report, template job finished, bounce)."""
    message = session.execute(select(Message).where(
        Message.account_id == account.id, Message.external_id == external_id, Message.direction == "out"
    ).order_by(Message.id.desc())).scalars().first()
    if message is not None:
        set_status(session, message, status, error=error, at=at)
    return message


class SendFailed(Exception):
    """A retryable platform failure: the worker retries the job with backoff, not before `retry_after`
    seconds when the platform said how long it blocks us (WeCom's 45009: 60 s or 60 minutes)."""

    def __init__(self, message: str, *, account_id: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.account_id = account_id
        self.retry_after = retry_after

    def on_retry(self, session: Session) -> None:
        """Keep the failure on the account's sync health (the handler's own writes were rolled back)."""
        account = session.get(ChannelAccount, self.account_id)
        if account is not None:
            record_health(session, account, error=str(self))


def _deliver(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    answer = _deliver_many(session, [ctx])[0]
    if isinstance(answer, Exception):
        raise answer
    return answer


def _deliver_many(session: Session, ctxs: Sequence[jobs.JobContext]) -> list[dict[str, Any] | Exception]:
    """Send the messages of these deliver jobs (one workspace's), one after another, and record their
    statuses and events together. A job whose send should be retried, or whose outcome is unknown,
    answers the exception `_deliver` raises for it alone, and writes nothing."""
    ids = [parse_id(ctx.payload["message_id"], "message") for ctx in ctxs]
    messages = {m.id: m for m in session.execute(select(Message).where(Message.id.in_(ids))).scalars()}
    account_ids = {m.account_id for m in messages.values() if m.account_id}
    accounts = {a.id: a for a in session.execute(
        select(ChannelAccount).where(ChannelAccount.id.in_(account_ids))).scalars()} if account_ids else {}
    answers: list[dict[str, Any] | Exception] = [{} for _ in ctxs]
    changes: list[tuple[Message, str, str | None]] = []
    sends: list[tuple[int, Message, ChannelAccount]] = []
    for i, message_id in enumerate(ids):
        message = messages.get(message_id)
        if message is None or message.status not in ("queued", "sending"):
            answers[i] = {"skipped": message.status if message is not None else "gone"}
            continue
        account = accounts.get(message.account_id) if message.account_id else None
        if account is None:
            changes.append((message, "failed", "account_deleted"))
            answers[i] = {"failed": "account_deleted"}
            continue
        sends.append((i, message, account))
    leases = [ctx.lease_until for ctx in ctxs if ctx.lease_until is not None]
    deadline = min(leases) - SEND_MARGIN if leases else None
    results = run_async(_send_each([(account, message, ctxs[i].idempotency_key) for i, message, account in sends],
                                   deadline))
    for (i, message, account), result in zip(sends, results, strict=True):
        if isinstance(result, jobs.NotStarted):
            answers[i] = result
        elif isinstance(result, ChannelError):
            reason = f"{result.code}: {result}"
            spec = jobs.handler_for(ctxs[i].kind)
            last_attempt = spec is not None and ctxs[i].attempt >= spec.max_attempts
            if result.done:
                changes.append((message, "sent", None))
                answers[i] = {"done": reason}
            elif result.unknown:
                answers[i] = _caused(jobs.ExternalOutcomeUnknown(reason), result)
            elif result.retryable and not last_attempt:
                answers[i] = _caused(SendFailed(reason, account_id=account.id, retry_after=result.retry_after), result)
            else:
                record_health(session, account, error=reason)
                changes.append((message, "failed", reason))
                answers[i] = {"failed": reason}
        elif isinstance(result, Exception):
            answers[i] = result
        else:
            message.external_id = result.external_id
            record_health(session, account)
            changes.append((message, result.status, None))
            answers[i] = {"sent": message.id, "external_id": result.external_id}
    set_statuses(session, changes)
    return answers


def _caused(exc: Exception, cause: Exception) -> Exception:
    exc.__cause__ = cause
    return exc


# A batch starts no send this close to the end of its lease (a platform may take its whole timeout).
SEND_MARGIN = timedelta(seconds=15)


async def _send_each(sends: Sequence[tuple[ChannelAccount, Message, str]], deadline: datetime | None) -> list[Any]:
    """Each message's SendResult, or the exception its send raised. Up to the kind's `sends_at_once`
    sends per account are in flight together, one address's messages one after another in the batch's
    order; past the deadline the sends left are not started (NotStarted), the first one always is."""
    results: list[Any] = [None] * len(sends)
    gates = {account.id: asyncio.Semaphore(max(1, _check_kind(account.kind).rules.sends_at_once))
             for account, _m, _k in sends}
    in_order = {(account.id, message.address): asyncio.Lock() for account, message, _k in sends}
    started = False

    async def one(i: int, account: ChannelAccount, message: Message, key: str) -> None:
        nonlocal started
        async with in_order[(account.id, message.address)], gates[account.id]:
            if started and deadline is not None and clock.now() >= deadline:
                results[i] = jobs.NotStarted("the lease ran short before this send")
                return
            started = True
            try:
                results[i] = await _check_kind(account.kind).send(account, message.address or "", message.content,
                                                                  idempotency_key=key)
            except Exception as exc:
                results[i] = exc

    async with AsyncExitStack() as stack:
        # A kind that keeps connections (SMTP) opens them once for the batch.
        for kind in dict.fromkeys(account.kind for account, _m, _k in sends):
            connections = getattr(_check_kind(kind), "connections", None)
            if connections is not None:
                await stack.enter_async_context(connections())
        await asyncio.gather(*(one(i, *send) for i, send in enumerate(sends)))
    return results


jobs.handler(DELIVER, external=True, many=_deliver_many)(_deliver)
jobs.handler(DELIVER_IDEMPOTENT, external=True, accepts_idempotency_key=True, many=_deliver_many)(_deliver)

