"""Console: keyword auto-replies (the list with hits and a chart of them, the rule editor)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from siyu.channels import service as channels
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, redirect
from siyu.messaging import keywords, message_templates
from siyu.messaging.content import summary
from siyu.messaging.matcher import MATCH_TYPES
from siyu.messaging.views import (
    EXPLAINED,
    KIND_NAMES,
    TYPE_NAMES,
    attempt,
    content_from_form,
    form_of_content,
    text_of,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

WINDOW_ROWS = 3
MATCH_NAMES = {
    "exact": N_("Is exactly"), "contains": N_("Contains"), "regex": N_("Matches the pattern"),
    "default": N_("Default reply (nothing else matched)"),
}
DAY_NAMES = {1: N_("Mon"), 2: N_("Tue"), 3: N_("Wed"), 4: N_("Thu"), 5: N_("Fri"), 6: N_("Sat"), 7: N_("Sun")}
FLASHES.update({
    "keyword_rule_saved": N_("Keyword reply saved."),
    "keyword_rule_deleted": N_("Keyword reply deleted."),
})
EXPLAINED.update({
    ("invalid", "keywords"): N_("Write one to 50 keywords, one a line (none for a default reply)."),
    ("bad_pattern", "keywords"): N_(
        "One of the patterns can't be used: it must be a valid regular expression of at most 200 characters "
        "that can't match empty text, without backreferences (\\1) or lookarounds ((?=…), (?<!…))."),
    ("invalid", "match_type"): N_("Choose how the message is matched."),
    ("invalid", "priority"): N_("Priority is a whole number from 0 to 10,000."),
    ("invalid", "windows"): N_("Check the day and hours of this window: it must end after it starts."),
    ("not_found", "account_id"): N_("Choose one of your accounts."),
    ("no_replies", "account_id"): N_("Keyword replies answer on Official Accounts and WeChat Customer Service only."),
    ("not_found", "reply.template_id"): N_("Choose one of your templates."),
})


def _values_of(rule: Any) -> dict[str, Any]:
    """A rule's fields as the editor shows them."""
    reply = rule.reply if rule else {"type": "text"}
    values: dict[str, Any] = {
        "name": rule.name if rule else "", "account_id": str(rule.account_id or "") if rule else "",
        "match_type": rule.match_type if rule else "contains", "priority": str(rule.priority) if rule else "100",
        "keywords": "\n".join(rule.keywords) if rule else "", "active": rule.active if rule else True,
        "template_id": str(reply.get("template_id", "")), **form_of_content(reply, "reply_"),
    }
    for i in range(WINDOW_ROWS):
        window = rule.windows[i] if rule and i < len(rule.windows) else {}
        values[f"win{i}_days"] = [str(d) for d in window.get("days", [])]
        values[f"win{i}_start"], values[f"win{i}_end"] = window.get("start", ""), window.get("end", "")
    return values


def _rule_values(form: FormData) -> dict[str, Any]:
    """The service's values from the editor's form."""
    account = text_of(form, "account_id")
    priority = text_of(form, "priority").strip()
    windows = []
    for i in range(WINDOW_ROWS):
        days = [int(d) for d in form.getlist(f"win{i}_days") if isinstance(d, str) and d.isdigit()]
        if days:
            windows.append({"days": days, "start": text_of(form, f"win{i}_start").strip() or "00:00",
                            "end": text_of(form, f"win{i}_end").strip() or "24:00"})
    template = text_of(form, "template_id")
    return {
        "name": text_of(form, "name"), "account_id": int(account) if account.isdigit() else None,
        "match_type": text_of(form, "match_type"), "active": text_of(form, "active") == "on",
        "keywords": [k for k in text_of(form, "keywords").splitlines() if k.strip()],
        "priority": int(priority) if priority.lstrip("-").isdigit() else priority,
        "windows": windows,
        "reply": {"template_id": int(template)} if template.isdigit() else content_from_form(form, "reply_"),
    }


