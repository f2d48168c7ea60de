"""Segment rules: one JSON tree (documented in docs/segment-rules.md, schema in segment_rule.schema.json).

A rule is a tree of groups — `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}` — over conditions on
contact fields, custom attributes, tags, identities, consent, other segments and events. `validate_rule`
checks a tree against the workspace (its attributes, tags, segments) and names the exact place of the
first mistake (`rule.all[1].op`); `compile_rule` turns it into ONE SQL criterion over `contacts`:
event conditions become correlated EXISTS / COUNT / SUM subqueries over `events` that walk its
(workspace_id, contact_id, occurred_at) index. Nothing is ever evaluated row by row in Python.

Every condition compiles to an expression that is true or false, never NULL (unset values are handled
explicitly), so `not` means exactly "the other contacts" on both engines. Journeys reuse this schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.consent import CHANNELS
from siyu.contacts.identities import IDENTITY_TYPES as IDENTITY_TYPES
from siyu.contacts.identities import is_identity_type
from siyu.contacts.models import AttributeDefinition, Segment, Tag
from siyu.core.errors import Invalid
from siyu.core.tenancy import bound_workspace

SCHEMA_PATH = Path(__file__).with_name("segment_rule.schema.json")
MAX_DEPTH = 8
MAX_NODES = 100
MAX_LIST = 1000
MAX_TEXT = 200
MAX_DAYS = 36600

TEXT, CHOICE, NUMBER, DATE, DATETIME, BOOLEAN, MULTI = (
    "text", "choice", "number", "date", "datetime", "boolean", "multi_choice",
)
OPS: dict[str, tuple[str, ...]] = {
    TEXT: ("eq", "ne", "in", "not_in", "contains", "starts_with", "is_set", "is_not_set"),
    CHOICE: ("eq", "ne", "in", "not_in", "is_set", "is_not_set"),
    NUMBER: ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"),
    DATE: ("eq", "ne", "before", "after", "between", "is_set", "is_not_set"),
    DATETIME: ("before", "after", "between", "within_last_days", "is_set", "is_not_set"),
    BOOLEAN: ("eq",),
    MULTI: ("contains", "is_set", "is_not_set"),
}
STAGES = ("new", "engaged", "customer", "repeat", "dormant", "churned")


@dataclass(frozen=True)
class FieldSpec:
    """A standard contact column a rule may test: its type and, for choices, the allowed values."""

    type: str
    choices: tuple[str, ...] = ()


FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec(TEXT),
    "nickname": FieldSpec(TEXT),
    "gender": FieldSpec(CHOICE, ("male", "female", "other")),
    "birthday": FieldSpec(DATE),
    "city": FieldSpec(TEXT),
    "locale": FieldSpec(TEXT),
    "phone": FieldSpec(TEXT),
    "email": FieldSpec(TEXT),
    "created_at": FieldSpec(DATETIME),
    "owner_id": FieldSpec(NUMBER),
    "stage": FieldSpec(CHOICE, STAGES),
    "order_count": FieldSpec(NUMBER),
    "revenue": FieldSpec(NUMBER),
    "last_order_at": FieldSpec(DATETIME),
    "last_active_at": FieldSpec(DATETIME),
    "rfm_recency": FieldSpec(NUMBER),
    "rfm_frequency": FieldSpec(NUMBER),
    "rfm_monetary": FieldSpec(NUMBER),
    "do_not_contact": FieldSpec(BOOLEAN),
}
# A custom attribute's definition type -> the rule type its conditions follow.
ATTRIBUTE_TYPES = {"text": TEXT, "number": NUMBER, "date": DATE, "choice": CHOICE, "multi_choice": MULTI}

CONSENT_CHANNELS = CHANNELS
CONSENT_OPS = ("granted", "not_granted", "withdrawn")
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
ANY_EVENT = "*"
# Events siyu records about its own bookkeeping of a contact: "did anything" means the person acted,
# and a segment's own segment.entered must not make its members look active.
BOOKKEEPING_PREFIXES = ("segment.", "tag.", "contact.")
EVENT_COUNT_OPS = ("at_least", "at_most", "exactly", "none")
EVENT_SUM_OPS = ("eq", "gt", "gte", "lt", "lte", "between")
PROPERTY_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains")
PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
AGGREGATES = ("count", "sum")

GROUP_KEYS = ("all", "any", "not")
LEAF_KEYS = ("field", "attribute", "tag", "tags_any", "tags_all", "identity", "consent", "segment", "event")
_ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "field": frozenset({"field", "op", "value"}),
    "attribute": frozenset({"attribute", "op", "value"}),
    "tag": frozenset({"tag", "op"}),
    "tags_any": frozenset({"tags_any"}),
    "tags_all": frozenset({"tags_all"}),
    "identity": frozenset({"identity", "op"}),
    "consent": frozenset({"consent", "op"}),
    "segment": frozenset({"segment", "op"}),
    "event": frozenset(
        {"event", "op", "count", "within_days", "since", "until", "where", "aggregate", "property", "value"}
    ),
}


def rule_schema() -> dict[str, Any]:
    """The JSON Schema of a rule (the shape; `validate_rule` also checks it against the workspace)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@dataclass
