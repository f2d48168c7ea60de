"""Sensitive-word rules: word lists and patterns per workspace, checked on every message in and out.

Words are matched with one Aho-Corasick automaton (pyahocorasick) per workspace over the message's
NFKC-normalised, case-folded text, so `１００％有效` and `100%有效`, `WeChat` and `wechat` are one
word. Patterns are regular expressions (RE2, linear in the text: `siyu.core.patterns`) over the same
normalised text. The automaton is cached per workspace and rebuilt when the workspace's rules change
(their count or last change moves). A hit makes one alert per message and rule and records
`conversation.alert`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import ahocorasick
from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from siyu.conversations import text as texts
from siyu.conversations.models import Message, SensitiveAlert, SensitiveRule
from siyu.core import audit, clock, patterns
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid
from siyu.core.events import record_event
from siyu.core.pagination import page
from siyu.core.tenancy import bound_workspace, get_scoped

CATEGORIES = ("over_marketing", "forbidden_claim", "competitor", "abuse", "other")
SEVERITIES = ("low", "medium", "high")
DIRECTIONS = ("both", "in", "out")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
MAX_WORDS = 2000
MAX_PATTERN = 500
ALERTS = cast(Table, SensitiveAlert.__table__)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleSpec:
    """What the matcher needs of a rule."""

    id: int
    words: tuple[str, ...] = ()
    pattern: str = ""


@dataclass(frozen=True)
class Hit:
    """A rule matched normalised text at [start, end)."""

    rule_id: int
    start: int
    end: int


class Matcher:
    """Every word of every rule in one automaton, plus the rules' patterns."""

    def __init__(self, rules: Iterable[RuleSpec]) -> None:
        self.automaton: Any = ahocorasick.Automaton()
        owners: dict[str, list[int]] = {}
        self.patterns: list[tuple[int, patterns.Pattern]] = []
        for rule in rules:
            for word in rule.words:
                key = texts.plain(word).strip()
                if key and rule.id not in owners.setdefault(key, []):
                    owners[key].append(rule.id)
            if rule.pattern:
                try:
                    # Case-insensitive against the folded text, the pattern itself not folded (\D, \p{Han}).
                    self.patterns.append((rule.id, patterns.compiled(rule.pattern, ignore_case=True)))
                except patterns.Error:  # saved before patterns ran on RE2
                    log.warning("sensitive-word rule %s: its pattern is not one RE2 takes; skipped", rule.id)
        for key, ids in owners.items():
            self.automaton.add_word(key, (len(key), tuple(ids)))
        self.has_words = bool(owners)
        if self.has_words:
            self.automaton.make_automaton()

    def find(self, normalised: str) -> list[Hit]:
        """Every hit in already normalised text, by position."""
        hits: list[Hit] = []
        if self.has_words:
            for end, (length, ids) in self.automaton.iter(normalised):
                hits.extend(Hit(rule_id, end - length + 1, end + 1) for rule_id in ids)
        for rule_id, pattern in self.patterns:
            hits.extend(Hit(rule_id, m.start(), m.end()) for m in pattern.finditer(normalised) if m.end() > m.start())
        return sorted(hits, key=lambda h: (h.start, h.end, h.rule_id))


_cache: dict[int, tuple[tuple[Any, ...], Matcher, dict[int, SensitiveRule]]] = {}
_lock = threading.Lock()


def _version(session: Session, workspace_id: int) -> tuple[Any, ...]:
    row = session.execute(select(func.count(SensitiveRule.id), func.max(SensitiveRule.updated_at),
                                 func.max(SensitiveRule.id))
                          .where(SensitiveRule.workspace_id == workspace_id)).one()
    return tuple(row)


