"""Keyword auto-replies: rules per account (or for all accounts), the receive hook that answers, the hits.

A text message on an Official Account or on WeChat Customer Service is matched against the active
rules of its account and the workspace-wide ones (`matcher.choose`). The winning rule's reply is
rendered for the sender. On the Official Account it is the callback's passive reply (returned to the
route, which answers it at once); on Customer Service (`wecom_kf`) it is queued urgent. Other kinds get
no reply: a 1:1 WeCom chat has no reply API. Every answer is a hit (`keyword_hits`, the rule's counter,
event `keyword.matched`), which the "keyword" auto-tagging trigger listens to.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import Inbound
from siyu.channels.models import ChannelAccount
from siyu.contacts import tag_rules
from siyu.core import clock, workspaces
from siyu.core.audit import Actor
from siyu.core.errors import Invalid, NotFound, SiyuError, TenancyViolation
from siyu.core.events import record_event
from siyu.core.pagination import page
from siyu.core.tenancy import MAX_ID, bound_workspace, get_scoped
from siyu.messaging import matcher, records
from siyu.messaging.content import check_content, render_for, reply_key
from siyu.messaging.models import KeywordHit, KeywordRule, MessageTemplate

# How each channel kind answers: the OA in the callback's response, Customer Service through its API.
REPLY_MODES = {"wechat_oa": "passive", "wecom_kf": "queue"}
REPLY_TYPES = ("text", "link", "image")
MAX_KEYWORDS = 50
MAX_WINDOWS = 14
FIELDS = ("name", "account_id", "active", "match_type", "keywords", "priority", "windows", "reply")


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("keyword rules are managed through a session bound to a workspace")
    return workspace_id


def list_rules(session: Session, *, account_id: int | None = None) -> list[KeywordRule]:
    """The workspace's rules in the order they are tried (priority, then newest); `account_id` keeps that
    account's rules and the workspace-wide ones."""
    stmt = select(KeywordRule).order_by(KeywordRule.priority, KeywordRule.id.desc())
    if account_id is not None:
        stmt = stmt.where(or_(KeywordRule.account_id == account_id, KeywordRule.account_id.is_(None)))
    return list(session.execute(stmt).scalars())


def get_rule(session: Session, rule_id: Any) -> KeywordRule:
    """One rule of the bound workspace (404 for any other)."""
    return get_scoped(session, KeywordRule, rule_id, what="keyword rule")


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"a whole number from {low} to {high}", field=field)
    return value


def _keywords(raw: Any, match_type: str) -> list[str]:
    if match_type == "default":
        if raw:
            raise Invalid("a default reply answers when nothing else matched: it takes no keywords",
                          field="keywords")
        return []
    if not isinstance(raw, list) or not raw or len(raw) > MAX_KEYWORDS:
        raise Invalid(f"1 to {MAX_KEYWORDS} keywords", field="keywords")
    out: list[str] = []
    for i, keyword in enumerate(raw):
        here = f"keywords[{i}]"
        if not isinstance(keyword, str) or not keyword.strip() or len(keyword) > matcher.MAX_PATTERN:
            raise Invalid(f"a keyword of 1 to {matcher.MAX_PATTERN} characters", field=here)
        keyword = keyword if match_type == "regex" else keyword.strip()
        if match_type == "regex":
            matcher.check_pattern(keyword, field=here)
        if keyword not in out:
            out.append(keyword)
    return out


def _reply(session: Session, raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping) and "template_id" in raw:
        if set(raw) != {"template_id"}:
            raise Invalid("a reply is a content or {template_id}", field="reply", code="unknown_field")
        template_id = _int(raw["template_id"], "reply.template_id", 1, MAX_ID)
        if session.execute(select(MessageTemplate.id).where(MessageTemplate.id == template_id)).first() is None:
            raise NotFound("template not found", field="reply.template_id")
        return {"template_id": template_id}
    return check_content(raw, field="reply", types=REPLY_TYPES)