class RuleContext:
    """What a valid rule refers to in its workspace, gathered while validating and used to compile."""

    workspace_id: int
    attributes: dict[str, str] = field(default_factory=dict)  # key -> rule type
    event_types: set[str] = field(default_factory=set)
    tag_ids: set[int] = field(default_factory=set)
    segment_ids: set[int] = field(default_factory=set)
    uses: set[str] = field(default_factory=set)  # condition kinds present: "field", "tag", ...


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # NaN refused


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def parse_date(value: Any, where: str) -> date:
    """An ISO date `YYYY-MM-DD`, or Invalid naming `where`."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise Invalid("expected a date as YYYY-MM-DD", field=where)


def parse_datetime(value: Any, where: str) -> datetime:
    """An ISO date or date-time (UTC when it names no offset), or Invalid naming `where`."""
    if isinstance(value, str) and 10 <= len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise Invalid("expected an ISO 8601 date or date-time such as 2026-01-31T08:00:00Z", field=where)


class _Validator:
    def __init__(self, session: Session, workspace_id: int, segment_id: int | None) -> None:
        self.session = session
        self.ctx = RuleContext(workspace_id)
        self.segment_id = segment_id
        self.nodes = 0
        self._definitions: dict[str, str] | None = None
        self.tag_refs: list[tuple[int, str]] = []
        self.segment_refs: list[tuple[int, str]] = []

    def definitions(self) -> dict[str, str]:
        if self._definitions is None:
            rows = self.session.execute(
                select(AttributeDefinition.key, AttributeDefinition.type).where(
                    AttributeDefinition.workspace_id == self.ctx.workspace_id
                )
            ).all()
            self._definitions = {k: ATTRIBUTE_TYPES.get(t, TEXT) for k, t in rows}
        return self._definitions

    def node(self, node: Any, where: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Invalid(f"a rule has at most {MAX_NODES} groups and conditions", field=where)
        if depth > MAX_DEPTH:
            raise Invalid(f"groups nest at most {MAX_DEPTH} deep", field=where)
        if not isinstance(node, dict):
            raise Invalid("a rule node is a JSON object", field=where)
        kinds = [k for k in (*GROUP_KEYS, *LEAF_KEYS) if k in node]
        if not kinds:
            unknown = sorted(node)
            if unknown:
                raise Invalid(f"unknown condition {unknown[0]!r}", field=f"{where}.{unknown[0]}")
            raise Invalid("an empty object is not a condition: use {\"all\": []} to match everyone", field=where)
        if len(kinds) > 1:
            raise Invalid(f"a node is one group or one condition, not {' and '.join(kinds)}", field=where)
        kind = kinds[0]
        if kind in GROUP_KEYS:
            extra = sorted(set(node) - {kind})
            if extra:
                raise Invalid(f"unknown key {extra[0]!r}", field=f"{where}.{extra[0]}")
            if kind == "not":
                self.node(node["not"], f"{where}.not", depth + 1)
                return
            children = node[kind]
            if not isinstance(children, list):
                raise Invalid(f"'{kind}' takes a list of conditions", field=f"{where}.{kind}")
            for i, child in enumerate(children):
                self.node(child, f"{where}.{kind}[{i}]", depth + 1)
            return
        extra = sorted(set(node) - _ALLOWED_KEYS[kind])
        if extra:
            raise Invalid(f"unknown key {extra[0]!r}", field=f"{where}.{extra[0]}")
        self.ctx.uses.add(kind)
        getattr(self, f"leaf_{kind}")(node, where)

    # --- leaves -----------------------------------------------------------------------------------

    def leaf_field(self, node: dict[str, Any], where: str) -> None:
        name = node["field"]
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise Invalid(f"unknown field {name!r} (one of {', '.join(FIELDS)})", field=f"{where}.field")
        self.typed(node, where, spec.type, spec.choices)

    def leaf_attribute(self, node: dict[str, Any], where: str) -> None:
        key = node["attribute"]
        kind = self.definitions().get(key) if isinstance(key, str) else None
        if kind is None:
            raise Invalid(f"no custom attribute {key!r} in this workspace", field=f"{where}.attribute")
        self.ctx.attributes[key] = kind
        self.typed(node, where, kind, ())

    def typed(self, node: dict[str, Any], where: str, kind: str, choices: tuple[str, ...]) -> None:
        op = node.get("op")
        if op not in OPS[kind]:
            raise Invalid(f"op must be one of {', '.join(OPS[kind])} for a {kind} value", field=f"{where}.op")
        value_at = f"{where}.value"
        if op in ("is_set", "is_not_set"):
            if node.get("value") is not None:
                raise Invalid(f"{op} takes no value", field=value_at)
            return
        if "value" not in node:
            raise Invalid(f"{op} needs a value", field=value_at)
        value = node["value"]
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
                raise Invalid(f"{op} takes a list of 1 to {MAX_LIST} values", field=value_at)
            for i, item in enumerate(value):
                self.scalar(item, f"{value_at}[{i}]", kind, choices)
        elif op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise Invalid("between takes [low, high]", field=value_at)
            for i, item in enumerate(value):
                self.scalar(item, f"{value_at}[{i}]", kind, choices)
        elif op == "within_last_days":
            if not _is_id(value) or value > MAX_DAYS:
                raise Invalid(f"within_last_days takes a whole number of days from 1 to {MAX_DAYS}", field=value_at)
        else:
            self.scalar(value, value_at, kind, choices)
            if op in ("contains", "starts_with") and kind == TEXT and not value:
                raise Invalid(f"{op} needs some text", field=value_at)

    def scalar(self, value: Any, where: str, kind: str, choices: tuple[str, ...]) -> None:
        if kind in (TEXT, CHOICE, MULTI):
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise Invalid(f"expected text of at most {MAX_TEXT} characters", field=where)
            if choices and value not in choices:
                raise Invalid(f"expected one of {', '.join(choices)}", field=where)
        elif kind == NUMBER:
            if not _is_number(value) or abs(value) > 1e15:
                raise Invalid("expected a number", field=where)
        elif kind == DATE:
            parse_date(value, where)
        elif kind == DATETIME:
            parse_datetime(value, where)
        elif kind == BOOLEAN and not isinstance(value, bool):
            raise Invalid("expected true or false", field=where)

    def tag_id(self, value: Any, where: str) -> None:
        if not _is_id(value):
            raise Invalid("a tag is named by its id", field=where)
        self.tag_refs.append((value, where))

    def leaf_tag(self, node: dict[str, Any], where: str) -> None:
        self.tag_id(node["tag"], f"{where}.tag")
        if node.get("op") not in ("has", "has_not"):
            raise Invalid("op must be has or has_not", field=f"{where}.op")

    def tag_list(self, node: dict[str, Any], where: str, key: str) -> None:
        ids = node[key]
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_LIST:
            raise Invalid(f"{key} takes a list of 1 to {MAX_LIST} tag ids", field=f"{where}.{key}")
        for i, value in enumerate(ids):
            self.tag_id(value, f"{where}.{key}[{i}]")

    def leaf_tags_any(self, node: dict[str, Any], where: str) -> None:
        self.tag_list(node, where, "tags_any")

    def leaf_tags_all(self, node: dict[str, Any], where: str) -> None:
        self.tag_list(node, where, "tags_all")

    def leaf_identity(self, node: dict[str, Any], where: str) -> None:
        kind = node["identity"]
        if not isinstance(kind, str) or not is_identity_type(kind):
            raise Invalid(
                f"identity must be one of {', '.join(IDENTITY_TYPES)} or custom:<name>", field=f"{where}.identity"
            )
        if node.get("op") not in ("has", "has_not"):
            raise Invalid("op must be has or has_not", field=f"{where}.op")

    def leaf_consent(self, node: dict[str, Any], where: str) -> None:
        if node["consent"] not in CONSENT_CHANNELS:
            raise Invalid(f"consent must be one of {', '.join(CONSENT_CHANNELS)}", field=f"{where}.consent")
        if node.get("op") not in CONSENT_OPS:
            raise Invalid(f"op must be one of {', '.join(CONSENT_OPS)}", field=f"{where}.op")

    def leaf_segment(self, node: dict[str, Any], where: str) -> None:
        if not _is_id(node["segment"]):
            raise Invalid("a segment is named by its id", field=f"{where}.segment")
        if node.get("op") not in ("in", "not_in"):
            raise Invalid("op must be in or not_in", field=f"{where}.op")
        self.segment_refs.append((node["segment"], f"{where}.segment"))

    def leaf_event(self, node: dict[str, Any], where: str) -> None:
        kind = node["event"]
        if not isinstance(kind, str) or not (kind == ANY_EVENT or (len(kind) <= 80 and EVENT_TYPE.match(kind))):
            raise Invalid("event is an event type such as order.paid, or * for any activity", field=f"{where}.event")
        self.ctx.event_types.add(kind)
        aggregate = node.get("aggregate", "count")
        if aggregate not in AGGREGATES:
            raise Invalid("aggregate is count or sum", field=f"{where}.aggregate")
        op = node.get("op")
        if aggregate == "count":
            for key in ("property", "value"):
                if key in node:
                    raise Invalid(f"{key} goes with aggregate sum; counts use count", field=f"{where}.{key}")
            if op not in EVENT_COUNT_OPS:
                raise Invalid(f"op must be one of {', '.join(EVENT_COUNT_OPS)}", field=f"{where}.op")
            if op == "none":
                if node.get("count") not in (None, 0):
                    raise Invalid("none takes no count", field=f"{where}.count")
            elif not (isinstance(node.get("count"), int) and not isinstance(node["count"], bool)
                      and 0 <= node["count"] <= 1_000_000):
                raise Invalid(f"{op} needs a count: a whole number from 0", field=f"{where}.count")
        else:
            if kind == ANY_EVENT:
                raise Invalid("sum needs one event type", field=f"{where}.event")
            if "count" in node:
                raise Invalid("count goes with aggregate count", field=f"{where}.count")
            prop = node.get("property")
            if not isinstance(prop, str) or not PROPERTY_NAME.match(prop):
                raise Invalid("sum needs the numeric property to add up, such as amount", field=f"{where}.property")
            if op not in EVENT_SUM_OPS:
                raise Invalid(f"op must be one of {', '.join(EVENT_SUM_OPS)}", field=f"{where}.op")
            value = node.get("value")
            if op == "between":
                if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)):
                    raise Invalid("between takes [low, high]", field=f"{where}.value")
            elif not _is_number(value):
                raise Invalid("expected a number", field=f"{where}.value")
        self.window(node, where)
        where_list = node.get("where", [])
        if not isinstance(where_list, list) or len(where_list) > 20:
            raise Invalid("where takes a list of at most 20 property conditions", field=f"{where}.where")
        for i, cond in enumerate(where_list):
            self.property_condition(cond, f"{where}.where[{i}]")

    def window(self, node: dict[str, Any], where: str) -> None:
        if "within_days" in node:
            if "since" in node or "until" in node:
                raise Invalid("use within_days or since/until, not both", field=f"{where}.within_days")
            days = node["within_days"]
            if not _is_id(days) or days > MAX_DAYS:
                raise Invalid(
                    f"within_days is a whole number of days from 1 to {MAX_DAYS}", field=f"{where}.within_days"
                )
        since = parse_datetime(node["since"], f"{where}.since") if "since" in node else None
        until = parse_datetime(node["until"], f"{where}.until") if "until" in node else None
        if since is not None and until is not None and since >= until:
            raise Invalid("since must come before until", field=f"{where}.until")

    def property_condition(self, cond: Any, where: str) -> None:
        if not isinstance(cond, dict):
            raise Invalid("a property condition is a JSON object", field=where)
        extra = sorted(set(cond) - {"property", "op", "value"})
        if extra:
            raise Invalid(f"unknown key {extra[0]!r}", field=f"{where}.{extra[0]}")
        prop = cond.get("property")
        if not isinstance(prop, str) or not PROPERTY_NAME.match(prop):
            raise Invalid("property is the name of an event property, such as amount", field=f"{where}.property")
        op = cond.get("op")
        if op not in PROPERTY_OPS:
            raise Invalid(f"op must be one of {', '.join(PROPERTY_OPS)}", field=f"{where}.op")
        value = cond.get("value")
        at = f"{where}.value"
        if op == "in":
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
                raise Invalid(f"in takes a list of 1 to {MAX_LIST} values", field=at)
            kinds = {property_kind(v, f"{at}[{i}]") for i, v in enumerate(value)}
            if len(kinds) > 1:
                raise Invalid("the values of in are all numbers or all text", field=at)
        else:
            kind = property_kind(value, at)
            if op in ("gt", "gte", "lt", "lte") and kind != NUMBER:
                raise Invalid(f"{op} compares numbers", field=at)
            if op == "contains" and (kind != TEXT or not value):
                raise Invalid("contains looks for some text", field=at)

    def check_references(self) -> None:
        ws = self.ctx.workspace_id
        if self.tag_refs:
            wanted = {t for t, _ in self.tag_refs}
            stmt = select(Tag.id).where(Tag.workspace_id == ws, Tag.id.in_(wanted))
            found = set(self.session.execute(stmt).scalars())
            for tag_id, where in self.tag_refs:
                if tag_id not in found:
                    raise Invalid(f"no tag {tag_id} in this workspace", field=where)
            self.ctx.tag_ids = wanted
        if self.segment_refs:
            query = select(Segment.id, Segment.rule).where(Segment.workspace_id == ws)
            rules: dict[int, Any] = {row[0]: row[1] for row in self.session.execute(query)}
            for segment_id, where in self.segment_refs:
                if segment_id not in rules:
                    raise Invalid(f"no segment {segment_id} in this workspace", field=where)
                if self.segment_id is not None and self._reaches(rules, segment_id, self.segment_id, set()):
                    raise Invalid("segments may not refer to each other in a circle", field=where)
            self.ctx.segment_ids = {s for s, _ in self.segment_refs}

    def _reaches(self, rules: dict[int, Any], start: int, target: int, seen: set[int]) -> bool:
        if start == target:
            return True
        if start in seen:
            return False
        seen.add(start)
        return any(self._reaches(rules, s, target, seen) for s in referenced_segments(rules.get(start)))


def property_kind(value: Any, where: str) -> str:
    """The type a property condition compares as: number, text or boolean (from its value)."""
    if isinstance(value, bool):
        return BOOLEAN
    if _is_number(value):
        return NUMBER
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return TEXT
    raise Invalid(f"expected a number, text of at most {MAX_TEXT} characters, or true/false", field=where)


def referenced_segments(rule: Any) -> set[int]:
    """The ids of segments a (stored) rule refers to, at any depth."""
    found: set[int] = set()
    stack = [rule]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "segment" in node and isinstance(node["segment"], int):
                found.add(node["segment"])
            stack.extend(v for k, v in node.items() if k in GROUP_KEYS)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def validate_rule(session: Session, rule: Any, *, segment_id: int | None = None) -> RuleContext:
    """Check a rule against the bound workspace; Invalid names the first mistake's place (`rule.all[1].op`).

    `segment_id` is the segment the rule belongs to, so a rule can't reach back to its own segment.
    """
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise Invalid("rules are checked inside a workspace", field="rule")
    validator = _Validator(session, workspace_id, segment_id)
    validator.node(rule, "rule", 1)
    validator.check_references()
    return validator.ctx


def watched_event_types(rule: Any) -> set[str]:
    """Event types whose arrival may change who matches a stored rule (`*`: any activity)."""
    types = {"contact.created", "contact.updated", "contact.merged"}
    stack = [rule]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(v for k, v in node.items() if k in GROUP_KEYS)
            if isinstance(node.get("event"), str):
                types.add(node["event"])
            if any(k in node for k in ("tag", "tags_any", "tags_all")):
                types |= {"tag.added", "tag.removed"}
            if "consent" in node:
                types |= {"consent.granted", "consent.withdrawn"}
            if "segment" in node:
                types |= {"segment.entered", "segment.exited"}
    return types


def is_bookkeeping(event_type: str) -> bool:
    """True for events siyu records about its own handling of a contact (not the person's activity)."""
    return event_type.startswith(BOOKKEEPING_PREFIXES)
