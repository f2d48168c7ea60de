"""What an event batch looks like on the way in: the pydantic shapes, and the fast JSON decoder of POST /events.

The pydantic shapes (`EventItem`, `EventBatch`) are the contract: they make the OpenAPI schema and every
error a caller reads. `decode_batch` is the JSON fast path for the common case, a batch with no bad
item: msgspec decodes the body and checks every item in one pass into columns (`Checked`), the
properties of free-form types stay the JSON text they came as, and known types go through their
schema's msgspec twin (`siyu.core.event_schemas`). It accepts only what the pydantic shapes accept,
with the same values; at the first thing it would refuse or is not sure of it answers None, and the
caller takes the pydantic path, which reports each bad item by index. The checks msgspec has no equal
for (the event type's pattern, the identity type) call the very pydantic validators the shapes use,
once per distinct value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Required

import msgspec
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from siyu.core.event_schemas import schema_for
from siyu.core.tenancy import MAX_ID

MAX_BATCH = 1000
# A sender's clock may run a little ahead; anything later than this is a mistake, not a fact.
FUTURE_TOLERANCE = timedelta(hours=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
IDENTITY_TYPES = frozenset(
    {"phone", "email", "wechat_openid", "wechat_unionid", "wecom_external_userid", "shop_customer_id"}
)
_CUSTOM_IDENTITY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _identity_type(value: str) -> str:
    if value not in IDENTITY_TYPES and not _CUSTOM_IDENTITY.match(value):
        raise ValueError(
            f"{value!r} is not an identity type (one of {', '.join(sorted(IDENTITY_TYPES))}, "
            "or a custom key of lowercase letters, digits and _)"
        )
    return value


EventType = Annotated[str, Field(strict=True, max_length=80, pattern=TYPE_PATTERN)]
IdentityType = Annotated[str, Field(strict=True), AfterValidator(_identity_type)]


@with_config(ConfigDict(extra="forbid"))
class IdentityIn(TypedDict):
    """One key of a person: `{"type": "phone", "value": "+8613800000000"}`."""

    type: IdentityType
    value: Annotated[str, Field(strict=True, min_length=1, max_length=200)]


@with_config(ConfigDict(extra="forbid"))
class EventItem(TypedDict, total=False):
    """One event of a batch, as the API takes it."""

    type: Required[EventType]
    idempotency_key: Annotated[str, Field(strict=True, min_length=1, max_length=200)] | None
    occurred_at: AwareDatetime | None
    contact_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ID)] | None
    identity: IdentityIn | None
    properties: dict[str, Any]


@with_config(ConfigDict(extra="forbid"))
class EventBatch(TypedDict):
    """The body of POST /events."""

    events: Annotated[list[EventItem], Field(min_length=1, max_length=MAX_BATCH)]


@with_config(ConfigDict(extra="forbid"))
class BatchShape(TypedDict):
    """The envelope alone, to tell a malformed body from bad items."""

    events: Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH)]


ITEM: TypeAdapter[EventItem] = TypeAdapter(EventItem)
ITEMS: TypeAdapter[list[EventItem]] = TypeAdapter(list[EventItem])
BATCH: TypeAdapter[EventBatch] = TypeAdapter(EventBatch)
BATCH_SHAPE: TypeAdapter[BatchShape] = TypeAdapter(BatchShape)


# --- checked items ---------------------------------------------------------------------------------


@dataclass
class Checked:
    """Items of a batch that passed every check, column by column (one entry per item in each list)."""

    index: list[int] = field(default_factory=list)  # position in the batch
    type: list[str] = field(default_factory=list)
    occurred_at: list[datetime | None] = field(default_factory=list)  # UTC
    key: list[str | None] = field(default_factory=list)
    contact_id: list[int | None] = field(default_factory=list)
    identity_type: list[str | None] = field(default_factory=list)
    identity_value: list[str | None] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)  # JSON text
    repeats: int = 0  # items dropped as repeats of an earlier item's key in the same batch

    def __len__(self) -> int:
        return len(self.index)

    def columns(self) -> tuple[list[Any], ...]:
        return (
            self.index,
            self.type,
            self.occurred_at,
            self.key,
            self.contact_id,
            self.identity_type,
            self.identity_value,
            self.properties,
        )

    def drop(self, positions: set[int]) -> None:
        """Forget the items at these positions (of the lists, not of the batch)."""
        for column in self.columns():
            column[:] = [v for p, v in enumerate(column) if p not in positions]


# --- the fast path ----------------------------------------------------------------------------------


class _IdentityFast(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    type: str  # checked by IdentityIn's own validator below
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class _ItemFast(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    type: str  # checked by EventItem's own pattern below
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    occurred_at: str | None = None  # parsed below, see _moments
    contact_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None
    identity: _IdentityFast | None = None
    properties: msgspec.Raw = msgspec.Raw(b"{}")


class _BatchFast(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: Annotated[list[_ItemFast], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_DECODER = msgspec.json.Decoder(_BatchFast)
_MOMENTS = msgspec.json.Decoder(list[Annotated[datetime, msgspec.Meta(tz=True)]])
_LONG_FRACTION = re.compile(r"[.,]\d{7}")
_EVENT_TYPE: TypeAdapter[str] = TypeAdapter(EventType)
_IDENTITY_TYPE: TypeAdapter[str] = TypeAdapter(IdentityType)


def _good(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _moments(texts: list[str]) -> list[datetime] | None:
    """The aware datetimes pydantic's AwareDatetime makes of these texts, or None if unsure of one.

    msgspec parses RFC 3339, a subset of what pydantic takes, to the same moments, except that it
    rounds digits beyond microseconds where pydantic cuts them: such texts are left to pydantic.
    msgspec's datetimes carry the standard library's timezones, which compare and convert several
    times faster than pydantic's.
    """
    joined = '","'.join(texts)
    if "\\" in joined or joined.count('"') != 2 * (len(texts) - 1):
        return None  # a quote or backslash of the texts' own would end or escape the JSON array below
    if "." in joined and _LONG_FRACTION.search(joined):
        return None
    try:
        return _MOMENTS.decode(f'["{joined}"]')
    except msgspec.DecodeError:
        return None


def decode_batch(body: bytes, latest: datetime) -> Checked | None:
    """A JSON batch's items ready to store when every one is good (occurring before `latest`), else None."""
    # JSON carries a NUL only as the escape \u0000; the item path refuses such items one by one.
    if b"\\u0000" in body:
        return None
    try:
        items = _DECODER.decode(body).events
    except msgspec.DecodeError:  # malformed, or a field msgspec refuses (ValidationError subclasses it)
        return None
    types = [item.type for item in items]
    distinct = set(types)
    if not all(_good_type(t) for t in distinct):
        return None
    schemas = {t: schema for t in distinct if (schema := schema_for(t)) is not None}
    identities = [item.identity for item in items]
    identity_types = [None if i is None else i.type for i in identities]
    if not all(t is None or _good_identity_type(t) for t in set(identity_types)):
        return None
    keys = [item.idempotency_key for item in items]
    checked = Checked(
        index=list(range(len(items))),
        type=types,
        occurred_at=[None] * len(items),
        key=keys,
        contact_id=[item.contact_id for item in items],
        identity_type=identity_types,
        identity_value=[None if i is None else i.value for i in identities],
    )

    stamped = [p for p, item in enumerate(items) if item.occurred_at is not None]
    if stamped:
        moments = _moments([items[p].occurred_at for p in stamped])  # type: ignore[misc]
        if moments is None:
            return None
        occurred = checked.occurred_at
        for p, moment in zip(stamped, moments, strict=True):
            if moment > latest or moment < EARLIEST:
                return None
            # Stored in UTC; offsets PostgreSQL cannot hold (beyond ±15:59) are valid ISO-8601 too.
            occurred[p] = moment.astimezone(UTC)

    try:
        # A free-form type's properties are any JSON object, stored as the text that came.
        properties = [
            "" if item.type in schemas else str(item.properties, "utf-8") for item in items
        ]
    except UnicodeDecodeError:  # msgspec passes over the bytes of a value it keeps raw
        return None
    if not all(text[:1] == "{" for text in properties if text):
        return None
    for event_type, schema in schemas.items():
        positions = [p for p, t in enumerate(types) if t == event_type]
        if schema.key_required and not all(keys[p] for p in positions):
            return None
        texts = schema.dump_many(b"[" + b",".join([items[p].properties for p in positions]) + b"]")
        if texts is None:
            return None
        for p, text in zip(positions, texts, strict=True):
            properties[p] = text
    checked.properties = properties
    return checked


@lru_cache(maxsize=4096)
def _good_type(value: str) -> bool:
    return _good(_EVENT_TYPE, value)


@lru_cache(maxsize=256)
def _good_identity_type(value: str) -> bool:
    return _good(_IDENTITY_TYPE, value)