def _clean(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0], code="unknown_field")
    name = values.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 120:
        raise Invalid("a name of 1 to 120 characters", field="name")
    account_id = values.get("account_id")
    if account_id is not None:
        try:
            account = channels.get_account(session, _int(account_id, "account_id", 1, MAX_ID))
        except NotFound as exc:
            raise NotFound("account not found", field="account_id") from exc
        if account.kind not in REPLY_MODES:
            raise Invalid("keyword replies answer on Official Accounts and WeChat Customer Service accounts",
                          field="account_id", code="no_replies")
        account_id = account.id
    if not isinstance(values.get("active", True), bool):
        raise Invalid("active is true or false", field="active")
    match_type = values.get("match_type")
    if match_type not in matcher.MATCH_TYPES:
        raise Invalid(f"match_type is one of {', '.join(matcher.MATCH_TYPES)}", field="match_type")
    windows = values.get("windows") or []
    if not isinstance(windows, list) or len(windows) > MAX_WINDOWS:
        raise Invalid(f"at most {MAX_WINDOWS} windows", field="windows")
    return {
        "name": name, "account_id": account_id, "active": values.get("active", True), "match_type": match_type,
        "keywords": _keywords(values.get("keywords"), match_type),
        "priority": _int(values.get("priority", 100), "priority", 0, 10_000),
        "windows": [matcher.parse_window(w, f"windows[{i}]") for i, w in enumerate(windows)],
        "reply": _reply(session, values.get("reply")),
    }


def create_rule(session: Session, *, values: Mapping[str, Any], actor: Actor) -> KeywordRule:
    """A new keyword rule (see FIELDS) after every part was checked."""
    rule = KeywordRule(workspace_id=_workspace(session), **_clean(session, values))
    return records.create(session, rule, action="keyword_rule.create", actor=actor)


def update_rule(session: Session, rule: KeywordRule, *, changes: Mapping[str, Any], actor: Actor) -> KeywordRule:
    """Change any of a rule's fields; the whole rule is checked again."""
    clean = _clean(session, {**{f: getattr(rule, f) for f in FIELDS}, **changes})
    return records.update(session, rule, clean, action="keyword_rule.update", actor=actor)


def delete_rule(session: Session, rule: KeywordRule, *, actor: Actor) -> None:
    """Delete a rule and its hits; the replies it sent stay in the archive."""
    records.delete(session, rule, action="keyword_rule.delete", actor=actor)


# --- hits -------------------------------------------------------------------------------------------


def list_hits(session: Session, *, rule_id: int | None = None, cursor: str | None = None,
              limit: int = 50) -> tuple[Any, str | None]:
    """A page of hits, newest first; `rule_id` keeps one rule's."""
    stmt = select(KeywordHit)
    if rule_id is not None:
        stmt = stmt.where(KeywordHit.rule_id == rule_id)
    return page(session, stmt, KeywordHit.id, cursor=cursor, limit=limit)


def hits_by_day(session: Session, *, days: int = 14) -> dict[str, list[Any]]:
    """Hits per day over the last `days` days in the workspace's timezone, as the bar chart reads them."""
    zone = ZoneInfo(workspaces.get_workspace(session, _workspace(session)).timezone)
    today = clock.now().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=zone)
    counts = dict.fromkeys((first + timedelta(days=i) for i in range(days)), 0)
    for (at,) in session.execute(select(KeywordHit.created_at).where(KeywordHit.created_at >= since)):
        day = at.astimezone(zone).date()
        if day in counts:
            counts[day] += 1
    return {"labels": [d.strftime("%m-%d") for d in counts], "counts": list(counts.values())}


def hit_total(session: Session) -> int:
    """Every hit the workspace's rules ever had."""
    return int(session.execute(select(func.count(KeywordHit.id))).scalar_one())


# --- answering --------------------------------------------------------------------------------------


def _as_matcher_rule(rule: KeywordRule) -> matcher.Rule:
    return matcher.Rule(id=rule.id, match_type=rule.match_type, keywords=tuple(rule.keywords),
                        priority=rule.priority, windows=tuple(matcher.window_of(w) for w in rule.windows))


def find_rule(session: Session, account: ChannelAccount, text: str,
              at: datetime | None = None) -> tuple[KeywordRule, str] | None:
    """The rule answering `text` on `account` at `at` (now by default), and the keyword it matched."""
    rules = {r.id: r for r in list_rules(session, account_id=account.id) if r.active}
    zone = ZoneInfo(workspaces.get_workspace(session, account.workspace_id).timezone)
    choice = matcher.choose([_as_matcher_rule(r) for r in rules.values()], text,
                            (at or clock.now()).astimezone(zone))
    return (rules[choice[0].id], choice[1]) if choice is not None else None


