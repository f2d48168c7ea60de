"""WeCom chat archive (会话内容存档): the staff's 1:1 and group chats with customers, pulled into the archive.

A `wecom_archive` account holds the corp's CorpID, the archive's own secret and the RSA private key(s)
whose public halves are registered in WeCom's admin (`private_key` for `publickey_ver`, and older
versions as `private_key_v<N>` secrets). The `channels.chat_archive.pull` job runs every
PULL_MINUTES per active account: it asks the SDK for records after the account's last `seq`, unwraps
each record's random key (`chat_archive_sdk.unwrap_random_key`), lets the SDK decrypt the message and
keeps it as a `Message` (external_id = msgid, once). A message from a staff member is `out`, from a
customer (external userids start wo/wm) `in`; the customer is found or created by their
`wecom_external_userid` identity. The seq moves only past records stored, and every pull records the
account's health: an empty pull is a success, an error is shown, never "nothing new".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from siyu.channels import service
from siyu.channels.base import ChannelError, ConfigField, PlatformRules, SendResult, register_adapter
from siyu.channels.chat_archive_models import ChatArchiveCursor
from siyu.channels.chat_archive_sdk import (
    ArchiveError,
    FinanceSdk,
    load_private_key,
    load_sdk,
    unwrap_random_key,
)
from siyu.channels.models import ChannelAccount
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.conversations.models import Message
from siyu.core import clock, jobs
from siyu.core.errors import Invalid
from siyu.core.tenancy import bind_workspace
from siyu.settings import get_settings

KIND = "wecom_archive"
PULL = "channels.chat_archive.pull"
PULL_MINUTES = 5
PAGE_SIZE = 500
# Pages one run reads at most; a long backlog continues at the next run.
MAX_PAGES = 20
EXTERNAL_PREFIXES = ("wo", "wm")
_OLDER_KEY = re.compile(r"^private_key_v(\d+)$")


def N_(message: str) -> str:
    return message


def sdk_path(account: ChannelAccount) -> str | None:
    """Where this account's SDK library is: its own setting, else the deployment's."""
    return str(account.config.get("finance_sdk_path") or "") or get_settings().wecom_finance_sdk


def private_keys(account: ChannelAccount) -> dict[int, str]:
    """The account's private keys (PEM) by public key version."""
    keys: dict[int, str] = {}
    for name, value in (account.secrets or {}).items():
        if (m := _OLDER_KEY.match(name)) and value:
            keys[int(m.group(1))] = str(value)
    version = str(account.config.get("publickey_ver") or "")
    if version.isdigit() and account.secrets.get("private_key"):
        keys[int(version)] = str(account.secrets["private_key"])
    return keys


class WeComArchiveAdapter:
    kind = KIND
    label = N_("WeCom chat archive")
    rules = PlatformRules(identity_type="wecom_external_userid", consent_channel=None, content_types=(),
                          notes=(N_("Reads the staff's chats with customers; sends nothing."),))
    fields: tuple[ConfigField, ...] = (
        ConfigField("corp_id", N_("CorpID")),
        ConfigField("secret", N_("Chat archive secret"), secret=True,
                    help=N_("The archive's own secret, not an app's.")),
        ConfigField("publickey_ver", N_("Public key version"), default="1",
                    help=N_("The version WeCom's admin shows for the public key you registered.")),
        ConfigField("private_key", N_("RSA private key (PEM)"), secret=True,
                    help=N_("The private half of that public key.")),
        ConfigField("proxy", N_("Proxy"), required=False,
                    help=N_("An HTTP proxy with the trusted IP, e.g. http://10.0.0.1:3128; empty: direct.")),
        ConfigField("proxy_password", N_("Proxy password"), secret=True, required=False,
                    help=N_("As user:password, when the proxy asks for one.")),
        ConfigField("finance_sdk_path", N_("SDK library path"), required=False,
                    help=N_("Where libWeWorkFinanceSdk_C.so is on the worker; empty: SIYU_WECOM_FINANCE_SDK.")),
    )
    accepts_idempotency_key = False

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        if not str(config.get("corp_id") or "").strip():
            raise Invalid("the CorpID", field="config.corp_id")
        if not str(config.get("publickey_ver") or "").isdigit():
            raise Invalid("the public key version is a number", field="config.publickey_ver")
        if not str(secrets.get("secret") or "").strip():
            raise Invalid("the chat archive's secret", field="secrets.secret")
        for name, value in secrets.items():
            if name == "private_key" or _OLDER_KEY.match(name):
                try:
                    load_private_key(str(value))
                except ArchiveError as exc:
                    raise Invalid("an unencrypted RSA private key in PEM", field=f"secrets.{name}") from exc
        if not secrets.get("private_key"):
            raise Invalid("the RSA private key", field="secrets.private_key")

    async def check_connection(self, account: ChannelAccount) -> str:
        def probe() -> str:
            sdk = load_sdk(sdk_path(account))
            with sdk.open(str(account.config["corp_id"]), str(account.secrets["secret"])) as handle:
                sdk.chat_data(handle, 0, 1)
            return "the chat archive answered"

        try:
            return await asyncio.to_thread(probe)
        except ArchiveError as exc:
            raise ChannelError(exc.code, str(exc.args[0])) from exc

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        raise ChannelError("receive_only", "the chat archive reads messages; it sends nothing")


