"""Segment rules: validation names the exact place of a mistake; the compiled SQL agrees with the reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.models import (
    AttributeDefinition,
    Consent,
    Contact,
    ContactTag,
    Identity,
    Segment,
    SegmentMember,
    Tag,
    TagGroup,
)
from siyu.contacts.segment_rules import rule_schema, validate_rule
from siyu.contacts.segment_sql import compile_rule
from siyu.core import clock
from siyu.core.errors import Invalid
from siyu.core.models import Event
from siyu.core.tenancy import bind_workspace
from tests.contacts.segment_reference import Person, evaluate

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ATTRIBUTES = {"score": "number", "plan": "choice", "hobbies": "multi_choice", "joined": "date", "note": "text"}
CITIES = ["Shanghai", "Shenzhen", "Beijing", "", "上海"]
TYPES = ["order.paid", "page.viewed", "segment.entered", "tag.added", "coupon.redeemed"]


def _setup(db: Session, make_workspace) -> tuple[int, list[int], int]:
    clock.set_clock(lambda: NOW)
    ws = make_workspace("Rules")
    bind_workspace(db, ws.id)
    group = TagGroup(name="interest")
    db.add(group)
    db.flush()
    tags = [Tag(group_id=group.id, name=n) for n in ("tea", "coffee", "vip")]
    db.add_all(tags)
    db.add_all(AttributeDefinition(key=k, label=k, type=t) for k, t in ATTRIBUTES.items())
    segment = Segment(name="existing", kind="static")
    db.add(segment)
    db.flush()
    return ws.id, [t.id for t in tags], segment.id


# --- strategies ---------------------------------------------------------------------------------

days_ago = st.integers(min_value=0, max_value=120)
text = st.sampled_from(["Shang", "Shanghai", "hai", "S", "上", "Bei"])
number = st.integers(min_value=-2, max_value=6)


def field_leaf() -> st.SearchStrategy[dict[str, Any]]:
    iso = days_ago.map(lambda d: (NOW - timedelta(days=d)).isoformat())
    birthdays = st.sampled_from(["1990-01-01", "1985-06-15", "2000-12-31"])
    return st.one_of(
        st.builds(lambda op, v: {"field": "city", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "contains", "starts_with"]), text),
        st.builds(lambda op, v: {"field": "city", "op": op, "value": v},
                  st.sampled_from(["in", "not_in"]), st.lists(st.sampled_from([*CITIES[:3], "上海"]), min_size=1)),
        st.builds(lambda op: {"field": "city", "op": op}, st.sampled_from(["is_set", "is_not_set"])),
        st.builds(lambda op, v: {"field": "order_count", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), number),
        st.builds(lambda a, b: {"field": "revenue", "op": "between", "value": sorted([a, b])}, number, number),
        st.builds(lambda op: {"field": "rfm_recency", "op": op}, st.sampled_from(["is_set", "is_not_set"])),
        st.builds(lambda op, v: {"field": "last_order_at", "op": op, "value": v},
                  st.sampled_from(["before", "after"]), iso),
        st.builds(lambda d: {"field": "last_order_at", "op": "within_last_days", "value": d},
                  st.integers(min_value=1, max_value=90)),
        st.builds(lambda op, v: {"field": "stage", "op": op, "value": v},
                  st.sampled_from(["eq", "ne"]), st.sampled_from(["new", "engaged", "customer"])),
        st.builds(lambda op, v: {"field": "birthday", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "before", "after"]), birthdays),
        st.builds(lambda v: {"field": "do_not_contact", "op": "eq", "value": v}, st.booleans()),
    )


def attribute_leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda op, v: {"attribute": "score", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "gt", "lte"]), number),
        st.builds(lambda op: {"attribute": "score", "op": op}, st.sampled_from(["is_set", "is_not_set"])),
        st.builds(lambda op, v: {"attribute": "plan", "op": op, "value": v},
                  st.sampled_from(["eq", "ne"]), st.sampled_from(["gold", "silver"])),
        st.builds(lambda v: {"attribute": "plan", "op": "in", "value": v},
                  st.lists(st.sampled_from(["gold", "silver", "bronze"]), min_size=1)),
        st.builds(lambda v: {"attribute": "hobbies", "op": "contains", "value": v},
                  st.sampled_from(["tea", "golf", "3"])),
        st.builds(lambda op: {"attribute": "hobbies", "op": op}, st.sampled_from(["is_set", "is_not_set"])),
        st.builds(lambda op, v: {"attribute": "joined", "op": op, "value": v},
                  st.sampled_from(["before", "after", "eq"]), st.sampled_from(["2024-01-01", "2025-06-30"])),
        st.builds(lambda op: {"attribute": "note", "op": op}, st.sampled_from(["is_set", "is_not_set"])),
        st.builds(lambda v: {"attribute": "note", "op": "contains", "value": v}, text),
    )


def event_leaf() -> st.SearchStrategy[dict[str, Any]]:
    prop = st.one_of(
        st.builds(lambda op, v: {"property": "amount", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), st.integers(0, 300)),
        st.builds(lambda v: {"property": "amount", "op": "in", "value": v}, st.lists(st.integers(0, 300), min_size=1)),
        st.builds(lambda op, v: {"property": "channel", "op": op, "value": v},
                  st.sampled_from(["eq", "ne", "contains"]), st.sampled_from(["wx", "shop", "s"])),
        st.builds(lambda op, v: {"property": "first", "op": op, "value": v},
                  st.sampled_from(["eq", "ne"]), st.booleans()),
    )

    def window() -> st.SearchStrategy[dict[str, Any]]:
        return st.one_of(
            st.just({}),
            st.integers(1, 60).map(lambda d: {"within_days": d}),
            st.tuples(days_ago, st.integers(1, 50)).map(
                lambda t: {"since": (NOW - timedelta(days=t[0] + t[1])).isoformat(),
                           "until": (NOW - timedelta(days=t[0])).isoformat()}
            ),
        )

    counted = st.builds(
        lambda t, op, n, w, where: {"event": t, "op": op, **({} if op == "none" else {"count": n}), **w,
                                    **({"where": where} if where else {})},
        st.sampled_from(["order.paid", "page.viewed", "*"]),
        st.sampled_from(["at_least", "at_most", "exactly", "none"]),
        st.integers(0, 3), window(), st.lists(prop, max_size=2),
    )
    summed = st.builds(
        lambda op, v, w: {"event": "order.paid", "aggregate": "sum", "property": "amount", "op": op,
                          "value": v, **w},
        st.sampled_from(["gt", "gte", "lt", "lte", "eq"]), st.integers(0, 600), window(),
    )
    return st.one_of(counted, summed)


def other_leaf(tag_ids: list[int], segment_id: int) -> st.SearchStrategy[dict[str, Any]]:
    tag = st.sampled_from(tag_ids)
    return st.one_of(
        st.builds(lambda t, op: {"tag": t, "op": op}, tag, st.sampled_from(["has", "has_not"])),
        st.lists(tag, min_size=1, max_size=3).map(lambda ts: {"tags_any": ts}),
        st.lists(tag, min_size=1, max_size=3).map(lambda ts: {"tags_all": ts}),
        st.builds(lambda i, op: {"identity": i, "op": op}, st.sampled_from(["phone", "unionid"]),
                  st.sampled_from(["has", "has_not"])),
        st.builds(lambda c, op: {"consent": c, "op": op}, st.sampled_from(["sms", "email"]),
                  st.sampled_from(["granted", "not_granted", "withdrawn"])),
        st.builds(lambda op: {"segment": segment_id, "op": op}, st.sampled_from(["in", "not_in"])),
    )


def rules(tag_ids: list[int], segment_id: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.one_of(field_leaf(), attribute_leaf(), event_leaf(), other_leaf(tag_ids, segment_id))
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(lambda c: {"all": c}),
            st.lists(children, max_size=3).map(lambda c: {"any": c}),
            children.map(lambda c: {"not": c}),
        ),
        max_leaves=6,
    )


def people(tag_ids: list[int]) -> st.SearchStrategy[list[dict[str, Any]]]:
    maybe = st.one_of
    event = st.tuples(
        st.sampled_from(TYPES), days_ago,
        st.fixed_dictionaries({}, optional={
            "amount": st.one_of(st.integers(0, 300), st.just("100")),
            "channel": st.sampled_from(["wx", "shop", "shop-wx"]),
            "first": st.one_of(st.booleans(), st.just("true")),
        }),
    )
    person = st.fixed_dictionaries({
        "city": maybe(st.none(), st.sampled_from(CITIES)),
        "order_count": st.integers(0, 5),
        "revenue": st.integers(-1, 6),
        "rfm_recency": maybe(st.none(), st.integers(1, 5)),
        "last_order_at": maybe(st.none(), days_ago.map(lambda d: NOW - timedelta(days=d, hours=1))),
        "stage": st.sampled_from(["new", "engaged", "customer"]),
        "birthday": maybe(st.none(), st.sampled_from([date(1990, 1, 1), date(1970, 3, 3), date(2001, 1, 1)])),
        "do_not_contact": st.booleans(),
        "attributes": st.fixed_dictionaries({}, optional={
            "score": st.one_of(number, st.just("5"), st.floats(-1, 5, allow_nan=False, width=32)),
            "plan": st.sampled_from(["gold", "silver", "", 7]),
            "hobbies": st.one_of(st.lists(st.sampled_from(["tea", "golf", 3])), st.just("tea")),
            "joined": st.sampled_from(["2023-05-01", "2025-06-30", "2026-01-01", ""]),
            "note": st.sampled_from(["", "Shanghai tea", "hai"]),
        }),
        "tags": st.sets(st.sampled_from(tag_ids)),
        "identities": st.sets(st.sampled_from(["phone", "unionid", "email"])),
        "consents": st.dictionaries(st.sampled_from(["sms", "email"]), st.sampled_from(["granted", "withdrawn"])),
        "member": st.booleans(),
        "events": st.lists(event, max_size=5),
    })
    return st.lists(person, max_size=6)


def _store(db: Session, rows: list[dict[str, Any]], segment_id: int) -> list[Person]:
    out = []
    for n, row in enumerate(rows):
        columns = {k: row[k] for k in ("city", "order_count", "revenue", "rfm_recency", "last_order_at", "stage",
                                       "birthday", "do_not_contact")}
        contact = Contact(**columns, attributes=row["attributes"])
        db.add(contact)
        db.flush()
        for tag_id in row["tags"]:
            db.add(ContactTag(contact_id=contact.id, tag_id=tag_id))
        for kind in row["identities"]:
            db.add(Identity(contact_id=contact.id, type=kind, value=f"{kind}-{contact.id}"))
        for channel, status in row["consents"].items():
            db.add(Consent(contact_id=contact.id, channel=channel, status=status, source="test"))
        if row["member"]:
            db.add(SegmentMember(segment_id=segment_id, contact_id=contact.id))
        happened = []
        for i, (event_type, ago, props) in enumerate(row["events"]):
            at = NOW - timedelta(days=ago, minutes=i)
            db.add(Event(type=event_type, occurred_at=at, idempotency_key=f"{contact.id}-{n}-{i}",
                         contact_id=contact.id, properties=props))
            happened.append((event_type, at, props))
        out.append(Person(contact.id, columns, row["attributes"], set(row["tags"]), set(row["identities"]),
                          dict(row["consents"]), {segment_id} if row["member"] else set(), happened))
    db.flush()
    return out


def test_compiled_rules_agree_with_the_reference(db, make_workspace):
    ws, tag_ids, segment_id = _setup(db, make_workspace)

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
    @given(rows=people(tag_ids), rule=rules(tag_ids, segment_id))
    def check(rows: list[dict[str, Any]], rule: dict[str, Any]) -> None:
        savepoint = db.begin_nested()
        try:
            persons = _store(db, rows, segment_id)
            ids = {p.id for p in persons}
            stmt = select(Contact.id).where(Contact.workspace_id == ws, compile_rule(db, rule))
            got = set(db.execute(stmt).scalars()) & ids
            expected = {p.id for p in persons if evaluate(rule, p, NOW, ATTRIBUTES)}
            assert got == expected, rule
        finally:
            savepoint.rollback()

    check()


# --- examples from the docs -----------------------------------------------------------------------

SILENT = {"all": [{"event": "*", "op": "at_least", "count": 1},
                  {"event": "*", "op": "none", "within_days": 30}]}
POTENTIAL = {"all": [{"any": [{"field": "stage", "op": "eq", "value": "engaged"},
                              {"event": "*", "op": "at_least", "count": 1, "within_days": 90}]},
                     {"event": "order.paid", "op": "none"}]}
HIGH_VALUE = {"all": [{"event": "order.paid", "op": "at_least", "count": 2, "within_days": 30,
                       "where": [{"property": "amount", "op": "gt", "value": 100}]},
                      {"event": "order.paid", "aggregate": "sum", "property": "amount", "op": "gte",
                       "value": 10000, "within_days": 90}]}


def _person(db: Session, name: str, **kwargs: Any) -> Contact:
    contact = Contact(name=name, **kwargs)
    db.add(contact)
    db.flush()
    return contact


def _event(db: Session, contact: Contact, event_type: str, days: float, **props: Any) -> None:
    db.add(Event(type=event_type, occurred_at=NOW - timedelta(days=days), contact_id=contact.id,
                 idempotency_key=f"{contact.id}-{event_type}-{days}-{props}", properties=props))
    db.flush()


def _names(db: Session, rule: dict[str, Any]) -> set[str]:
    return set(db.execute(select(Contact.name).where(compile_rule(db, rule))).scalars())


def test_the_documented_examples_find_the_right_people(db, make_workspace):
    _setup(db, make_workspace)
    quiet, busy, browser, buyer, _fresh = (_person(db, n) for n in ("quiet", "busy", "browser", "buyer", "fresh"))
    _event(db, quiet, "page.viewed", 100)
    _event(db, quiet, "segment.entered", 1)  # siyu's own bookkeeping is not activity
    _event(db, busy, "page.viewed", 2)
    _event(db, browser, "page.viewed", 10)
    for days, amount in ((3, 6000), (20, 5000), (60, 50)):
        _event(db, buyer, "order.paid", days, amount=amount, currency="CNY")

    assert _names(db, SILENT) == {"quiet"}
    assert _names(db, POTENTIAL) == {"busy", "browser"}
    assert _names(db, HIGH_VALUE) == {"buyer"}
    assert "fresh" not in _names(db, SILENT)


def test_time_windows_move_with_the_clock(db, make_workspace):
    _setup(db, make_workspace)
    quiet = _person(db, "quiet")
    _event(db, quiet, "page.viewed", 25)
    assert _names(db, SILENT) == set()
    clock.set_clock(lambda: NOW + timedelta(days=6))
    assert _names(db, SILENT) == {"quiet"}


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"all": [{"field": "city", "op": "eq", "value": "x"}, {"field": "colour", "op": "eq", "value": 1}]},
         "rule.all[1].field"),
        ({"all": [{"field": "city", "op": "gt", "value": "x"}]}, "rule.all[0].op"),
        ({"any": [{"field": "order_count", "op": "gt", "value": "2"}]}, "rule.any[0].value"),
        ({"not": {"attribute": "nope", "op": "eq", "value": 1}}, "rule.not.attribute"),
        ({"all": [{"attribute": "score", "op": "contains", "value": 1}]}, "rule.all[0].op"),
        ({"all": [{"tag": 999999, "op": "has"}]}, "rule.all[0].tag"),
        ({"all": [{"tags_any": [1, "x"]}]}, "rule.all[0].tags_any[1]"),
        ({"all": [{"segment": 999999, "op": "in"}]}, "rule.all[0].segment"),
        ({"all": [{"event": "Order Paid", "op": "none"}]}, "rule.all[0].event"),
        ({"all": [{"event": "order.paid", "op": "at_least"}]}, "rule.all[0].count"),
        ({"all": [{"event": "order.paid", "op": "none", "where": [{"property": "amount", "op": "gt",
                                                                   "value": "x"}]}]},
         "rule.all[0].where[0].value"),
        ({"all": [{"event": "order.paid", "aggregate": "sum", "op": "gte", "value": 1}]}, "rule.all[0].property"),
        ({"all": [{"event": "order.paid", "op": "none", "within_days": 3, "since": "2026-01-01"}]},
         "rule.all[0].within_days"),
        ({"all": [{"consent": "fax", "op": "granted"}]}, "rule.all[0].consent"),
        ({"all": [{"identity": "passport", "op": "has"}]}, "rule.all[0].identity"),
        ({"all": [{"field": "city", "op": "eq", "value": "x", "colour": 1}]}, "rule.all[0].colour"),
        ({"all": [{"field": "birthday", "op": "before", "value": "31/12/1990"}]}, "rule.all[0].value"),
        ({"all": [{"field": "stage", "op": "eq", "value": "vip"}]}, "rule.all[0].value"),
        ({"all": [{"field": "city", "op": "eq", "value": "x"}], "any": []}, "rule"),
        ({}, "rule"),
        ([], "rule"),
    ],
)
def test_mistakes_are_named_by_their_place(db, make_workspace, rule, field):
    _setup(db, make_workspace)
    with pytest.raises(Invalid) as caught:
        validate_rule(db, rule)
    assert caught.value.field == field, caught.value.message


def test_rules_are_bounded_in_depth_and_size(db, make_workspace):
    _setup(db, make_workspace)
    deep: dict[str, Any] = {"field": "city", "op": "is_set"}
    for _ in range(10):
        deep = {"not": deep}
    with pytest.raises(Invalid, match="nest"):
        validate_rule(db, deep)
    wide = {"any": [{"field": "city", "op": "is_set"}] * 150}
    with pytest.raises(Invalid, match="at most"):
        validate_rule(db, wide)


def test_another_workspaces_tag_or_segment_is_unknown(db, make_workspace):
    _, tag_ids, segment_id = _setup(db, make_workspace)
    other = make_workspace("Other")
    bind_workspace(db, other.id)
    with pytest.raises(Invalid) as caught:
        validate_rule(db, {"all": [{"tag": tag_ids[0], "op": "has"}]})
    assert caught.value.field == "rule.all[0].tag"
    with pytest.raises(Invalid) as caught:
        validate_rule(db, {"any": [{"segment": segment_id, "op": "in"}]})
    assert caught.value.field == "rule.any[0].segment"


def test_segments_may_not_refer_to_each_other_in_a_circle(db, make_workspace):
    _setup(db, make_workspace)
    a = Segment(name="a", kind="dynamic", rule={"all": []})
    db.add(a)
    db.flush()
    b = Segment(name="b", kind="dynamic", rule={"all": [{"segment": a.id, "op": "in"}]})
    db.add(b)
    db.flush()
    validate_rule(db, {"all": [{"segment": a.id, "op": "in"}]}, segment_id=b.id)
    with pytest.raises(Invalid, match="circle") as caught:
        validate_rule(db, {"any": [{"segment": b.id, "op": "not_in"}]}, segment_id=a.id)
    assert caught.value.field == "rule.any[0].segment"
    with pytest.raises(Invalid, match="circle"):
        validate_rule(db, {"all": [{"segment": a.id, "op": "in"}]}, segment_id=a.id)


def test_the_documented_examples_fit_the_json_schema():
    import jsonschema_rs

    validator = jsonschema_rs.validator_for(rule_schema())
    for rule in (SILENT, POTENTIAL, HIGH_VALUE, {"all": []}, {"not": {"tag": 3, "op": "has"}},
                 {"any": [{"consent": "sms", "op": "granted"}, {"identity": "custom:member_no", "op": "has"}]}):
        validator.validate(rule)
    assert not validator.is_valid({"all": [{"field": "city"}]})
    assert not validator.is_valid({"colour": "red"})
