"""Console: message templates (list, editor with a live preview for a chosen contact) and welcome messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from siyu.channels import service as channels
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, explain, redirect
from siyu.contacts import service as contacts
from siyu.core.errors import SiyuError
from siyu.messaging import message_templates, welcome
from siyu.messaging.content import FILLS, TYPES, check_content, fields_of, summary
from siyu.messaging.message_templates import CHANNEL_KINDS
from siyu.messaging.templates import FIELDS

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

TYPE_NAMES = {
    "text": N_("Text"), "link": N_("Link card"), "image": N_("Image"), "miniprogram": N_("Mini-program card"),
    "email": N_("Email"), "sms": N_("SMS template"), "template": N_("OA template message"),
}
KIND_NAMES = {
    "wechat_oa": N_("WeChat Official Account"), "wecom": N_("WeCom"), "wecom_kf": N_("WeChat Customer Service"),
    "sms": N_("SMS"), "email": N_("Email"), "webhook": N_("Webhook"),
}
CONTENT_FIELDS = ("text", "title", "description", "url", "pic_url", "media_id", "appid", "pagepath",
                  "thumb_media_id", "subject", "template_code", "template_id")
FLASHES.update({
    "template_saved": N_("Template saved."),
    "template_deleted": N_("Template deleted."),
    "welcome_saved": N_("Welcome message saved."),
})
EXPLAINED: dict[tuple[str, str], str] = {
    ("invalid", "name"): N_("Enter a name of at most 120 characters."),
    ("conflict", "name"): N_("This name is taken already."),
    ("invalid", "channels"): N_("Choose among the offered channels."),
    ("invalid", "content.text"): N_("Write the message's text (at most 2,000 characters)."),
    ("invalid", "content.url"): N_("Enter a link starting with http:// or https://."),
    ("invalid", "content.pic_url"): N_("Enter a link starting with http:// or https://."),
    ("invalid", "content.media_id"): N_("An image needs a media id or a link."),
    ("invalid", "content.type"): N_("Choose one of the offered kinds of message."),
    ("no_welcome", "account_id"): N_("Welcome messages are sent on Official Accounts and WeCom only."),
}
UNKNOWN_FIELD = N_("This names something contacts don't have. Use one of: %(fields)s, or attributes.<key>.")


def text_of(form: FormData, name: str) -> str:
    """A form field as text (missing: empty)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def content_from_form(form: FormData, prefix: str = "") -> dict[str, Any]:
    """The content an editor's fields describe: its type and the non-empty fields (SMS params as name=value lines)."""
    content: dict[str, Any] = {"type": text_of(form, prefix + "type") or "text"}
    # The editor keeps every kind's inputs (hidden ones too): only the chosen kind's count.
    for name in fields_of(content["type"]):
        value = text_of(form, prefix + name)
        if value.strip():
            content[name] = value if name == "text" else value.strip()
    fills = FILLS.get(content["type"])
    if fills is not None:  # SMS params, template data: name=value lines
        pairs = {}
        for line in text_of(form, prefix + fills).splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                pairs[key.strip()] = value.strip()
        content[fills] = pairs
    return content


def form_of_content(content: dict[str, Any] | None, prefix: str = "") -> dict[str, str]:
    """A content as the editor's field values."""
    content = content or {}
    out = {prefix + name: str(content.get(name, "")) for name in CONTENT_FIELDS}
    # Only a known type goes back into the page: it lands in a script expression (Alpine's x-data).
    out[prefix + "type"] = content["type"] if content.get("type") in TYPES else "text"
    for fills in FILLS.values():
        out[prefix + fills] = "\n".join(f"{k}={v}" for k, v in (content.get(fills) or {}).items())
    return out


def error_key(field: str | None) -> str:
    """Where an error shows in an editor: a card's fields as card.*, a list's items on the list."""
    field = field or "_form"
    field = re.sub(r"^content\.attachments\[\d+\]\.", "card.", field)
    field = re.sub(r"^(windows\[\d+\])\..*$", r"\1", field)
    return re.sub(r"^(keywords)\[\d+\]$", r"\1", field)


