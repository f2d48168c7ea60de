"""Console: the inbox and its threads, archive search, sensitive-word alerts and rules, and the reports."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from siyu.channels import service as channels
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, form_text, redirect
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.contacts.views_tags import explain_here
from siyu.conversations import search, sensitive, service
from siyu.core.errors import Forbidden, SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FLASHES.update({
    "reply_queued": N_("Reply queued."),
    "conversation_closed": N_("Conversation closed; the satisfaction survey is on its way."),
    "rule_saved": N_("Rule saved."),
    "rule_deleted": N_("Rule deleted."),
    "alert_saved": N_("Alert updated."),
    "conversation_settings_saved": N_("Settings saved."),
})
EXPLAINED = {
    ("invalid", "text"): N_("Write a reply of 1 to 4,000 characters."),
    ("invalid", "name"): N_("Give the rule a name of 1 to 120 characters."),
    ("conflict", "name"): N_("Another rule has this name."),
    ("invalid", "words"): N_("List at least one word, one per line (at most 2,000 of up to 100 characters)."),
    ("invalid", "pattern"): N_("Give a valid regular expression that can't match empty text."),
    ("bad_pattern", "pattern"): N_(
        "Give a valid regular expression of at most 500 characters that can't match empty text, without "
        "backreferences (\\1) or lookarounds ((?=…), (?<!…))."),
    ("invalid", "idle_close_hours"): N_("Choose between 1 and 720 hours."),
    ("invalid", "survey_text"): N_("Keep the question under 500 characters."),
    ("invalid", "since"): N_("Use a date like 2026-11-30."),
    ("invalid", "until"): N_("Use a date like 2026-11-30."),
    ("invalid", "q"): N_("Search for at most 200 characters."),
}
CATEGORY_NAMES = {"over_marketing": N_("Over-marketing"), "forbidden_claim": N_("Forbidden claims"),
                  "competitor": N_("Competitors"), "abuse": N_("Abuse"), "other": N_("Other")}
SEVERITY_NAMES = {"low": N_("Low"), "medium": N_("Medium"), "high": N_("High")}
DIRECTION_NAMES = {"both": N_("In and out"), "in": N_("Incoming"), "out": N_("Outgoing")}
ALERT_STATUS_NAMES = {"open": N_("Open"), "acknowledged": N_("Acknowledged"), "resolved": N_("Resolved")}



def _explain(exc: SiyuError, console: Console) -> str:
    message = EXPLAINED.get((exc.code, exc.field or ""))
    return console.gettext(message) if message else explain_here(exc, console)


def _manager(console: Console) -> bool:
    return console.can("conversations", "read") and console.role != "staff"


def _require_manager(console: Console, access: str = "read") -> None:
    console.auth.require("conversations", access)
    if console.role == "staff":
        raise Forbidden("only owners, admins and operators see this")


def _frame(console: Console, template: str, **context: Any) -> Response:
    """A page of the module with its tabs and the open-alert badge."""
    manager = _manager(console)
    return console.page(template, manager=manager,
                        open_alerts=sensitive.open_alert_count(console.db) if manager else 0, **context)


def _names(console: Console, contact_ids: set[int | None]) -> dict[int, str]:
    names: dict[int, str] = {}
    for contact_id in contact_ids:
        if contact_id is not None:
            contact = contacts.get_contact(console.db, contact_id)
            names[contact_id] = contact.nickname or contact.name or f"#{contact_id}"
    return names


def _staff_names(console: Console) -> dict[int, str]:
    return {s.id: s.name for s in staff_service.list_staff(console.db)}


def _accounts(console: Console) -> dict[int, str]:
    return {a.id: a.name for a in channels.list_accounts(console.db)}


# --- inbox ------------------------------------------------------------------------------------------


@router.get("/console/inbox")
def inbox(console: ConsoleDep, status: str = "open", cursor: str | None = None) -> Response:
    """Conversations waiting for an answer (or closed ones), newest first."""
    console.auth.require("conversations", "read")
    status = status if status in ("open", "closed") else "open"
    rows, nxt = service.list_conversations(console.db, status=status, viewer=console.auth, cursor=cursor, limit=50)
    return _frame(console, "conversations/inbox.html", conversations=rows, next_cursor=nxt, shown=status,
                  names=_names(console, {c.contact_id for c in rows}), staff_names=_staff_names(console),
                  accounts=_accounts(console))


def _thread(console: Console, conversation_id: int, *, error: str | None = None, text: str = "",
            status: int = 200) -> Response:
    conversation = service.get_conversation(console.db, conversation_id, viewer=console.auth)
    return _frame(console, "conversations/thread.html", conversation=conversation,
                  messages=service.thread(console.db, conversation), error=error, text=text, status=status,
                  names=_names(console, {conversation.contact_id}), staff_names=_staff_names(console),
                  accounts=_accounts(console), editable=console.can("conversations", "write"),
                  response_seconds=service.response_seconds(conversation),
                  # One key per rendered form: a double submit queues one message, the next reply its own.
                  reply_key=secrets.token_urlsafe(12))


@router.get("/console/inbox/{conversation_id}")
def thread(conversation_id: int, console: ConsoleDep) -> Response:
    """One conversation's messages and the reply box."""
    console.auth.require("conversations", "read")
    return _thread(console, conversation_id)


