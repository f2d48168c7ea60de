"""Auto-tagging rules: one trigger interface, validated configs, rules run per event in the worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.contacts import tag_rules, tags
from siyu.contacts.models import ContactTag, Segment, TagRule
from siyu.core import clock, events, jobs
from siyu.core.errors import Invalid, NotFound
from siyu.core.events import record_event
from siyu.core.models import Event, Job
from siyu.core.tenancy import bind_workspace
from tests.contacts.tag_support import ACTOR, add_contacts, events_of


@pytest.fixture
def ws(make_workspace, db):
    workspace = make_workspace("Tea Shop")
    bind_workspace(db, workspace.id)
    return workspace


@pytest.fixture
def tea(db, ws):
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    return tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)


def run_queued(db, ws_id):
    """Run every queued event.dispatch job of the workspace, as a worker would, until none is left."""
    done: set[int] = set()
    while True:
        bind_workspace(db, None)
        queued = [j for j in db.execute(select(Job).where(Job.kind == events.DISPATCH).order_by(Job.id)).scalars()
                  if j.id not in done]
        if not queued:
            bind_workspace(db, ws_id)
            return
        for job in queued:
            done.add(job.id)
            ctx = jobs.JobContext(job.id, job.workspace_id, job.kind, job.idempotency_key, 1, job.payload)
            events.dispatch_event(db, ctx)


def big_order_rule(tea_id, **extra):
    return {
        "name": "Big tea buyers",
        "trigger": "event",
        "config": {
            "event_type": "order.paid",
            "conditions": [{"property": "amount", "op": "gte", "value": 10000},
                           {"property": "items.0.sku", "op": "contains", "value": "TEA"}],
        },
        "add_tag_ids": [tea_id],
        **extra,
    }


def order(contact_id, key, amount, sku="TEA-LJ-250"):
    return {
        "type": "order.paid", "contact_id": contact_id, "idempotency_key": key,
        "properties": {"order_id": key, "amount": amount, "currency": "CNY",
                       "items": [{"sku": sku, "qty": 1, "price": amount}]},
    }


def test_an_event_rule_tags_the_contact_when_its_conditions_hold(db, ws, tea):
    rule = tag_rules.create_rule(db, values=big_order_rule(tea.id), actor=ACTOR)
    big, small, cups = add_contacts(db, ws.id, 3)

    events.record_events(db, [order(big, "o1", 16800), order(small, "o2", 3900),
                              order(cups, "o3", 16800, sku="CUP-GLASS-2")])
    run_queued(db, ws.id)

    tagged = db.execute(select(ContactTag.contact_id, ContactTag.source)).all()
    assert tagged == [(big, f"rule:{rule.id}")]
    db.refresh(rule)
    assert rule.hits == 1
    assert events_of(db, "tag.added")[0].properties["source"] == f"rule:{rule.id}"


def test_events_no_active_rule_is_about_queue_no_job(db, ws, tea):
    tag_rules.create_rule(db, values=big_order_rule(tea.id, active=False), actor=ACTOR)
    contact = add_contacts(db, ws.id, 1)[0]
    record_event(db, type="page.viewed", contact_id=contact, properties={"path": "/"})
    events.record_events(db, [order(contact, "o1", 20000)])

    bind_workspace(db, None)
    subscribers = db.execute(select(Job.idempotency_key).where(Job.kind == events.DISPATCH)).scalars().all()
    assert not [k for k in subscribers if k.endswith(":contacts.tag_rules")]


def test_a_segment_entered_rule_reacts_to_its_segment_only(db, ws, tea):
    vip = Segment(name="VIP", kind="dynamic", rule={})
    other = Segment(name="Other", kind="dynamic", rule={})
    db.add_all([vip, other])
    db.flush()
    tag_rules.create_rule(
        db, values={"name": "VIP", "trigger": "segment_entered", "config": {"segment_id": vip.id},
                    "add_tag_ids": [tea.id]},
        actor=ACTOR,
    )
    a, b = add_contacts(db, ws.id, 2)

    record_event(db, type="segment.entered", contact_id=a, properties={"segment_id": vip.id})
    record_event(db, type="segment.entered", contact_id=b, properties={"segment_id": other.id})
    run_queued(db, ws.id)

    assert db.execute(select(ContactTag.contact_id)).scalars().all() == [a]


def test_rules_do_not_react_to_tag_changes_made_by_rules(db, ws, tea):
    group = tags.get_tag_group(db, tea.group_id)
    green = tags.create_tag(db, group_id=group.id, name="Green tea", actor=ACTOR)
    # Each rule undoes the other: without the guard they would re-tag the contact forever.
    tag_rules.create_rule(db, values={
        "name": "tea → green", "trigger": "event",
        "config": {"event_type": "tag.added", "conditions": [{"property": "tag_id", "op": "eq", "value": tea.id}]},
        "add_tag_ids": [green.id], "remove_tag_ids": [tea.id]}, actor=ACTOR)
    tag_rules.create_rule(db, values={
        "name": "green → tea", "trigger": "event",
        "config": {"event_type": "tag.added", "conditions": [{"property": "tag_id", "op": "eq", "value": green.id}]},
        "add_tag_ids": [tea.id], "remove_tag_ids": [green.id]}, actor=ACTOR)
    contact = add_contacts(db, ws.id, 1)[0]

    tags.add_tags(db, [contact], [tea.id], actor=ACTOR)
    run_queued(db, ws.id)

    assert db.execute(select(ContactTag.tag_id)).scalars().all() == [green.id]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trigger": "telepathy"}, "trigger"),
        ({"name": ""}, "name"),
        ({"config": {"event_type": "Order Paid"}}, "config.event_type"),
        ({"config": {"event_type": "order.paid", "conditions": [{"property": "amount", "op": "like", "value": 1}]}},
         "config.conditions[0].op"),
        ({"config": {"event_type": "order.paid",
                     "conditions": [{"property": "a", "op": "eq", "value": 1},
                                    {"property": "b", "op": "gt", "value": [1]}]}},
         "config.conditions[1].value"),
        ({"config": {"event_type": "order.paid", "conditions": [{"property": "a..b", "op": "eq", "value": 1}]}},
         "config.conditions[0].property"),
        ({"config": {"event_type": "order.paid", "extra": 1}}, "config.extra"),
        ({"add_tag_ids": []}, "add_tag_ids"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(db, ws, tea, change, field):
    with pytest.raises(Invalid) as refused:
        tag_rules.create_rule(db, values={**big_order_rule(tea.id), **change}, actor=ACTOR)
    assert refused.value.field == field
    assert db.execute(select(TagRule)).first() is None


def test_unknown_tags_and_segments_are_not_found(db, ws, tea, make_workspace):
    with pytest.raises(NotFound) as tag_missing:
        tag_rules.create_rule(db, values=big_order_rule(10**12), actor=ACTOR)
    with pytest.raises(NotFound) as segment_missing:
        tag_rules.create_rule(db, values={"name": "x", "trigger": "segment_entered",
                                          "config": {"segment_id": 10**12}, "add_tag_ids": [tea.id]}, actor=ACTOR)
    assert tag_missing.value.field == "add_tag_ids"
    assert segment_missing.value.field == "config.segment_id"


def test_custom_event_types_are_fine_and_later_modules_add_triggers(db, ws, tea):
    tag_rules.register_trigger(
        "test_keyword",
        validate_config=lambda _s, c: {"keyword": str(c.get("keyword", ""))},
        listens_to=lambda _c: "message.received",
        matches=lambda c, e: c["keyword"] in str(e.properties.get("text", "")),
    )
    try:
        custom = tag_rules.create_rule(db, values={**big_order_rule(tea.id), "name": "custom",
                                                   "config": {"event_type": "quiz.finished"}}, actor=ACTOR)
        tag_rules.create_rule(db, values={"name": "kw", "trigger": "test_keyword", "config": {"keyword": "茶"},
                                          "add_tag_ids": [tea.id]}, actor=ACTOR)
        contact = add_contacts(db, ws.id, 1)[0]
        record_event(db, type="message.received", contact_id=contact, properties={"text": "想买茶"})
        run_queued(db, ws.id)
    finally:
        tag_rules._TRIGGERS.pop("test_keyword")

    assert custom.config == {"event_type": "quiz.finished", "conditions": []}
    assert db.execute(select(ContactTag.contact_id)).scalars().all() == [contact]


def test_a_rule_event_for_a_contact_gone_since_is_skipped(db, ws, tea):
    tag_rules.create_rule(db, values=big_order_rule(tea.id), actor=ACTOR)
    event = Event(type="order.paid", occurred_at=clock.now() - timedelta(minutes=1), idempotency_key="gone",
                  contact_id=10**12, properties={"amount": 99999, "items": [{"sku": "TEA"}]})
    db.add(event)
    db.flush()
    assert tag_rules.apply_rules(db, event) == []


# --- the condition evaluator ------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False, width=32), st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)
numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1000, 1000, allow_nan=False))


@given(props=st.dictionaries(st.text(max_size=4), json_values, max_size=4), prop=st.text(min_size=1, max_size=6),
       op=st.sampled_from(tag_rules.OPS), value=scalars)
def test_the_evaluator_never_raises_on_any_properties(props, prop, op, value):
    condition = {"property": prop, "op": op, "value": [value] if op == "in" else value}
    assert tag_rules.holds(condition, props) in (True, False)


@given(actual=scalars, value=scalars)
def test_eq_and_ne_are_opposites_and_in_a_list_of_one_is_eq(actual, value):
    props = {"p": actual}
    eq = tag_rules.holds({"property": "p", "op": "eq", "value": value}, props)
    assert eq != tag_rules.holds({"property": "p", "op": "ne", "value": value}, props)
    assert eq == tag_rules.holds({"property": "p", "op": "in", "value": [value]}, props)


@given(actual=numbers, value=numbers)
def test_order_operators_agree_with_each_other_on_numbers(actual, value):
    def check(op):
        return tag_rules.holds({"property": "x.y", "op": op, "value": value}, {"x": {"y": actual}})

    assert check("gt") == (not check("lte"))
    assert check("lt") == (not check("gte"))
    assert check("gte") == (check("gt") or check("eq"))
    assert not (check("gt") and check("lt"))


@given(path=st.lists(st.text(st.characters(blacklist_characters="."), min_size=1, max_size=4), min_size=1,
                     max_size=4), value=scalars)
def test_a_dotted_path_finds_what_nesting_put_there(path, value):
    props: object = value
    for part in reversed(path):
        props = {part: props}
    assert tag_rules.holds({"property": ".".join(path), "op": "eq", "value": value}, props)
    # Any property that isn't there satisfies only ne.
    missing = {"property": ".".join([*path, "zz"]), "op": "eq", "value": value}
    assert not tag_rules.holds(missing, props)
