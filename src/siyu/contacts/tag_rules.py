"""Auto-tagging rules behind one interface: a trigger says which event a rule reacts to and whether it holds.

A trigger is registered once with `register_trigger(name, validate_config=..., listens_to=...,
matches=...)`; this file registers "event" (an event type with conditions on its properties) and
"segment_entered". Later modules register theirs ("keyword" in channels, "channel_code" in
acquisition) from their own code, without touching this file.

Rules run in the worker: one `on_event("*")` subscriber whose interest is the event types the
workspace's active rules listen to (asked once per recorded batch), so events no rule is about queue
no job. When a rule holds for an event naming a contact, its tags are added and removed with source
`rule:<id>` and its hit counter goes up. Tag changes made by rules don't trigger rules, so two rules
can't keep re-tagging a contact back and forth.

Conditions (`event` trigger) compare a property of the event, found by a dotted path
(`items.0.sku`), with a value: eq, ne, gt, gte, lt, lte, contains, in. A missing property satisfies
only `ne`. Order comparisons need two numbers or two strings (ISO dates compare as strings).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.contacts import tags
from siyu.contacts.models import Contact, Segment, Tag, TagRule
from siyu.core.audit import Actor, record, snapshot
from siyu.core.errors import Invalid, NotFound, TenancyViolation
from siyu.core.event_input import TYPE_PATTERN
from siyu.core.events import on_event
from siyu.core.models import Event
from siyu.core.tenancy import MAX_ID, bound_workspace, get_scoped

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in")
MAX_CONDITIONS = 20
MAX_IN_VALUES = 100
_TYPE = re.compile(TYPE_PATTERN)
_MISSING = object()

# --- the trigger registry ---------------------------------------------------------------------------

ConfigValidator = Callable[[Session, Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Trigger:
    """What makes a rule fire.

    `validate_config(session, config)` returns the cleaned config or raises Invalid/NotFound with a
    field such as `config.conditions[0].op`; `listens_to(config)` is the event type a rule with that
    config reacts to; `matches(config, event)` says whether this event fires it.
    """

    name: str
    validate_config: ConfigValidator
    listens_to: Callable[[Mapping[str, Any]], str]
    matches: Callable[[Mapping[str, Any], Event], bool]


_TRIGGERS: dict[str, Trigger] = {}


def register_trigger(
    name: str,
    *,
    validate_config: ConfigValidator,
    listens_to: Callable[[Mapping[str, Any]], str],
    matches: Callable[[Mapping[str, Any], Event], bool],
) -> None:
    """Make a trigger available to rules (a later registration under the same name replaces it)."""
    _TRIGGERS[name] = Trigger(name, validate_config, listens_to, matches)


def trigger_names() -> list[str]:
    """Every registered trigger."""
    return sorted(_TRIGGERS)


def trigger(name: str) -> Trigger | None:
    """The registered trigger of a name."""
    return _TRIGGERS.get(name)


# --- conditions -------------------------------------------------------------------------------------


def lookup(properties: Any, path: str) -> Any:
    """The value at a dotted path (`items.0.sku`), or the _MISSING marker."""
    value = properties
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value)
    )


def _same(a: Any, b: Any) -> bool:
    # JSON has one number type: 3 and 3.0 are equal, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) and _number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _ordered(op: str, a: Any, b: Any) -> bool:
    if not ((_number(a) and _number(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "gt":
        return bool(a > b)
    if op == "gte":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


def holds(condition: Mapping[str, Any], properties: Any) -> bool:
    """Whether one condition `{property, op, value}` holds on an event's properties."""
    op, expected = condition["op"], condition.get("value")
    actual = lookup(properties, condition["property"])
    if actual is _MISSING:
        return bool(op == "ne")
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op in ("gt", "gte", "lt", "lte"):
        return _ordered(op, actual, expected)
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list):
            return any(_same(item, expected) for item in actual)
        return False
    if op == "in":
        return isinstance(expected, list) and any(_same(actual, item) for item in expected)
    return False


def all_hold(conditions: list[Mapping[str, Any]], properties: Any) -> bool:
    """Whether every condition holds (no conditions: always)."""
    return all(holds(c, properties) for c in conditions)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _number(value)


