"""The JSON fast path of a batch: it takes only what the pydantic shapes take, to the same values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from siyu.core.event_input import _moments, decode_batch
from siyu.core.event_schemas import EventProperties, msgspec_twin, schema_for
from siyu.core.events import record_events, record_events_json
from siyu.core.models import Event
from siyu.core.tenancy import bind_workspace

LATEST = datetime(2030, 1, 1, tzinfo=UTC)
_PAID = {"order_id": "o", "amount": 100, "currency": "CNY", "items": [{"sku": "a", "qty": 1, "price": 100}]}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.sampled_from(["CNY", "USD", "XXX1", "", "a" * 201]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _mutations(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid properties with one field replaced, removed or added."""
    names = sorted(base)
    return st.one_of(
        st.just(base),
        st.builds(lambda k, v: {**base, k: v}, st.sampled_from(names), json_values),
        st.builds(lambda k: {n: v for n, v in base.items() if n != k}, st.sampled_from(names)),
        st.builds(lambda v: {**base, "extra": v}, json_values),
        st.builds(
            lambda k, v: {**base, "items": [{**base["items"][0], k: v}]} if "items" in base else base,
            st.sampled_from(["sku", "qty", "price", "other"]),
            json_values,
        ),
    )


@settings(max_examples=200)
@given(
    st.one_of(
        st.tuples(st.just("order.paid"), _mutations(_PAID)),
        st.tuples(st.just("order.refunded"), _mutations({"order_id": "o", "amount": 5, "currency": "CNY"})),
    )
)
def test_a_schema_twin_accepts_only_what_its_model_accepts_and_dumps_the_same(case):
    event_type, properties = case
    schema = schema_for(event_type)
    assert schema is not None
    assert schema.fast is not None

    texts = schema.dump_many(json.dumps([properties]).encode())

    try:
        model = schema.one.validate_python(properties)
    except ValidationError:
        assert texts is None
    else:
        # A refusal by the twin is allowed (the model then decides); an acceptance must agree with it.
        if texts is not None:
            assert json.loads(texts[0]) == model.model_dump(mode="json")


def test_models_the_derivation_does_not_understand_have_no_twin():
    class Delivered(EventProperties):
        at: AwareDatetime

    class Coded(EventProperties):
        code: Annotated[str, Field(pattern=r"^[A-Z]+$")]

    class Checked(EventProperties):
        code: StrictStr

        @field_validator("code")
        @classmethod
        def upper(cls, v: str) -> str:
            return v.upper()

    class Lax(EventProperties):
        tags: list[Annotated[str, AfterValidator(str.strip)]]

    class Plain(EventProperties):
        code: StrictStr
        count: Annotated[StrictInt, Field(ge=1)] = 1
        note: str | None = None

    assert [msgspec_twin(m) for m in (Delivered, Coded, Checked, Lax)] == [None] * 4
    assert msgspec_twin(Plain) is not None


datetime_texts = st.builds(
    lambda date, sep, time, fraction, zone: f"{date}{sep}{time}{fraction}{zone}",
    st.sampled_from(["2026-03-01", "2026-02-29", "2024-02-29", "0001-01-01", "9999-12-31", "2026-3-1", "20260301"]),
    st.sampled_from(["T", "t", " ", "_"]),
    st.sampled_from(["10:00:00", "23:59:60", "24:00:00", "10:00", "1000", "10:00:00"]),
    st.one_of(
        st.just(""), st.text(alphabet="0123456789", min_size=0, max_size=10).map(lambda d: "." + d), st.just(",5")
    ),
    st.sampled_from(
        ["Z", "z", "+08:00", "-00:00", "+0800", "+08", "+16:00", "+23:59", "+24:00", "-14:00", "", "+08:00:30"]
    ),
)


@settings(max_examples=300)
@given(st.lists(datetime_texts, min_size=1, max_size=4))
def test_datetimes_the_fast_path_reads_are_pydantics(texts):
    moments = _moments(texts)

    if moments is not None:
        expected = TypeAdapter(list[AwareDatetime]).validate_python(texts)
        assert moments == expected
        assert [m.utcoffset() for m in moments] == [e.utcoffset() for e in expected]


@pytest.mark.parametrize(
    "item",
    [
        {"type": "a.b\n"},
        {"type": "a.b", "occurred_at": "2026-03-01T10:00:00.9999999Z"},
        {"type": "a.b", "occurred_at": "2026-03-01T10:00Z"},
        {"type": "a.b", "occurred_at": 1772359200},
        {"type": "a.b", "properties": None},
        {"type": "a.b", "properties": [1]},
        {"type": "a.b", "identity": {"type": "Phone", "value": "1"}},
        {"type": "a.b", "identity": {"type": "phone", "value": ""}},
        {"type": "a.b", "idempotency_key": ""},
        {"type": "a.b", "unknown": 1},
        {"type": "a.b", "properties": {"path": "/a\u0000b"}},
        {"type": "a.b", "contact_id": 1.0},
        {"type": "a.b", "contact_id": True},
        {"type": "order.paid", "properties": _PAID},
        {"type": "order.paid", "idempotency_key": "k", "properties": {**_PAID, "amount": "100"}},
    ],
)
def test_items_the_fast_path_is_unsure_of_go_to_pydantic(db, make_workspace, item):
    bind_workspace(db, make_workspace().id)
    body = json.dumps({"events": [item]}).encode()

    assert decode_batch(body, LATEST) is None
    outcomes = []
    for record in (lambda: record_events(db, [item]), lambda: record_events_json(db, body)):
        savepoint = db.begin_nested()
        try:
            result = record()
            outcomes.append((result.accepted, result.errors))
        finally:
            savepoint.rollback()
    assert outcomes[0] == outcomes[1]


def test_the_fast_path_keeps_free_form_properties_as_sent(db, make_workspace):
    bind_workspace(db, make_workspace().id)
    raw = b'{"big": 123456789012345678901234567890, "text": "\\u00e9\\ud83d\\ude00", "n": [1.5, -0, {}]}'
    body = b'{"events": [{"type": "a.b", "properties": ' + raw + b"}]}"

    checked = decode_batch(body, LATEST)
    result = record_events_json(db, body)

    assert checked is not None
    assert json.loads(checked.properties[0]) == json.loads(raw)
    assert result.accepted == 1
    stored = db.get(Event, result.event_ids[0])
    assert stored.properties == {"big": 123456789012345678901234567890, "text": "é😀", "n": [1.5, 0, {}]}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(st.lists(datetime_texts, min_size=1, max_size=5))
def test_an_occurred_at_is_stored_alike_on_both_paths(db, make_workspace, texts):
    bind_workspace(db, make_workspace().id)
    items = [{"type": "a.b", "idempotency_key": f"k{i}", "occurred_at": t} for i, t in enumerate(texts)]
    body = json.dumps({"events": items}).encode()
    stored = []
    for record in (lambda: record_events(db, items), lambda: record_events_json(db, body)):
        savepoint = db.begin_nested()
        try:
            result = record()
            stored.append(
                (result.errors, sorted((db.get(Event, i).occurred_at, k) for k, i in result.event_ids.items()))
            )
        finally:
            savepoint.rollback()
    assert stored[0] == stored[1]


def test_an_occurred_at_an_hour_ahead_is_refused_by_the_item_path():
    soon = (LATEST + timedelta(seconds=1)).isoformat()
    body = json.dumps({"events": [{"type": "a.b", "occurred_at": soon}]}).encode()

    assert decode_batch(body, LATEST) is None