def _record_hit(session: Session, rule: KeywordRule, account: ChannelAccount, keyword: str,
                received: channels.Received) -> None:
    now = clock.now()
    session.add(KeywordHit(workspace_id=account.workspace_id, rule_id=rule.id, account_id=account.id,
                           contact_id=received.contact_id, message_id=received.message_id, keyword=keyword[:200],
                           created_at=now))
    # Counted in SQL: two callbacks hitting the same rule at once both count.
    rule.hits, rule.last_hit_at = KeywordRule.hits + 1, now
    session.flush()
    record_event(session, type="keyword.matched", contact_id=received.contact_id,
                 properties={"rule_id": rule.id, "account_id": account.id, "keyword": keyword,
                             "message_id": received.message_id},
                 idempotency_key=f"keyword:{received.message_id}", source="messaging")


def _content(session: Session, rule: KeywordRule, contact_id: int) -> tuple[dict[str, Any], str | None]:
    """The reply rendered for the contact, or the unrendered reply and why it can't be sent."""
    reply = dict(rule.reply)
    if "template_id" in reply:
        template = session.get(MessageTemplate, reply["template_id"])
        if template is None:
            return {"type": "text", "text": ""}, "template_deleted"
        if template.content.get("type") not in REPLY_TYPES:
            return dict(template.content), f"template_type:{template.content.get('type')}"
        reply = dict(template.content)
    try:
        return render_for(session, contact_id, reply), None
    except SiyuError as exc:
        return reply, f"render_failed: {exc.field}: {exc.message}"


def answer(session: Session, account: ChannelAccount, item: Inbound,
           received: channels.Received) -> dict[str, Any] | None:
    """Match a text message, record the hit and reply; the passive reply's content for the OA."""
    mode = REPLY_MODES.get(account.kind)
    if mode is None or item.kind != "text" or received.contact_id is None:
        return None
    found = find_rule(session, account, item.text, item.occurred_at)
    if found is None:
        return None
    rule, keyword = found
    _record_hit(session, rule, account, keyword, received)
    content, problem = _content(session, rule, received.contact_id)
    if mode == "passive" and problem is None:
        received.reply_origin = f"keyword:{rule.id}"
        return content
    key = reply_key("keyword", account.id, item.dedupe_key)
    channels.queue_send(session, account=account, contact_id=received.contact_id, content=content,
                        origin=f"keyword:{rule.id}", idempotency_key=key, urgent=True, received=received,
                        skip_reason=problem)
    return None


@channels.on_receive("keywords")
def _keywords_on_message(session: Session, account: ChannelAccount, item: Inbound,
                         received: channels.Received) -> dict[str, Any] | None:
    return answer(session, account, item, received)


# --- "on keyword" auto-tagging ----------------------------------------------------------------------


def _validate_trigger(session: Session, config: Mapping[str, Any]) -> dict[str, Any]:
    extra = sorted(set(config) - {"rule_ids", "keywords"})
    if extra:
        raise Invalid(f"unknown field {extra[0]!r}", field=f"config.{extra[0]}", code="unknown_field")
    rule_ids, words = config.get("rule_ids") or [], config.get("keywords") or []
    if not isinstance(rule_ids, list) or len(rule_ids) > MAX_KEYWORDS:
        raise Invalid(f"rule_ids is a list of at most {MAX_KEYWORDS} keyword rule ids", field="config.rule_ids")
    ids = sorted({_int(r, "config.rule_ids", 1, MAX_ID) for r in rule_ids})
    found = set(session.execute(select(KeywordRule.id).where(KeywordRule.id.in_(ids))).scalars()) if ids else set()
    if set(ids) - found:
        raise NotFound(f"keyword rule {sorted(set(ids) - found)[0]} not found", field="config.rule_ids")
    if not isinstance(words, list) or len(words) > MAX_KEYWORDS or not all(
            isinstance(w, str) and w.strip() and len(w) <= matcher.MAX_PATTERN for w in words):
        raise Invalid(f"keywords is a list of at most {MAX_KEYWORDS} words", field="config.keywords")
    if not ids and not words:
        raise Invalid("name the keyword rules or the keywords that tag", field="config.rule_ids")
    return {"rule_ids": ids, "keywords": [w.strip() for w in words]}


def _trigger_matches(config: Mapping[str, Any], event: Any) -> bool:
    properties = event.properties if isinstance(event.properties, Mapping) else {}
    if properties.get("rule_id") in (config.get("rule_ids") or []):
        return True
    said = matcher.normalise(str(properties.get("keyword") or ""))
    return bool(said) and any(matcher.normalise(w) == said for w in config.get("keywords") or [])


tag_rules.register_trigger("keyword", validate_config=_validate_trigger,
                           listens_to=lambda _config: "keyword.matched", matches=_trigger_matches)