def validate_conditions(raw: Any, prefix: str = "config.conditions") -> list[dict[str, Any]]:
    """Clean a list of conditions, or Invalid naming the first bad one's field."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Invalid("conditions is a list of {property, op, value}", field=prefix)
    if len(raw) > MAX_CONDITIONS:
        raise Invalid(f"at most {MAX_CONDITIONS} conditions", field=prefix)
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        here = f"{prefix}[{i}]"
        if not isinstance(item, Mapping):
            raise Invalid("a condition is an object {property, op, value}", field=here)
        extra = set(item) - {"property", "op", "value"}
        if extra:
            raise Invalid(f"unknown field {sorted(extra)[0]!r}", field=f"{here}.{sorted(extra)[0]}",
                          code="unknown_field")
        prop = item.get("property")
        if not isinstance(prop, str) or not prop or len(prop) > 200 or "" in prop.split("."):
            raise Invalid("property is a dotted path such as amount or items.0.sku", field=f"{here}.property")
        op = item.get("op")
        if op not in OPS:
            raise Invalid(f"op is one of {', '.join(OPS)}", field=f"{here}.op")
        value = item.get("value")
        if op in ("gt", "gte", "lt", "lte"):
            if not (_number(value) or isinstance(value, str)):
                raise Invalid(f"{op} compares with a number or a string", field=f"{here}.value")
        elif op == "in":
            if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
                raise Invalid(f"in takes a list of 1 to {MAX_IN_VALUES} values", field=f"{here}.value")
            if not all(_scalar(v) for v in value):
                raise Invalid("in takes strings, numbers, true, false or null", field=f"{here}.value")
        elif not _scalar(value):
            raise Invalid(f"{op} compares with a string, a number, true, false or null", field=f"{here}.value")
        out.append({"property": prop, "op": op, "value": value})
    return out


# --- built-in triggers ------------------------------------------------------------------------------


def _only(config: Mapping[str, Any], allowed: set[str]) -> None:
    extra = set(config) - allowed
    if extra:
        name = sorted(extra)[0]
        raise Invalid(f"unknown field {name!r}", field=f"config.{name}", code="unknown_field")


def _validate_event(_session: Session, config: Mapping[str, Any]) -> dict[str, Any]:
    _only(config, {"event_type", "conditions"})
    event_type = config.get("event_type")
    if not isinstance(event_type, str) or len(event_type) > 80 or not _TYPE.match(event_type):
        raise Invalid("event_type is an event type such as order.paid", field="config.event_type")
    return {"event_type": event_type, "conditions": validate_conditions(config.get("conditions"))}


def _validate_segment(session: Session, config: Mapping[str, Any]) -> dict[str, Any]:
    _only(config, {"segment_id"})
    segment_id = config.get("segment_id")
    if isinstance(segment_id, bool) or not isinstance(segment_id, int) or not 0 < segment_id <= MAX_ID:
        raise Invalid("segment_id is a segment's id", field="config.segment_id")
    if session.execute(select(Segment.id).where(Segment.id == segment_id)).first() is None:
        raise NotFound("segment not found", field="config.segment_id")
    return {"segment_id": segment_id}


register_trigger(
    "event",
    validate_config=_validate_event,
    listens_to=lambda config: str(config["event_type"]),
    matches=lambda config, event: all_hold(list(config.get("conditions") or []), event.properties),
)
register_trigger(
    "segment_entered",
    validate_config=_validate_segment,
    listens_to=lambda _config: "segment.entered",
    matches=lambda config, event: _same(event.properties.get("segment_id"), config["segment_id"]),
)


# --- rules ------------------------------------------------------------------------------------------


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("tag rules are managed through a session bound to a workspace")
    return workspace_id


def list_rules(session: Session) -> list[TagRule]:
    """The workspace's rules, oldest first (the order they run in)."""
    return list(session.execute(select(TagRule).order_by(TagRule.id)).scalars())


def get_rule(session: Session, rule_id: Any) -> TagRule:
    """One rule of the bound workspace (404 for any other)."""
    return get_scoped(session, TagRule, rule_id, what="tag rule")


def _tag_ids(session: Session, raw: Any, field: str) -> list[int]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 50:
        raise Invalid("a list of at most 50 tag ids", field=field)
    ids: list[int] = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
            raise Invalid("tag ids are positive integers", field=field)
        if value not in ids:
            ids.append(value)
    found = set(session.execute(select(Tag.id).where(Tag.id.in_(ids))).scalars()) if ids else set()
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"tag {missing[0]} not found", field=field)
    return ids


