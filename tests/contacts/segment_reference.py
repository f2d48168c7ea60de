"""A pure-Python reading of segment rules, for tests only: the SQL compiler must agree with it.

Production never evaluates rules row by row; this is the specification written as code, used by the
property tests to check the compiled SQL on a small random dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from siyu.contacts.segment_rules import ATTRIBUTE_TYPES, BOOKKEEPING_PREFIXES, FIELDS


@dataclass
class Person:
    """A contact as the reference sees it."""

    id: int
    fields: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: set[int] = field(default_factory=set)
    identities: set[str] = field(default_factory=set)
    consents: dict[str, str] = field(default_factory=dict)
    segments: set[int] = field(default_factory=set)
    events: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)


def _dt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _number(v: Any) -> Any:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


def compare(v: Any, kind: str, op: str, x: Any, now: datetime) -> bool:
    """`v op x` the way the compiler means it (unset values: see docs/segment-rules.md)."""
    if op in ("is_set", "is_not_set"):
        filled = v is not None and (v != "" if kind in ("text", "date_text") else True)
        return filled if op == "is_set" else not filled
    if kind == "date":
        x = [date.fromisoformat(i) for i in x] if isinstance(x, list) else date.fromisoformat(x)
    elif kind == "datetime" and op != "within_last_days":
        x = [_dt(i) for i in x] if isinstance(x, list) else _dt(x)
    if op == "ne":
        return v is None or v != x
    if op == "not_in":
        return v is None or v not in x
    if v is None:
        return False
    if op == "eq":
        return bool(v == x)
    if op in ("gt", "after"):
        return bool(v > x)
    if op == "gte":
        return bool(v >= x)
    if op in ("lt", "before"):
        return bool(v < x)
    if op == "lte":
        return bool(v <= x)
    if op == "in":
        return v in x
    if op == "between":
        return bool(x[0] <= v <= x[1])
    if op == "within_last_days":
        return bool(v >= now - timedelta(days=x))
    if op == "contains":
        return x in v
    if op == "starts_with":
        return bool(v.startswith(x))
    raise AssertionError(op)


def _property(props: dict[str, Any], cond: dict[str, Any], now: datetime) -> bool:
    op, x = cond["op"], cond["value"]
    sample = x[0] if op == "in" else x
    raw = props.get(cond["property"])
    if isinstance(sample, bool):
        matched = isinstance(raw, bool) and raw == x
        return not matched if op == "ne" else matched
    if _number(sample) is not None:
        return compare(_number(raw), "number", op, x, now)
    return compare(raw if isinstance(raw, str) else None, "text", op, x, now)


def _events(p: Person, node: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    out = []
    for event_type, at, props in p.events:
        if node["event"] == "*":
            if event_type.startswith(BOOKKEEPING_PREFIXES):
                continue
        elif event_type != node["event"]:
            continue
        if "within_days" in node and at < now - timedelta(days=node["within_days"]):
            continue
        if "since" in node and at < _dt(node["since"]):
            continue
        if "until" in node and at >= _dt(node["until"]):
            continue
        if all(_property(props, c, now) for c in node.get("where", [])):
            out.append(props)
    return out


def evaluate(node: dict[str, Any], p: Person, now: datetime, attribute_types: dict[str, str]) -> bool:
    """Whether person `p` matches rule `node` at `now`."""
    if "all" in node:
        return all(evaluate(c, p, now, attribute_types) for c in node["all"])
    if "any" in node:
        return any(evaluate(c, p, now, attribute_types) for c in node["any"])
    if "not" in node:
        return not evaluate(node["not"], p, now, attribute_types)
    if "field" in node:
        spec = FIELDS[node["field"]]
        v = p.fields.get(node["field"])
        if spec.type == "boolean":
            return (v is True) if node["value"] else (v is not True)
        return compare(v, spec.type, node["op"], node.get("value"), now)
    if "attribute" in node:
        kind = ATTRIBUTE_TYPES[attribute_types[node["attribute"]]]
        raw = p.attributes.get(node["attribute"])
        if kind == "multi_choice":
            items = raw if isinstance(raw, list) else None
            if node["op"] == "contains":
                return items is not None and node["value"] in [i for i in items if isinstance(i, str)]
            filled = bool(items)
            return filled if node["op"] == "is_set" else not filled
        if kind == "number":
            return compare(_number(raw), "number", node["op"], node.get("value"), now)
        text = raw if isinstance(raw, str) else None
        return compare(text, "date_text" if kind == "date" else "text", node["op"], node.get("value"), now)
    if "tag" in node:
        return (node["tag"] in p.tags) == (node["op"] == "has")
    if "tags_any" in node:
        return bool(p.tags & set(node["tags_any"]))
    if "tags_all" in node:
        return set(node["tags_all"]) <= p.tags
    if "identity" in node:
        return (node["identity"] in p.identities) == (node["op"] == "has")
    if "consent" in node:
        status = p.consents.get(node["consent"])
        return {"granted": status == "granted", "withdrawn": status == "withdrawn",
                "not_granted": status != "granted"}[node["op"]]
    if "segment" in node:
        return (node["segment"] in p.segments) == (node["op"] == "in")
    if "event" in node:
        matched = _events(p, node, now)
        if node.get("aggregate") == "sum":
            total = sum(n for n in (_number(e.get(node["property"])) for e in matched) if n is not None)
            return compare(total, "number", node["op"], node["value"], now)
        n, count = len(matched), node.get("count", 0)
        return {"at_least": n >= count, "at_most": n <= count, "exactly": n == count, "none": n == 0}[node["op"]]
    raise AssertionError(node)