def explain_here(exc: SiyuError, console: Console) -> str:
    """A translated sentence for a refusal of the messaging pages."""
    if exc.code == "unknown_field" and (exc.field or "").startswith(("content", "reply")):
        return console.gettext(UNKNOWN_FIELD) % {"fields": ", ".join(f for f in FIELDS if f != "attributes")}
    plain = re.sub(r"\[\d+\]", "", error_key(exc.field))
    as_content = re.sub(r"^(reply|card)\.", "content.", plain)
    message = EXPLAINED.get((exc.code, plain)) or EXPLAINED.get((exc.code, as_content))
    return console.gettext(message) if message else explain(exc, console.locale)


def attempt(console: Console, write: Callable[[], object], refused: Callable[[dict[str, str], int], Response],
            done: Callable[[], Response]) -> Response:
    """One service call in a savepoint: refused, nothing stays written and the editor shows the field's error."""
    try:
        with console.db.begin_nested():
            write()
    except SiyuError as exc:
        return refused({error_key(exc.field): explain_here(exc, console)}, exc.status)
    return done()


def preview_contacts(console: Console) -> list[Any]:
    """The contacts an editor offers to preview for: the newest the user may see."""
    rows, _ = contacts.list_contacts(console.db, viewer=console.auth, limit=50)
    return list(rows)


def render_preview(console: Console, content: dict[str, Any], contact_id: str) -> Response:
    """The preview fragment: the content as the chosen contact reads it, or why it can't be rendered."""
    try:
        if not contact_id.isdigit():  # nobody chosen yet: still say what is wrong with what is written
            if any(v for k, v in content.items() if k != "type"):
                check_content(content, attachments=True)
            return console.page("messaging/_preview.html", preview=None, error=None, type_names=TYPE_NAMES)
        shown = message_templates.preview(console.db, content, contact_id=contact_id, viewer=console.auth)
    except SiyuError as exc:
        return console.page("messaging/_preview.html", preview=None, error=explain_here(exc, console),
                            type_names=TYPE_NAMES)
    return console.page("messaging/_preview.html", preview=shown, error=None, type_names=TYPE_NAMES)


# --- templates --------------------------------------------------------------------------------------


@router.get("/console/templates")
def template_list(console: ConsoleDep) -> Response:
    """The workspace's message templates."""
    console.auth.require("messaging", "read")
    return console.page("messaging/templates.html", templates=message_templates.list_templates(console.db),
                        summary=summary, type_names=TYPE_NAMES, kind_names=KIND_NAMES,
                        editable=console.can("messaging", "write"))


def _editor(console: Console, *, template: Any, values: dict[str, Any], errors: dict[str, str] | None = None,
            status: int = 200) -> Response:
    return console.page("messaging/template_editor.html", status=status, saved=template, values=values,
                        errors=errors or {}, type_names=TYPE_NAMES, kind_names=KIND_NAMES, kinds=CHANNEL_KINDS,
                        contacts=preview_contacts(console), fields=FIELDS,
                        editable=console.can("messaging", "write"))


@router.get("/console/templates/new")
def new_template(console: ConsoleDep) -> Response:
    """An empty template editor."""
    console.auth.require("messaging", "write")
    return _editor(console, template=None, values={"name": "", "channels": [], **form_of_content(None)})


@router.get("/console/templates/{template_id}")
def edit_template(template_id: int, console: ConsoleDep) -> Response:
    """One template in the editor."""
    console.auth.require("messaging", "read")
    template = message_templates.get_template(console.db, template_id)
    values = {"name": template.name, "channels": template.channels, **form_of_content(template.content)}
    return _editor(console, template=template, values=values)


def _template_values(form: FormData) -> dict[str, Any]:
    return {"name": text_of(form, "name"), "channels": [c for c in form.getlist("channels") if isinstance(c, str)],
            "content": content_from_form(form)}


def _save_template(console: Console, form: FormData, template: Any) -> Response:
    console.auth.require("messaging", "write")
    values = _template_values(form)
    shown = {"name": values["name"], "channels": values["channels"], **form_of_content(values["content"])}

    def write() -> object:
        if template is None:
            return message_templates.create_template(console.db, values=values, actor=console.actor)
        return message_templates.update_template(console.db, template, changes=values, actor=console.actor)

    return attempt(console, write,
                   lambda errors, status: _editor(console, template=template, values=shown, errors=errors,
                                                  status=status),
                   lambda: redirect("/console/templates", flash="template_saved"))