def matcher_for(session: Session, workspace_id: int) -> tuple[Matcher, dict[int, SensitiveRule]]:
    """The workspace's matcher, rebuilt when its rules changed since it was cached."""
    version = _version(session, workspace_id)
    cached = _cache.get(workspace_id)
    if cached is not None and cached[0] == version:
        return cached[1], cached[2]
    rules = list(session.execute(select(SensitiveRule).where(
        SensitiveRule.workspace_id == workspace_id, SensitiveRule.active.is_(True))).scalars())
    matcher = Matcher(RuleSpec(r.id, tuple(r.words or ()), r.pattern if r.kind == "regex" else "") for r in rules)
    by_id = {r.id: r for r in rules}
    with _lock:
        _cache[workspace_id] = (version, matcher, by_id)
    return matcher, by_id


def scan(session: Session, messages: Sequence[Message]) -> int:
    """Check new messages against their workspace's rules; one alert per message and rule hit."""
    made = 0
    by_workspace: dict[int, list[Message]] = {}
    for message in messages:
        if message.text:
            by_workspace.setdefault(message.workspace_id, []).append(message)
    for workspace_id, batch in by_workspace.items():
        matcher, rules = matcher_for(session, workspace_id)
        if rules:
            made += sum(_alert(session, message, matcher, rules) for message in batch)
    return made


def _alert(session: Session, message: Message, matcher: Matcher, rules: dict[int, SensitiveRule]) -> int:
    normalised, where = texts.normalise(message.text)
    first: dict[int, Hit] = {}
    for hit in matcher.find(normalised):
        rule = rules.get(hit.rule_id)
        if rule is not None and rule.direction in ("both", message.direction):
            first.setdefault(hit.rule_id, hit)
    for rule_id, hit in first.items():
        rule = rules[rule_id]
        matched = message.text[where[hit.start]:where[hit.end - 1] + 1][:200]
        alert_id = session.connection().execute(insert(ALERTS).values(
            workspace_id=message.workspace_id, message_id=message.id, rule_id=rule.id, rule_name=rule.name,
            category=rule.category, severity=rule.severity, matched=matched, direction=message.direction,
            contact_id=message.contact_id, staff_id=message.staff_id, status="open", created_at=clock.now(),
        ).returning(ALERTS.c.id)).scalar_one()
        record_event(session, type="conversation.alert", contact_id=message.contact_id, source="conversations",
                     idempotency_key=f"alert:{alert_id}",
                     properties={"alert_id": alert_id, "message_id": message.id, "rule_id": rule.id,
                                 "rule": rule.name, "category": rule.category, "severity": rule.severity,
                                 "matched": matched, "direction": message.direction})
    return len(first)


# --- rules ------------------------------------------------------------------------------------------


def list_rules(session: Session) -> list[SensitiveRule]:
    """The workspace's rules, by name."""
    return list(session.execute(select(SensitiveRule).order_by(SensitiveRule.name, SensitiveRule.id)).scalars())


def get_rule(session: Session, rule_id: Any) -> SensitiveRule:
    """One rule of the bound workspace."""
    return get_scoped(session, SensitiveRule, rule_id, what="rule")


def _choice(value: str, allowed: Sequence[str], field: str) -> str:
    if value not in allowed:
        raise Invalid(f"{field} is one of {', '.join(allowed)}", field=field)
    return value


def _apply(session: Session, rule: SensitiveRule, values: dict[str, Any]) -> None:
    if "name" in values:
        name = (values["name"] or "").strip()
        if not name or len(name) > 120:
            raise Invalid("a name of 1 to 120 characters", field="name")
        other = session.execute(select(SensitiveRule.id).where(SensitiveRule.name == name)).scalar_one_or_none()
        if other is not None and other != rule.id:
            raise Conflict("another rule has this name", field="name")
        rule.name = name
    for field, allowed in (("category", CATEGORIES), ("severity", SEVERITIES), ("direction", DIRECTIONS),
                           ("kind", ("words", "regex"))):
        if values.get(field) is not None:
            setattr(rule, field, _choice(values[field], allowed, field))
    if values.get("active") is not None:
        rule.active = bool(values["active"])
    if values.get("words") is not None:
        words = list(dict.fromkeys(w.strip() for w in values["words"] if w and w.strip()))
        if len(words) > MAX_WORDS or any(len(w) > 100 for w in words):
            raise Invalid(f"at most {MAX_WORDS} words of up to 100 characters", field="words")
        rule.words = words
    if values.get("pattern") is not None:
        pattern = values["pattern"].strip()
        if pattern:
            patterns.check(pattern, field="pattern", ignore_case=True, max_length=MAX_PATTERN)
        rule.pattern = pattern
    if rule.kind == "words" and not rule.words:
        raise Invalid("list at least one word", field="words")
    if rule.kind == "regex" and not rule.pattern:
        raise Invalid("give a pattern", field="pattern")