ADAPTER = register_adapter(WeComArchiveAdapter())


# --- pulling ----------------------------------------------------------------------------------------


@dataclass
class Pulled:
    """What one pull did: records read, messages stored (new), the seq reached and the error, if any."""

    read: int = 0
    stored: int = 0
    seq: int = 0
    error: str | None = None


def cursor_of(session: Session, account: ChannelAccount) -> ChatArchiveCursor:
    """The account's archive position (created at 0 the first time)."""
    row = session.execute(select(ChatArchiveCursor).where(
        ChatArchiveCursor.account_id == account.id)).scalar_one_or_none()
    if row is None:
        row = ChatArchiveCursor(account_id=account.id, seq=0, pulled=0)
        session.add(row)
        session.flush()
    return row


def position(session: Session, account: ChannelAccount) -> ChatArchiveCursor | None:
    """Where the account's pulls have got to, None before the first (for the console)."""
    if account.kind != KIND:
        return None
    return session.execute(select(ChatArchiveCursor).where(
        ChatArchiveCursor.account_id == account.id)).scalar_one_or_none()


def _is_external(userid: str, staff: Mapping[str, int]) -> bool:
    return userid not in staff and userid.startswith(EXTERNAL_PREFIXES)


def _text_of(message: Mapping[str, Any]) -> str:
    kind = str(message.get("msgtype") or "")
    body = message.get(kind)
    if not isinstance(body, Mapping):
        return ""
    for name in ("content", "title", "description"):
        if isinstance(body.get(name), str):
            return str(body[name])
    return ""


@dataclass
class _Writer:
    """Keeps one page of decrypted messages at a time: one dedupe query per page, each customer
    upserted once per run, one flush per page."""

    session: Session
    account: ChannelAccount
    cursor: ChatArchiveCursor
    result: Pulled
    staff: dict[str, int]
    contacts: dict[str, int] = field(default_factory=dict)

    def contact_id(self, external_userid: str) -> int:
        if external_userid not in self.contacts:
            contact, _ = contacts.upsert_contact(
                self.session, identities=[{"type": "wecom_external_userid", "value": external_userid}],
                actor=None, source=f"channel:{KIND}")
            self.contacts[external_userid] = contact.id
        return self.contacts[external_userid]

    def store(self, opened: list[tuple[int, str, dict[str, Any]]]) -> None:
        """Archive the page's messages not archived yet, then move the account's seq past them."""
        if not opened:
            return
        ids = sorted({msgid[:128] for _, msgid, _ in opened})
        known = set(self.session.execute(select(Message.external_id).where(
            Message.account_id == self.account.id, Message.external_id.in_(ids))).scalars())
        for seq, msgid, message in opened:
            self.result.read += 1
            if msgid[:128] not in known:
                known.add(msgid[:128])
                self.session.add(self.message(message, msgid[:128]))
                self.result.stored += 1
            self.cursor.seq = self.result.seq = max(self.cursor.seq, seq)
            self.cursor.pulled += 1
        self.session.flush()

    def message(self, message: Mapping[str, Any], msgid: str) -> Message:
        sender = str(message.get("from") or "")
        recipients = [str(r) for r in message.get("tolist") or [] if isinstance(r, str)]
        inbound = _is_external(sender, self.staff)
        customer = sender if inbound else next((r for r in recipients if _is_external(r, self.staff)), None)
        staff_userid = next((r for r in recipients if r in self.staff), None) if inbound else sender
        msgtime = message.get("msgtime")
        at = datetime.fromtimestamp(msgtime / 1000, UTC) if isinstance(msgtime, int | float) else clock.now()
        kind = str(message.get("msgtype") or message.get("action") or "event")[:16]
        return Message(
            account_id=self.account.id, channel=KIND, contact_id=self.contact_id(customer) if customer else None,
            staff_id=self.staff.get(staff_userid or ""), direction="in" if inbound else "out", msg_type=kind,
            text=_text_of(message), content=dict(message), address=(customer or sender)[:255] or None,
            origin=None if inbound else "chat_archive", status="received" if inbound else "sent",
            external_id=msgid, created_at=at, sent_at=None if inbound else at,
        )