@router.post("/console/templates")
def create_template(console: ConsoleDep, form: FormDep) -> Response:
    """Save a new template; a refused field is shown next to its input."""
    return _save_template(console, form, None)


@router.post("/console/templates/preview")
def preview_template(console: ConsoleDep, form: FormDep) -> Response:
    """The editor's live preview for the chosen contact."""
    console.auth.require("messaging", "read")
    return render_preview(console, content_from_form(form), text_of(form, "preview_contact_id"))


@router.post("/console/templates/{template_id}")
def update_template(template_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save a template's changes."""
    return _save_template(console, form, message_templates.get_template(console.db, template_id))


@router.post("/console/templates/{template_id}/delete")
def delete_template(template_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a template."""
    console.auth.require("messaging", "write")
    message_templates.delete_template(console.db, message_templates.get_template(console.db, template_id),
                                      actor=console.actor)
    return redirect("/console/templates", flash="template_deleted")


# --- welcome ----------------------------------------------------------------------------------------


@router.get("/console/welcome")
def welcome_list(console: ConsoleDep) -> Response:
    """Every account with its welcome message, on or off."""
    console.auth.require("messaging", "read")
    accounts = [a for a in channels.list_accounts(console.db) if a.kind in welcome.WELCOME_KINDS]
    return console.page("messaging/welcome.html", accounts=accounts, kind_names=KIND_NAMES,
                        welcomes={a.id: welcome.get_welcome(console.db, a) for a in accounts})


def _welcome_values(content: dict[str, Any] | None, enabled: bool) -> dict[str, Any]:
    content = content or {}
    cards = content.get("attachments") or [{}]
    values = {"text": content.get("text", ""), "enabled": enabled, **form_of_content(cards[0], "card_")}
    if not cards[0]:
        values["card_type"] = ""
    return values


def _welcome_editor(console: Console, account: Any, values: dict[str, Any], errors: dict[str, str] | None = None,
                    status: int = 200) -> Response:
    return console.page("messaging/welcome_editor.html", status=status, account=account, values=values,
                        errors=errors or {}, kind_names=KIND_NAMES, type_names=TYPE_NAMES,
                        contacts=preview_contacts(console), fields=FIELDS,
                        editable=console.can("messaging", "write"))


@router.get("/console/welcome/{account_id}")
def edit_welcome(account_id: int, console: ConsoleDep) -> Response:
    """One account's welcome in the editor."""
    console.auth.require("messaging", "read")
    account = channels.get_account(console.db, account_id)
    row = welcome.get_welcome(console.db, account)
    return _welcome_editor(console, account, _welcome_values(row.content if row else None,
                                                             row.enabled if row else True))


def _welcome_content(form: FormData) -> dict[str, Any]:
    content: dict[str, Any] = {"type": "text", "text": text_of(form, "text")}
    if text_of(form, "card_type"):
        content["attachments"] = [content_from_form(form, "card_")]
    return content


@router.post("/console/welcome/preview")
def preview_welcome(console: ConsoleDep, form: FormDep) -> Response:
    """The welcome editor's live preview for the chosen contact."""
    console.auth.require("messaging", "read")
    return render_preview(console, _welcome_content(form), text_of(form, "preview_contact_id"))


@router.post("/console/welcome/{account_id}")
def save_welcome(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save an account's welcome; an empty text is refused next to its input."""
    console.auth.require("messaging", "write")
    account = channels.get_account(console.db, account_id)
    content, enabled = _welcome_content(form), text_of(form, "enabled") == "on"
    return attempt(
        console,
        lambda: welcome.save_welcome(console.db, account, content=content, enabled=enabled, actor=console.actor),
        lambda errors, status: _welcome_editor(console, account, _welcome_values(content, enabled), errors=errors,
                                               status=status),
        lambda: redirect("/console/welcome", flash="welcome_saved"),
    )
