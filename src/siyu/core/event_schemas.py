"""Known event types: a schema per type checked at ingestion; every other type is free-form.

Modules register the types they own with `register_event_schema` at import time. Money is integer
minor units plus an ISO 4217 currency (see `siyu.core.money`).

The pydantic model is the schema. For the JSON fast path of a batch (`siyu.core.event_input`), a model
built only of plain fields (str, int, bool, nested models, lists, optional values; length and bound
constraints; after-validators) also gets a msgspec twin derived from it, which accepts a subset of
what the model accepts and decodes it to the same values. Anything the twin refuses goes to the
model, whose errors are the ones reported; a model the derivation does not understand has no twin.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import msgspec
import pydantic_core
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictInt, StrictStr, TypeAdapter

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
    # The msgspec twin of list[model] (see the module's docstring), None when the model has none.
    fast: msgspec.json.Decoder[list[Any]] | None = None

    def dump_many(self, array: bytes) -> list[str] | None:
        """The stored JSON of each properties object of a JSON array, None unless every one is valid."""
        if self.fast is not None:
            try:
                return [_ENCODE(v).decode() for v in self.fast.decode(array)]
            except (msgspec.DecodeError, ValueError, TypeError, AssertionError):
                return None
        try:
            # Python objects, as the item path validates them (JSON mode would accept other inputs).
            models = self.many.validate_python(msgspec.json.decode(array))
        except (msgspec.DecodeError, ValueError):
            return None
        to_json = pydantic_core.to_json
        return [to_json(m).decode() for m in models]


_ENCODE = msgspec.json.Encoder().encode
_SCHEMAS: dict[str, EventSchema] = {}


def register_event_schema(type: str, model: type[BaseModel], *, key_required: bool = False) -> None:
    """Check the properties of events of `type` against `model` from now on (later registration wins)."""
    twin = msgspec_twin(model)
    _SCHEMAS[type] = EventSchema(
        type,
        model,
        key_required,
        TypeAdapter(model),
        TypeAdapter(list[model]),  # type: ignore[valid-type]
        None if twin is None else msgspec.json.Decoder(list[twin]),  # type: ignore[valid-type]
    )


def schema_for(type: str) -> EventSchema | None:
    """The schema of a known type, None for free-form types."""
    return _SCHEMAS.get(type)


def known_types() -> list[str]:
    """Every type with a schema."""
    return sorted(_SCHEMAS)


# --- msgspec twins ---------------------------------------------------------------------------------

# Settings that leave a model's validation and dump as the twin's; any other one means no twin.
_PLAIN_CONFIG = frozenset({"extra", "title", "json_schema_extra", "frozen"})
_BOUNDS = {annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le", annotated_types.Lt: "lt"}
_LENGTHS = {annotated_types.MinLen: "min_length", annotated_types.MaxLen: "max_length"}


class _NoTwin(Exception):
    """The model uses something the derivation does not translate."""


def msgspec_twin(model: type[BaseModel]) -> type[msgspec.Struct] | None:
    """A msgspec Struct accepting a subset of what `model` accepts, decoding it to what the model dumps."""
    try:
        return _struct_of(model)
    except _NoTwin:
        return None


def _struct_of(model: type[BaseModel]) -> type[msgspec.Struct]:
    config = model.model_config
    decorators = model.__pydantic_decorators__
    if (
        config.get("extra") != "forbid"
        or set(config) - _PLAIN_CONFIG
        or any(getattr(decorators, f.name) for f in dataclasses.fields(decorators))
        or model.model_post_init is not BaseModel.model_post_init
        or model.__init__ is not BaseModel.__init__
    ):
        raise _NoTwin
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    after: list[tuple[str, Callable[[Any], Any]]] = []
    for name, info in model.model_fields.items():
        if (
            info.alias not in (None, name)
            or info.validation_alias not in (None, name)
            or info.serialization_alias not in (None, name)
            or info.exclude
            or info.default_factory is not None
        ):
            raise _NoTwin
        checks: dict[str, Any] = {}
        for meta in info.metadata:
            if isinstance(meta, annotated_types.Interval | annotated_types.Len):
                raise _NoTwin
            if isinstance(meta, AfterValidator) and _arguments(meta.func) == 1:
                after.append((name, meta.func))  # type: ignore[arg-type]
            elif type(meta) in _BOUNDS:
                checks[_BOUNDS[type(meta)]] = getattr(meta, _BOUNDS[type(meta)])
            elif type(meta) in _LENGTHS:
                checks[_LENGTHS[type(meta)]] = getattr(meta, _LENGTHS[type(meta)])
            elif not isinstance(meta, Strict):  # msgspec is always strict
                raise _NoTwin
        kind = _type_of(info.annotation)
        if checks:
            kind = Annotated[kind, msgspec.Meta(**checks)]
        if info.is_required():
            fields.append((name, kind))
        elif info.default is None or type(info.default) in (str, int, bool):
            fields.append((name, kind, info.default))
        else:
            raise _NoTwin

    def post_init(self: Any) -> None:
        # pydantic runs a field's after-validators on the checked value and keeps what they return.
        for name, fn in after:
            setattr(self, name, fn(getattr(self, name)))

    namespace = {"__post_init__": post_init} if after else {}
    # kw_only: defaults may come before required fields, so the fields keep the model's order (the dump's).
    return msgspec.defstruct(
        f"{model.__name__}Twin",
        fields,
        namespace=namespace,
        forbid_unknown_fields=True,
        kw_only=True,
        gc=False,
    )


def _arguments(fn: Any) -> int | None:
    code = getattr(fn, "__code__", None)
    return None if code is None else int(code.co_argcount)


def _type_of(annotation: Any) -> Any:
    """The msgspec type of a field's annotation (whose own constraints pydantic moved to the field)."""
    if annotation in (str, int, bool):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _struct_of(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and len(args) == 1:
        return list[_type_of(args[0])]  # type: ignore[misc]
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return _type_of(inner) | None
    # Anything else, constraints inside a list or an optional included, is not translated.
    raise _NoTwin


# Shop orders carry real money: a retried webhook must not count an order twice, so the key is required.
register_event_schema("order.paid", OrderPaid, key_required=True)
register_event_schema("order.refunded", OrderRefunded, key_required=True)