def _clean(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    name = values.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise Invalid("enter a name", field="name")
    if len(name) > 120:
        raise Invalid("a name has at most 120 characters", field="name")
    out["name"] = name
    if not isinstance(values.get("active", True), bool):
        raise Invalid("active is true or false", field="active")
    out["active"] = values.get("active", True)
    found = _TRIGGERS.get(values.get("trigger"))  # type: ignore[arg-type]
    if found is None:
        raise Invalid(f"trigger is one of {', '.join(trigger_names())}", field="trigger")
    out["trigger"] = found.name
    config = values.get("config")
    if not isinstance(config, Mapping):
        raise Invalid("config is an object", field="config")
    out["config"] = found.validate_config(session, config)
    out["add_tag_ids"] = _tag_ids(session, values.get("add_tag_ids"), "add_tag_ids")
    out["remove_tag_ids"] = _tag_ids(session, values.get("remove_tag_ids"), "remove_tag_ids")
    if not out["add_tag_ids"] and not out["remove_tag_ids"]:
        raise Invalid("a rule adds or removes at least one tag", field="add_tag_ids")
    if set(out["add_tag_ids"]) & set(out["remove_tag_ids"]):
        raise Invalid("a tag can't be both added and removed by one rule", field="remove_tag_ids")
    return out


_FIELDS = ("name", "active", "trigger", "config", "add_tag_ids", "remove_tag_ids")


def create_rule(session: Session, *, values: Mapping[str, Any], actor: Actor) -> TagRule:
    """A new rule (keys: name, trigger, config, add_tag_ids, remove_tag_ids, active)."""
    workspace_id = _workspace(session)
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0], code="unknown_field")
    rule = TagRule(workspace_id=workspace_id, **_clean(session, values))
    session.add(rule)
    session.flush()
    record(session, actor, workspace_id=workspace_id, action="tag_rule.create", entity_type="tag_rule",
           entity_id=rule.id, after=snapshot(rule))
    return rule


def update_rule(session: Session, rule: TagRule, *, changes: Mapping[str, Any], actor: Actor) -> TagRule:
    """Change any of a rule's fields; the whole rule is checked again."""
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0], code="unknown_field")
    merged = {**{f: getattr(rule, f) for f in _FIELDS}, **changes}
    clean = _clean(session, merged)
    before = snapshot(rule)
    for key, value in clean.items():
        setattr(rule, key, value)
    session.flush()
    record(session, actor, workspace_id=rule.workspace_id, action="tag_rule.update", entity_type="tag_rule",
           entity_id=rule.id, before=before, after=snapshot(rule))
    return rule


def delete_rule(session: Session, rule: TagRule, *, actor: Actor) -> None:
    """Delete a rule; tags it already put on contacts stay."""
    record(session, actor, workspace_id=rule.workspace_id, action="tag_rule.delete", entity_type="tag_rule",
           entity_id=rule.id, before=snapshot(rule))
    session.delete(rule)
    session.flush()


# --- running rules ----------------------------------------------------------------------------------


def _listens_to(rule: TagRule) -> str | None:
    found = _TRIGGERS.get(rule.trigger)
    if found is None:
        return None  # a trigger whose module is not loaded in this process
    try:
        return found.listens_to(rule.config)
    except (KeyError, TypeError):
        return None


def wanted_event_types(session: Session) -> set[str]:
    """The event types the bound workspace's active rules react to."""
    rules = session.execute(select(TagRule).where(TagRule.active.is_(True))).scalars()
    return {t for t in (_listens_to(r) for r in rules) if t is not None}


def _made_by_a_rule(event: Event) -> bool:
    source = event.properties.get("source") if isinstance(event.properties, Mapping) else None
    return event.type in ("tag.added", "tag.removed") and isinstance(source, str) and source.startswith("rule:")


def apply_rules(session: Session, event: Event) -> list[int]:
    """Run the workspace's active rules on one event; the ids of the rules that fired."""
    if event.contact_id is None or _made_by_a_rule(event):
        return []
    if session.execute(select(Contact.id).where(Contact.id == event.contact_id)).first() is None:
        return []  # merged away or deleted since the event was recorded
    fired: list[int] = []
    rules = session.execute(select(TagRule).where(TagRule.active.is_(True)).order_by(TagRule.id)).scalars().all()
    for rule in rules:
        found = _TRIGGERS.get(rule.trigger)
        if found is None or _listens_to(rule) != event.type or not found.matches(rule.config, event):
            continue
        fired.append(rule.id)
        session.execute(
            update(TagRule).where(TagRule.id == rule.id).values(hits=TagRule.hits + 1)
            .execution_options(synchronize_session=False)
        )
        # Tags deleted since the rule was written are skipped, not an error that would retry forever.
        existing = set(session.execute(
            select(Tag.id).where(Tag.id.in_([*rule.add_tag_ids, *rule.remove_tag_ids]))
        ).scalars())
        source = f"rule:{rule.id}"
        add = [t for t in rule.add_tag_ids if t in existing]
        remove = [t for t in rule.remove_tag_ids if t in existing]
        if add:
            tags.add_tags(session, [event.contact_id], add, source=source, actor=None)
        if remove:
            tags.remove_tags(session, [event.contact_id], remove, source=source, actor=None)
    return fired


@on_event("*", "contacts.tag_rules", wants=wanted_event_types)
def _run_rules(session: Session, event: Event) -> None:
    apply_rules(session, event)
