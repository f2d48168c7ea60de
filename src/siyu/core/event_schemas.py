"""Known event types: a schema per type checked at ingestion; every other type is free-form.

Modules register the types they own with `register_event_schema` at import time. Money is integer
minor units plus an ISO 4217 currency (see `siyu.core.money`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter

from siyu.core.money import CURRENCIES


def _currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"unknown currency {code!r} (use an ISO 4217 code such as CNY)")
    return code


Currency = Annotated[StrictStr, AfterValidator(_currency)]
MinorUnits = Annotated[StrictInt, Field(ge=0, description="integer minor units (fen, cents)")]
Reference = Annotated[StrictStr, Field(min_length=1, max_length=200)]


class EventProperties(BaseModel):
    """Base of a known type's properties: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class OrderItem(EventProperties):
    sku: Reference
    qty: Annotated[StrictInt, Field(ge=1)]
    price: MinorUnits


class OrderPaid(EventProperties):
    """A shop order was paid. `amount` is what was charged, so it may differ from Σ qty×price
    (shipping, discounts, coupons); it is not checked against the items."""

    order_id: Reference
    amount: MinorUnits
    currency: Currency
    items: Annotated[list[OrderItem], Field(min_length=1)]


class OrderRefunded(EventProperties):
    """Money went back to the customer for an order (partial refunds are several events)."""

    order_id: Reference
    amount: Annotated[StrictInt, Field(gt=0, description="integer minor units (fen, cents)")]
    currency: Currency


@dataclass(frozen=True)
class EventSchema:
    """A known type: its properties model, and whether senders must give an idempotency key."""

    event_type: str
    model: type[BaseModel]
    key_required: bool
    one: TypeAdapter[Any]
    many: TypeAdapter[list[Any]]


_SCHEMAS: dict[str, EventSchema] = {}


def register_event_schema(type: str, model: type[BaseModel], *, key_required: bool = False) -> None:
    """Check the properties of events of `type` against `model` from now on (later registration wins)."""
    _SCHEMAS[type] = EventSchema(type, model, key_required, TypeAdapter(model), TypeAdapter(list[model]))  # type: ignore[valid-type]


def schema_for(type: str) -> EventSchema | None:
    """The schema of a known type, None for free-form types."""
    return _SCHEMAS.get(type)


def known_types() -> list[str]:
    """Every type with a schema."""
    return sorted(_SCHEMAS)


# Shop orders carry real money: a retried webhook must not count an order twice, so the key is required.
register_event_schema("order.paid", OrderPaid, key_required=True)
register_event_schema("order.refunded", OrderRefunded, key_required=True)
