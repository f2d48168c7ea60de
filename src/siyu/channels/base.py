"""The adapter protocol every channel module implements, and the shapes that cross it.

An adapter is one module per channel (`siyu.channels.wechat_oa`, `.wecom`, `.sms`, `.email`,
`.webhook`). It turns a platform's callback into `Inbound` items for `service.receive`, and sends one
`Content` to one address for the `channels.deliver` job. Its platform rules are data (`PlatformRules`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from siyu.channels.models import ChannelAccount

# A link in a message's text (made a tracked link by broadcasts, clickable in an email's HTML): it ends
# before whitespace, quotes, angle brackets and the full-width punctuation of Chinese text.
URL = re.compile(r"https?://[^\s<>\"'，。！？；：、）】》」』]+[^\s<>\"'，。！？；：、）】》」』.,;:!?)]")


@dataclass(frozen=True)
class PlatformRules:
    """A channel's published limits, as data: read by senders, broadcasts and the console."""

    # The contact identity type that addresses a person on this channel.
    identity_type: str
    # The consent channel of siyu.contacts.consent (wechat_oa, wecom, sms, email); None: not a person.
    consent_channel: str | None
    # Calls per minute / hour per account (or corp) the platform allows, None when it states none.
    per_minute: int | None = None
    per_hour: int | None = None
    # Free-form messages only within this many hours of the contact's last message (OA: 48), and at
    # most `window_sends` of them in that window (OA: 5).
    reply_window_hours: int | None = None
    window_sends: int | None = None
    # Marketing messages a contact may receive per month from this account (WeCom mass sends: 4).
    marketing_per_month: int | None = None
    # Longest text one message carries.
    max_text: int | None = None
    # Content types the channel can carry (text, link, image, miniprogram, email...).
    content_types: tuple[str, ...] = ("text",)
    notes: tuple[str, ...] = ()
    # How many sends to one account a batch of deliver jobs keeps in flight at once (the platform's
    # rate limits still apply to each call); messages to one address always leave in order.
    sends_at_once: int = 1


@dataclass(frozen=True)
class ConfigField:
    """One setting of an account of this kind, as the console form and the API show it.

    `secret` settings go to `ChannelAccount.secrets` and are never shown again once saved.
    """

    name: str
    label: str  # English; marked for translation with N_ in the adapter module
    secret: bool = False
    required: bool = True
    help: str = ""
    default: str = ""


@dataclass(frozen=True)
class Inbound:
    """One normalised callback item: a message or an event from a person on an account.

    `dedupe_key` is unique per account: MsgId, or sender + CreateTime + Event + ChangeType for events
    without an id. `kind` is a message type (text, image, ...) or `event`; `event` then names it in
    siyu's words: joined, left, scanned, menu_click, menu_view, template_sent, edited, transfer_failed...
    """

    dedupe_key: str
    sender: str  # the person's address on the channel (openid, external_userid, phone, email)
    kind: str
    text: str = ""
    event: str | None = None
    # Platform specifics kept on the event/message: scene/state, welcome_code, media_id, staff userid...
    details: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    external_id: str | None = None
    # More identities of the same person (a unionid next to an openid).
    extra_identities: tuple[tuple[str, str], ...] = ()
    staff_userid: str | None = None
    nickname: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What the platform answered to one send."""

    external_id: str | None = None
    status: str = "sent"  # sent | delivered


class ChannelError(Exception):
    """A platform refused or failed a call. `retryable` errors are retried by the deliver job (after
    `retry_after` seconds when the platform said how long); others fail the message with the reason.
    `done` means the platform says the thing already happened (a welcome code already used: 41051)."""

    def __init__(
        self, code: str, message: str, *, retryable: bool = False, retry_after: float | None = None,
        done: bool = False, unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        self.done = done
        # The call may have taken effect (a read timeout): the deliver job is then `unknown`.
        self.unknown = unknown


class Adapter(Protocol):
    """What every channel module registers with `register_adapter`."""

    kind: str
    # The kind's name in the console (English, marked for translation).
    label: str
    rules: PlatformRules
    # The settings an account of this kind takes (config and secrets), in form order.
    fields: tuple[ConfigField, ...]
    # Whether the platform dedupes on our idempotency key (then a crashed send may be repeated safely).
    accepts_idempotency_key: bool

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        """Raise siyu.core.errors.Invalid (with the field) when an account's settings can't work."""

    async def check_connection(self, account: ChannelAccount) -> str:
        """Make one harmless real call (fetch a token, SMTP NOOP); a short description, or ChannelError."""

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        """Send one message; raise ChannelError when the platform refuses."""

    # Optional: `connections()`, an async context manager inside which sends may share connections (the
    # email adapter's SMTP sessions); a batch of deliver jobs enters it once around its sends.


_ADAPTERS: dict[str, Adapter] = {}


def register_adapter(adapter: Adapter) -> Adapter:
    """Make an adapter available under its kind (a later registration replaces it)."""
    _ADAPTERS[adapter.kind] = adapter
    return adapter


def adapter_for(kind: str) -> Adapter | None:
    """The adapter of a kind, importing the channel modules on first use."""
    if kind not in _ADAPTERS:
        load_adapters()
    return _ADAPTERS.get(kind)


def adapter_kinds() -> list[str]:
    """Every registered channel kind."""
    load_adapters()
    return sorted(_ADAPTERS)


# The channel modules; each registers its adapter on import. Later channels add themselves here.
ADAPTER_MODULES: tuple[str, ...] = (
    "siyu.channels.webhook", "siyu.channels.wechat_oa", "siyu.channels.sms", "siyu.channels.email",
    "siyu.channels.chat_archive", "siyu.channels.wecom.adapter",
)


def load_adapters() -> None:
    """Import every channel module so its adapter registers."""
    import importlib

    for name in ADAPTER_MODULES:
        importlib.import_module(name)