def _forget(session: Session) -> None:
    # Other processes see the change through the rules' version; this one need not wait for it.
    workspace_id = bound_workspace(session)
    if workspace_id is not None:
        _cache.pop(workspace_id, None)


def create_rule(session: Session, *, values: dict[str, Any], actor: Actor) -> SensitiveRule:
    """A new rule; it applies to messages from now on."""
    rule = SensitiveRule(category="other", kind="words", words=[], pattern="", severity="medium", direction="both",
                         active=True)
    _apply(session, rule, {"kind": "words", **values})
    session.add(rule)
    session.flush()
    _forget(session)
    audit.record(session, actor, workspace_id=rule.workspace_id, action="sensitive_rule.create",
                 entity_type="sensitive_rule", entity_id=rule.id, before=None, after=audit.snapshot(rule))
    return rule


def update_rule(session: Session, rule: SensitiveRule, *, values: dict[str, Any], actor: Actor) -> SensitiveRule:
    """Change a rule."""
    before = audit.snapshot(rule)
    _apply(session, rule, values)
    rule.updated_at = clock.now()
    session.flush()
    _forget(session)
    audit.record(session, actor, workspace_id=rule.workspace_id, action="sensitive_rule.update",
                 entity_type="sensitive_rule", entity_id=rule.id, before=before, after=audit.snapshot(rule))
    return rule


def delete_rule(session: Session, rule: SensitiveRule, *, actor: Actor) -> None:
    """Remove a rule; its alerts stay, naming it."""
    audit.record(session, actor, workspace_id=rule.workspace_id, action="sensitive_rule.delete",
                 entity_type="sensitive_rule", entity_id=rule.id, before=audit.snapshot(rule), after=None)
    session.delete(rule)
    session.flush()
    _forget(session)


# --- alerts -----------------------------------------------------------------------------------------


def list_alerts(
    session: Session, *, status: str | None = None, severity: str | None = None, cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[SensitiveAlert], str | None]:
    """Alerts, newest first."""
    stmt = select(SensitiveAlert)
    if status:
        stmt = stmt.where(SensitiveAlert.status == _choice(status, ALERT_STATUSES, "status"))
    if severity:
        stmt = stmt.where(SensitiveAlert.severity == _choice(severity, SEVERITIES, "severity"))
    return page(session, stmt, SensitiveAlert.id, cursor=cursor, limit=limit)


def get_alert(session: Session, alert_id: Any) -> SensitiveAlert:
    """One alert of the bound workspace."""
    return get_scoped(session, SensitiveAlert, alert_id, what="alert")


def open_alert_count(session: Session) -> int:
    """Alerts nobody acknowledged yet (the console's badge)."""
    return int(session.execute(select(func.count(SensitiveAlert.id))
                               .where(SensitiveAlert.status == "open")).scalar_one())


def handle_alert(session: Session, alert: SensitiveAlert, *, status: str, actor: Actor) -> SensitiveAlert:
    """Acknowledge or resolve an alert (a resolved one stays resolved)."""
    _choice(status, ("acknowledged", "resolved"), "status")
    if alert.status == "resolved" or alert.status == status:
        return alert
    before = {"status": alert.status}
    alert.status, alert.handled_at, alert.handled_by = status, clock.now(), actor.label[:200]
    session.flush()
    audit.record(session, actor, workspace_id=alert.workspace_id, action=f"sensitive_alert.{status}",
                 entity_type="sensitive_alert", entity_id=alert.id, before=before, after={"status": status})
    return alert
