"""A checked segment rule as one SQL criterion over `contacts`, the same on SQLite and PostgreSQL.

Leaves never yield NULL: a comparison on a column is guarded by `IS NOT NULL`, JSON values are
extracted only when their JSON type fits (so a number attribute holding text is simply not a number,
instead of a cast error on PostgreSQL), and `ne` / `not_in` count unset values as different. Event
conditions are correlated subqueries over `events` filtered by (workspace_id, contact_id, occurred_at),
the order of its index; the window is measured from `siyu.core.clock.now()`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from siyu.contacts.models import Consent, Contact, ContactTag, Identity, SegmentMember
from siyu.contacts.segment_rules import (
    ANY_EVENT,
    BOOKKEEPING_PREFIXES,
    BOOLEAN,
    DATE,
    DATETIME,
    FIELDS,
    MULTI,
    NUMBER,
    TEXT,
    RuleContext,
    parse_date,
    parse_datetime,
    property_kind,
    validate_rule,
)
from siyu.core import clock
from siyu.core.db import is_postgres
from siyu.core.models import Event

Criterion = ColumnElement[bool]


def compile_rule(session: Session, rule: Any, *, segment_id: int | None = None) -> Criterion:
    """Check `rule` in the bound workspace and return its WHERE over `Contact` (Invalid if it is wrong)."""
    ctx = validate_rule(session, rule, segment_id=segment_id)
    return _Compiler(ctx, postgres=is_postgres(session)).node(rule)


def _set(column: Any) -> Criterion:
    result: Criterion = column.is_not(None)
    return result


def _guard(column: Any, comparison: Criterion) -> Criterion:
    """A comparison that is false (not NULL) where the value is unset."""
    return and_(column.is_not(None), comparison)


class _Compiler:
    def __init__(self, ctx: RuleContext, *, postgres: bool) -> None:
        self.ctx = ctx
        self.postgres = postgres
        self.now = clock.now()
        self.ws = ctx.workspace_id

    def node(self, node: dict[str, Any]) -> Criterion:
        if "all" in node:
            parts = [self.node(c) for c in node["all"]]
            return and_(true(), *parts) if parts else true()
        if "any" in node:
            parts = [self.node(c) for c in node["any"]]
            return or_(false(), *parts) if parts else false()
        if "not" in node:
            return not_(self.node(node["not"]))
        for kind in ("field", "attribute", "tag", "tags_any", "tags_all", "identity", "consent", "segment", "event"):
            if kind in node:
                result: Criterion = getattr(self, f"leaf_{kind}")(node)
                return result
        raise AssertionError(f"validated rule node without a kind: {node!r}")

    # --- text helpers that mean the same on both engines (case-sensitive, by character) ---------------

    def _contains(self, column: Any, value: str) -> Criterion:
        position = func.strpos(column, value) if self.postgres else func.instr(column, value)
        return _guard(column, position > 0)

    def _starts_with(self, column: Any, value: str) -> Criterion:
        return _guard(column, func.substr(column, 1, len(value)) == value)

    def compare(
        self, column: Any, kind: str, op: str, value: Any, present: Criterion | None = None, *, text: bool = False
    ) -> Criterion:
        """`column op value` for a value of rule type `kind`; `present` says when the value is set.

        `text` marks a value held as JSON text (attribute dates are ISO text, which orders like dates).
        """
        is_set = present if present is not None else _set(column)
        if op in ("is_set", "is_not_set"):
            filled = and_(is_set, column != "") if kind == TEXT or text else is_set
            return filled if op == "is_set" else not_(filled)
        if kind == DATE and not text:
            value = [parse_date(v, "") for v in value] if isinstance(value, list) else parse_date(value, "")
        elif kind == DATETIME and op != "within_last_days":
            value = [parse_datetime(v, "") for v in value] if isinstance(value, list) else parse_datetime(value, "")
        simple = {"eq": column == value, "gt": column > value, "gte": column >= value, "lt": column < value,
                  "lte": column <= value, "before": column < value, "after": column > value}
        if op in simple:
            return and_(is_set, simple[op])
        if op == "ne":
            return or_(not_(is_set), column != value)
        if op == "in":
            return and_(is_set, column.in_(value))
        if op == "not_in":
            return or_(not_(is_set), column.not_in(value))
        if op == "between":
            return and_(is_set, column >= value[0], column <= value[1])
        if op == "within_last_days":
            return and_(is_set, column >= self.now - timedelta(days=value))
        if op == "contains":
            return self._contains(column, value)
        if op == "starts_with":
            return self._starts_with(column, value)
        raise AssertionError(f"validated op {op!r} has no SQL")

    # --- leaves -----------------------------------------------------------------------------------

    def leaf_field(self, node: dict[str, Any]) -> Criterion:
        spec = FIELDS[node["field"]]
        column = getattr(Contact, node["field"])
        if spec.type == BOOLEAN:
            flag: Criterion = column.is_(true()) if node["value"] else column.is_not(true())
            return flag
        return self.compare(column, spec.type, node["op"], node.get("value"))

    def _json_kind(self, document: Any, key: str) -> Any:
        # A missing key has no type (NULL): coalesced, so tests on the type stay true or false.
        if self.postgres:
            return func.coalesce(func.jsonb_typeof(document[key]), "missing")
        return func.coalesce(func.json_type(document, f'$."{key}"'), "missing")

    def json_text(self, document: Any, key: str) -> tuple[Any, Criterion]:
        """A JSON object's text member and when it is present as text."""
        present = self._json_kind(document, key) == ("string" if self.postgres else "text")
        return case((present, document[key].as_string())), present

    def json_number(self, document: Any, key: str) -> tuple[Any, Criterion]:
        """A JSON object's number member (as a float) and when it is present as a number."""
        kind = self._json_kind(document, key)
        present = kind == "number" if self.postgres else kind.in_(("integer", "real"))
        extracted = cast(document[key].as_string(), Float) if self.postgres else document[key].as_float()
        return case((present, extracted)), present

    def json_boolean(self, document: Any, key: str, value: bool) -> Criterion:
        kind = self._json_kind(document, key)
        if self.postgres:
            return and_(kind == "boolean", document[key].as_string() == ("true" if value else "false"))
        same: Criterion = kind == ("true" if value else "false")
        return same

    def leaf_attribute(self, node: dict[str, Any]) -> Criterion:
        key, op, value = node["attribute"], node["op"], node.get("value")
        kind = self.ctx.attributes[key]
        document = Contact.attributes
        if kind == MULTI:
            return self._multi(document, key, op, value)
        if kind == NUMBER:
            column, present = self.json_number(document, key)
        else:
            column, present = self.json_text(document, key)
        return self.compare(column, kind, op, value, present, text=kind != NUMBER)

    def _multi(self, document: Any, key: str, op: str, value: Any) -> Criterion:
        if self.postgres:
            member = type_coerce(document, JSONB)[key]
            is_array = func.coalesce(func.jsonb_typeof(member), "missing") == "array"
            if op == "contains":
                return and_(is_array, member.contains(cast(json.dumps([value]), JSONB)))
            non_empty = and_(is_array, func.jsonb_array_length(case((is_array, member))) > 0)
        else:
            path = f'$."{key}"'
            is_array = self._json_kind(document, key) == "array"
            if op == "contains":
                items = func.json_each(document, path).table_valued("value", "type")
                has = exists(
                    select(literal(1)).select_from(items).where(items.c.type == "text", items.c.value == value)
                ).correlate(Contact)
                return and_(is_array, has)
            non_empty = and_(is_array, func.json_array_length(document, path) > 0)
        return non_empty if op == "is_set" else not_(non_empty)

    def _has_tag(self, tag_id: int) -> Criterion:
        return exists().where(
            ContactTag.workspace_id == self.ws, ContactTag.contact_id == Contact.id, ContactTag.tag_id == tag_id
        )

    def leaf_tag(self, node: dict[str, Any]) -> Criterion:
        has = self._has_tag(node["tag"])
        return has if node["op"] == "has" else not_(has)

    def leaf_tags_any(self, node: dict[str, Any]) -> Criterion:
        return exists().where(
            ContactTag.workspace_id == self.ws, ContactTag.contact_id == Contact.id,
            ContactTag.tag_id.in_(node["tags_any"]),
        )

    def leaf_tags_all(self, node: dict[str, Any]) -> Criterion:
        return and_(true(), *(self._has_tag(t) for t in dict.fromkeys(node["tags_all"])))

    def leaf_identity(self, node: dict[str, Any]) -> Criterion:
        has = exists().where(
            Identity.workspace_id == self.ws, Identity.contact_id == Contact.id, Identity.type == node["identity"]
        )
        return has if node["op"] == "has" else not_(has)

    def leaf_consent(self, node: dict[str, Any]) -> Criterion:
        status = "withdrawn" if node["op"] == "withdrawn" else "granted"
        found = exists().where(
            Consent.workspace_id == self.ws, Consent.contact_id == Contact.id, Consent.channel == node["consent"],
            Consent.status == status,
        )
        return not_(found) if node["op"] == "not_granted" else found

    def leaf_segment(self, node: dict[str, Any]) -> Criterion:
        member = exists().where(
            SegmentMember.workspace_id == self.ws, SegmentMember.contact_id == Contact.id,
            SegmentMember.segment_id == node["segment"],
        )
        return member if node["op"] == "in" else not_(member)

    # --- events -----------------------------------------------------------------------------------

    def _event_filter(self, node: dict[str, Any]) -> list[Criterion]:
        # workspace_id, contact_id, then occurred_at: the columns of ix_events_workspace_contact_time.
        conds: list[Criterion] = [Event.workspace_id == self.ws, Event.contact_id == Contact.id]
        if "within_days" in node:
            conds.append(Event.occurred_at >= self.now - timedelta(days=node["within_days"]))
        if "since" in node:
            conds.append(Event.occurred_at >= parse_datetime(node["since"], ""))
        if "until" in node:
            conds.append(Event.occurred_at < parse_datetime(node["until"], ""))
        if node["event"] == ANY_EVENT:
            conds.extend(not_(Event.type.startswith(p, autoescape=True)) for p in BOOKKEEPING_PREFIXES)
        else:
            conds.append(Event.type == node["event"])
        conds.extend(self._property(c) for c in node.get("where", ()))
        return conds

    def _property(self, cond: dict[str, Any]) -> Criterion:
        prop, op, value = cond["property"], cond["op"], cond["value"]
        kind = property_kind(value[0] if op == "in" else value, "")
        if kind == BOOLEAN:
            matched = self.json_boolean(Event.properties, prop, bool(value))
            return not_(matched) if op == "ne" else matched
        column, present = (self.json_number if kind == NUMBER else self.json_text)(Event.properties, prop)
        return self.compare(column, kind, op, value, present)

    def leaf_event(self, node: dict[str, Any]) -> Criterion:
        conds = self._event_filter(node)
        op = node["op"]
        if node.get("aggregate", "count") == "sum":
            amount, _ = self.json_number(Event.properties, node["property"])
            total = (
                select(func.coalesce(func.sum(amount), 0)).where(*conds).correlate(Contact).scalar_subquery()
            )
            value = node["value"]
            return self.compare(total, NUMBER, op, value, true())
        count = node.get("count", 0)
        happened = exists().where(*conds).correlate(Contact)
        if op == "none" or (op == "at_most" and count == 0) or (op == "exactly" and count == 0):
            return not_(happened)
        if op == "at_least" and count <= 1:
            return happened if count == 1 else true()
        number: ColumnElement[int] = select(func.count()).where(*conds).correlate(Contact).scalar_subquery()
        compared: Criterion = {"at_least": number >= count, "at_most": number <= count}.get(op, number == count)
        return compared