def _keys(account: ChannelAccount) -> dict[int, rsa.RSAPrivateKey]:
    return {version: load_private_key(pem) for version, pem in private_keys(account).items()}


def _open(sdk: FinanceSdk, keys: Mapping[int, rsa.RSAPrivateKey], record: Mapping[str, Any]) -> tuple[
        int, str, dict[str, Any]]:
    """One record's seq, msgid and message: its random key unwrapped here, the message opened by the SDK."""
    seq, version = int(record.get("seq", 0)), record.get("publickey_ver")
    key = keys.get(int(version)) if isinstance(version, int | str) and str(version).isdigit() else None
    if key is None:
        raise ArchiveError("no_key", f"no private key for publickey_ver {version} (record seq {seq}): "
                                     f"add it as the secret private_key_v{version}")
    random_key = unwrap_random_key(key, str(record.get("encrypt_random_key") or ""))
    message = sdk.decrypt(random_key, str(record.get("encrypt_chat_msg") or ""))
    return seq, str(message.get("msgid") or record.get("msgid") or f"seq:{seq}"), message


def _read(session: Session, account: ChannelAccount, sdk: FinanceSdk, cursor: ChatArchiveCursor,
          result: Pulled) -> None:
    keys = _keys(account)
    staff = {s.wecom_userid: s.id for s in staff_service.list_staff(session) if s.wecom_userid}
    writer = _Writer(session, account, cursor, result, staff)
    with sdk.open(str(account.config.get("corp_id") or ""), str(account.secrets.get("secret") or "")) as handle:
        for _ in range(MAX_PAGES):
            records = sdk.chat_data(handle, cursor.seq, PAGE_SIZE, proxy=str(account.config.get("proxy") or ""),
                                    password=str(account.secrets.get("proxy_password") or ""))
            opened: list[tuple[int, str, dict[str, Any]]] = []
            try:
                for record in records:
                    opened.append(_open(sdk, keys, record))
            finally:
                # The records before a failing one are kept, and the seq moves past them only.
                writer.store(opened)
            if len(records) < PAGE_SIZE:
                return


def pull(session: Session, account: ChannelAccount, *, sdk: FinanceSdk | None = None) -> Pulled:
    """Read the archive after the account's last seq into the archive; never raises on archive errors:
    progress up to the failing record is kept and the error is the account's health (and the result's)."""
    session.execute(select(ChannelAccount.id).where(ChannelAccount.id == account.id).with_for_update())
    cursor = cursor_of(session, account)
    result = Pulled(seq=cursor.seq)
    try:
        _read(session, account, sdk or load_sdk(sdk_path(account)), cursor, result)
    except ArchiveError as exc:
        result.error = str(exc)
    cursor.last_pull_at = clock.now()
    service.record_health(session, account, error=result.error)
    session.flush()
    return result


def schedule(session: Session, account: ChannelAccount, *, now: bool = False) -> bool:
    """Queue the account's next pull (at the start of the next period, or `now`); True if queued.

    One job per account and period: saving an account twice queues one pull.
    """
    if account.kind != KIND or account.status != "active":
        return False
    period = PULL_MINUTES * 60
    slot = int(clock.now().timestamp() // period) + (0 if now else 1)
    key = f"{account.id}:{'now:' if now else ''}{slot}"
    run_at = clock.now() if now else datetime.fromtimestamp(slot * period, UTC)
    return jobs.enqueue(session, PULL, key, {"account_id": account.id}, workspace_id=account.workspace_id,
                        run_at=run_at)


@jobs.handler(PULL, external=True, accepts_idempotency_key=True, max_attempts=3)
def pull_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Pull one account's archive, then queue its next pull (reading again after a crash is harmless:
    messages are kept once by msgid)."""
    bind_workspace(session, ctx.workspace_id)
    account = session.get(ChannelAccount, ctx.payload["account_id"])
    if account is None or account.kind != KIND:
        return {"stopped": "the account is gone"}
    if account.status != "active":
        return {"stopped": "the account is paused; resuming it starts the pulls again"}
    try:
        with session.begin_nested():
            result = pull(session, account)
    except SQLAlchemyError as exc:
        # Shown on the account and tried again next period: a failed job must not end the schedule.
        service.record_health(session, account, error=f"{type(exc).__name__}: {str(exc)[:500]}")
        schedule(session, account)
        return {"error": type(exc).__name__}
    schedule(session, account)
    return {"read": result.read, "stored": result.stored, "seq": result.seq, "error": result.error}