def _shown(form: FormData) -> dict[str, Any]:
    names = ("name", "account_id", "match_type", "priority", "keywords", "template_id")
    values: dict[str, Any] = {name: text_of(form, name) for name in names}
    values["active"] = text_of(form, "active") == "on"
    # These two land in a script expression (Alpine's x-data): only known values go back into the page.
    values["match_type"] = values["match_type"] if values["match_type"] in MATCH_TYPES else "contains"
    values["template_id"] = values["template_id"] if values["template_id"].isdigit() else ""
    for i in range(WINDOW_ROWS):
        values[f"win{i}_days"] = [d for d in form.getlist(f"win{i}_days") if isinstance(d, str)]
        values[f"win{i}_start"], values[f"win{i}_end"] = text_of(form, f"win{i}_start"), text_of(form, f"win{i}_end")
    return {**values, **form_of_content(content_from_form(form, "reply_"), "reply_")}


@router.get("/console/keywords")
def keyword_list(console: ConsoleDep) -> Response:
    """The keyword replies in the order they are tried, their hits, and hits per day."""
    console.auth.require("messaging", "read")
    db = console.db
    hits, _ = keywords.list_hits(db, limit=20)
    rules = keywords.list_rules(db)
    return console.page(
        "messaging/keywords.html", rules=rules, hits=hits, chart=keywords.hits_by_day(db),
        total=keywords.hit_total(db), accounts={a.id: a.name for a in channels.list_accounts(db)},
        rule_names={r.id: r.name for r in rules}, match_names=MATCH_NAMES, day_names=DAY_NAMES,
        summary=summary, editable=console.can("messaging", "write"),
        template_names={t.id: t.name for t in message_templates.list_templates(db)},
    )


def _editor(console: Console, *, rule: Any, values: dict[str, Any], errors: dict[str, str] | None = None,
            status: int = 200) -> Response:
    return console.page(
        "messaging/keyword_editor.html", status=status, rule=rule, values=values, errors=errors or {},
        accounts=[a for a in channels.list_accounts(console.db) if a.kind in keywords.REPLY_MODES],
        kind_names=KIND_NAMES, type_names=TYPE_NAMES,
        match_names=MATCH_NAMES, match_types=MATCH_TYPES, day_names=DAY_NAMES, window_rows=range(WINDOW_ROWS),
        templates=[t for t in message_templates.list_templates(console.db)
                   if t.content.get("type") in keywords.REPLY_TYPES],
        editable=console.can("messaging", "write"),
    )


@router.get("/console/keywords/new")
def new_rule(console: ConsoleDep) -> Response:
    """An empty keyword rule editor."""
    console.auth.require("messaging", "write")
    return _editor(console, rule=None, values=_values_of(None))


@router.get("/console/keywords/{keyword_rule_id}")
def edit_rule(keyword_rule_id: int, console: ConsoleDep) -> Response:
    """One keyword rule in the editor."""
    console.auth.require("messaging", "read")
    rule = keywords.get_rule(console.db, keyword_rule_id)
    return _editor(console, rule=rule, values=_values_of(rule))


def _save(console: Console, form: FormData, rule: Any) -> Response:
    console.auth.require("messaging", "write")
    values = _rule_values(form)

    def write() -> object:
        if rule is None:
            return keywords.create_rule(console.db, values=values, actor=console.actor)
        return keywords.update_rule(console.db, rule, changes=values, actor=console.actor)

    return attempt(console, write,
                   lambda errors, status: _editor(console, rule=rule, values=_shown(form), errors=errors,
                                                  status=status),
                   lambda: redirect("/console/keywords", flash="keyword_rule_saved"))


@router.post("/console/keywords")
def create_rule(console: ConsoleDep, form: FormDep) -> Response:
    """Save a new keyword rule; a refused field is shown next to its input."""
    return _save(console, form, None)


@router.post("/console/keywords/{keyword_rule_id}")
def update_rule(keyword_rule_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save a keyword rule's changes."""
    return _save(console, form, keywords.get_rule(console.db, keyword_rule_id))


@router.post("/console/keywords/{keyword_rule_id}/delete")
def delete_rule(keyword_rule_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a keyword rule and its hits."""
    console.auth.require("messaging", "write")
    keywords.delete_rule(console.db, keywords.get_rule(console.db, keyword_rule_id), actor=console.actor)
    return redirect("/console/keywords", flash="keyword_rule_deleted")