@router.post("/console/inbox/{conversation_id}/reply")
def reply(conversation_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Send a reply to the contact through the conversation's account."""
    console.auth.require("conversations", "write")
    conversation = service.get_conversation(console.db, conversation_id, viewer=console.auth)
    text = form_text(form, "text")
    try:
        with console.db.begin_nested():
            service.reply(console.db, conversation, text=text, actor=console.actor,
                          idempotency_key=form_text(form, "key") or None)
    except SiyuError as exc:
        return _thread(console, conversation_id, error=_explain(exc, console), text=text, status=exc.status)
    return redirect(f"/console/inbox/{conversation_id}", flash="reply_queued")


@router.post("/console/inbox/{conversation_id}/close")
def close(conversation_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Close the conversation (the survey is queued)."""
    console.auth.require("conversations", "write")
    conversation = service.get_conversation(console.db, conversation_id, viewer=console.auth)
    service.close(console.db, conversation, actor=console.actor)
    return redirect(f"/console/inbox/{conversation_id}", flash="conversation_closed")


# --- archive search ---------------------------------------------------------------------------------


def _day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        from siyu.core.errors import Invalid

        raise Invalid("a date like 2026-11-30", field=field) from None


@router.get("/console/archive")
def archive(console: ConsoleDep, q: str = "", direction: str = "", account_id: str = "", staff_id: str = "",
            since: str = "", until: str = "", substring: str = "", cursor: str | None = None) -> Response:
    """Search every message in and out, in Chinese or English, with filters and highlighted matches."""
    console.auth.require("conversations", "read")
    values = {"q": q, "direction": direction, "account_id": account_id, "staff_id": staff_id, "since": since,
              "until": until}
    hits: list[search.Hit] = []
    nxt, fallback, error = None, False, None
    try:
        end = _day(until, "until")
        hits, nxt, fallback = search.search(
            console.db, q=q, direction=direction or None, viewer=console.auth, cursor=cursor, limit=50,
            account_id=int(account_id) if account_id.isdigit() else None,
            staff_id=int(staff_id) if staff_id.isdigit() else None, since=_day(since, "since"),
            until=end + timedelta(days=1) if end else None, substring=substring == "1",
        )
    except SiyuError as exc:
        error = _explain(exc, console)
    return _frame(console, "conversations/archive.html", hits=hits, next_cursor=nxt, substring=fallback,
                  values=values, error=error, names=_names(console, {h.message.contact_id for h in hits}),
                  staff_names=_staff_names(console), accounts=_accounts(console))


# --- alerts -----------------------------------------------------------------------------------------


@router.get("/console/alerts")
def alerts(console: ConsoleDep, status: str = "open", cursor: str | None = None) -> Response:
    """Sensitive-word alerts for admins to acknowledge and resolve."""
    _require_manager(console)
    status = status if status in sensitive.ALERT_STATUSES else "open"
    rows, nxt = sensitive.list_alerts(console.db, status=status, cursor=cursor, limit=50)
    texts = {a.id: channels.get_message(console.db, a.message_id).text for a in rows}
    return _frame(console, "conversations/alerts.html", alerts=rows, next_cursor=nxt, shown=status, texts=texts,
                  names=_names(console, {a.contact_id for a in rows}), category_names=CATEGORY_NAMES,
                  severity_names=SEVERITY_NAMES, status_names=ALERT_STATUS_NAMES,
                  editable=console.can("conversations", "write"))


@router.post("/console/alerts/{alert_id}")
def handle_alert(alert_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Acknowledge or resolve one alert."""
    _require_manager(console, "write")
    alert = sensitive.get_alert(console.db, alert_id)
    status = form_text(form, "status")
    sensitive.handle_alert(console.db, alert, status=status if status == "resolved" else "acknowledged",
                           actor=console.actor)
    return redirect("/console/alerts", flash="alert_saved")


# --- reports ----------------------------------------------------------------------------------------


def _minutes(seconds: float | None) -> float:
    return round((seconds or 0) / 60, 1)


@router.get("/console/conversation-reports")
def reports(console: ConsoleDep, days: int = 30) -> Response:
    """First-response time and satisfaction per staff member, with charts."""
    _require_manager(console)
    days = days if days in (7, 30, 90) else 30
    from siyu.core import clock

    since = clock.now() - timedelta(days=days)
    first = service.first_response_report(console.db, since=since)
    rated = service.satisfaction_report(console.db, since=since)
    staff_names = _staff_names(console)
    unassigned = console.gettext("Unassigned")

    def name(staff_id: int | None) -> str:
        return staff_names.get(staff_id, unassigned) if staff_id is not None else unassigned

    response_chart = {"labels": [name(r["staff_id"]) for r in first["staff"]],
                      "counts": [_minutes(r["median_seconds"]) for r in first["staff"]]}
    daily_chart = {"labels": [d["day"][5:] for d in first["days"]],
                   "counts": [_minutes(d["median_seconds"]) for d in first["days"]]}
    totals = [sum(r["distribution"][str(n)] for r in rated) for n in range(1, 6)]
    rating_chart = {"labels": ["1", "2", "3", "4", "5"], "counts": totals}
    return _frame(console, "conversations/reports.html", first=first, rated=rated, name=name, days=days,
                  minutes=_minutes, response_chart=response_chart, daily_chart=daily_chart,
                  rating_chart=rating_chart, rated_total=sum(totals))


# --- rules and settings -----------------------------------------------------------------------------


def _rules_page(console: Console, *, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                status: int = 200) -> Response:
    settings = service.get_settings(console.db)
    return _frame(console, "conversations/rules.html", rules=sensitive.list_rules(console.db),
                  category_names=CATEGORY_NAMES, severity_names=SEVERITY_NAMES, direction_names=DIRECTION_NAMES,
                  settings=settings, errors=errors or {}, values=values or {}, status=status,
                  editable=console.can("conversations", "write"))


@router.get("/console/sensitive-words")
def rules(console: ConsoleDep) -> Response:
    """The sensitive-word rules editor and the conversation settings."""
    _require_manager(console)
    return _rules_page(console)


def _rule_values(form: FormData) -> dict[str, Any]:
    words = [w for line in form_text(form, "words").splitlines() for w in line.split(",")]
    return {"name": form_text(form, "name"), "category": form_text(form, "category") or "other",
            "kind": form_text(form, "kind") or "words", "words": words, "pattern": form_text(form, "pattern"),
            "severity": form_text(form, "severity") or "medium", "direction": form_text(form, "direction") or "both",
            "active": form.get("active") is not None}


@router.post("/console/sensitive-words")
def create_rule(console: ConsoleDep, form: FormDep) -> Response:
    """Add a rule."""
    _require_manager(console, "write")
    values = _rule_values(form)
    try:
        with console.db.begin_nested():
            sensitive.create_rule(console.db, values=values, actor=console.actor)
    except SiyuError as exc:
        shown = {**values, "words": "\n".join(values["words"])}
        return _rules_page(console, errors={f"rule.{exc.field or '_form'}": _explain(exc, console)},
                           values=shown, status=exc.status)
    return redirect("/console/sensitive-words", flash="rule_saved")


@router.post("/console/sensitive-words/{sensitive_rule_id}/toggle")
def toggle_rule(sensitive_rule_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Switch a rule on or off."""
    _require_manager(console, "write")
    rule = sensitive.get_rule(console.db, sensitive_rule_id)
    sensitive.update_rule(console.db, rule, values={"active": not rule.active}, actor=console.actor)
    return redirect("/console/sensitive-words", flash="rule_saved")


@router.post("/console/sensitive-words/{sensitive_rule_id}/delete")
def delete_rule(sensitive_rule_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a rule."""
    _require_manager(console, "write")
    sensitive.delete_rule(console.db, sensitive.get_rule(console.db, sensitive_rule_id), actor=console.actor)
    return redirect("/console/sensitive-words", flash="rule_deleted")


@router.post("/console/sensitive-words/settings")
def save_settings(console: ConsoleDep, form: FormDep) -> Response:
    """Save when idle conversations close and the survey text."""
    _require_manager(console, "write")
    hours = form_text(form, "idle_close_hours")
    values = {"idle_close_hours": hours, "survey_text": form_text(form, "survey_text")}
    try:
        with console.db.begin_nested():
            service.update_settings(console.db, idle_close_hours=int(hours) if hours.isdigit() else 0,
                                    survey_enabled=form.get("survey_enabled") is not None,
                                    survey_text=values["survey_text"], actor=console.actor)
    except SiyuError as exc:
        return _rules_page(console, errors={f"settings.{exc.field or '_form'}": _explain(exc, console)},
                           values=values, status=exc.status)
    return redirect("/console/sensitive-words", flash="conversation_settings_saved")
