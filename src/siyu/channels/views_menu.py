"""Console: an Official Account's custom menu — read from WeChat, edited as a grid of up to 3 buttons with
up to 5 sub-buttons each, checked against the platform's rules (`wechat_oa.menus`) and published."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from siyu.channels import service as channels
from siyu.channels.models import ChannelAccount
from siyu.channels.wechat_oa import service as oa
from siyu.channels.wechat_oa.menus import MAX_SUB, MAX_TOP, NEEDS
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, explain, form_text, redirect
from siyu.core.errors import Invalid, NotFound, SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FLASHES.update({
    "menu_published": N_("Menu published. WeChat shows it to followers within a few minutes."),
    "menu_deleted": N_("Menu removed from the Official Account."),
})
# The types the editor offers first; any other type WeChat has (scan, photo, location...) is kept too.
TYPE_NAMES = {
    "click": N_("Send a keyword (click)"), "view": N_("Open a web page"), "miniprogram": N_("Open a mini program"),
    "scancode_push": N_("Scan a code"), "scancode_waitmsg": N_("Scan a code and wait"),
    "pic_sysphoto": N_("Take a photo"), "pic_photo_or_album": N_("Photo or album"),
    "pic_weixin": N_("WeChat album"), "location_select": N_("Send a location"),
    "media_id": N_("Send a saved media"), "article_id": N_("Open a published article"),
    "article_view_limited": N_("Open a published article (limited)"),
}
# The one setting each type's "value" column holds (a mini program also has its appid and page).
VALUE_OF = {kind: needs[0] for kind, needs in NEEDS.items()}
EXPLAINED = {
    "name": N_("A top button's name is 1 to 16 bytes (4 Chinese characters), a sub-button's 1 to 60."),
    "value": N_("Fill this in: a keyword for a click, an http(s) URL for a web page or a mini program's "
                "fallback page."),
    "appid": N_("The mini program's AppID."),
    "pagepath": N_("The mini program page to open, e.g. pages/index/index."),
    "type": N_("Choose what the button does."),
}
_FIELD = re.compile(r"^button(?:\.(\d+))?(?:\.sub_button(?:\.(\d+))?)?(?:\.(\w+))?$")


def _row(button: Mapping[str, Any], prefix: str) -> dict[str, str]:
    kind = str(button.get("type") or "")
    row = {f"{prefix}.name": str(button.get("name") or ""), f"{prefix}.type": kind}
    if kind in VALUE_OF:
        row[f"{prefix}.value"] = str(button.get(VALUE_OF[kind]) or "")
    if kind == "miniprogram":
        row[f"{prefix}.appid"] = str(button.get("appid") or "")
        row[f"{prefix}.pagepath"] = str(button.get("pagepath") or "")
    return row


def values_of(menu: Mapping[str, Any]) -> dict[str, str]:
    """A menu (`{"button": [...]}`) as the editor's fields: `b0.name`, `b0.s1.value`..."""
    values: dict[str, str] = {}
    for i, button in enumerate(list(menu.get("button") or [])[:MAX_TOP]):
        values |= _row(button, f"b{i}")
        for j, sub in enumerate(list(button.get("sub_button") or [])[:MAX_SUB]):
            values |= _row(sub, f"b{i}.s{j}")
    return values



def _action(form: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    kind = form_text(form, f"{prefix}.type")
    out: dict[str, Any] = {"name": form_text(form, f"{prefix}.name"), "type": kind}
    if kind in VALUE_OF:
        out[VALUE_OF[kind]] = form_text(form, f"{prefix}.value")
    if kind == "miniprogram":
        out["appid"], out["pagepath"] = form_text(form, f"{prefix}.appid"), form_text(form, f"{prefix}.pagepath")
    return out


def menu_of(form: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
    """The form as a menu, rows without a name left out, and where each kept button came from (its form
    prefix and its sub-buttons' prefixes), so the platform rules' field names map back to the form."""
    buttons: list[dict[str, Any]] = []
    origins: list[tuple[str, list[str]]] = []
    for i in range(MAX_TOP):
        top = f"b{i}"
        subs = [f"{top}.s{j}" for j in range(MAX_SUB) if form_text(form, f"{top}.s{j}.name")]
        if not form_text(form, f"{top}.name") and not subs:
            continue
        if subs:
            buttons.append({"name": form_text(form, f"{top}.name"), "sub_button": [_action(form, s) for s in subs]})
        else:
            buttons.append(_action(form, top))
        origins.append((top, subs))
    return {"button": buttons}, origins


def form_field(field: str | None, origins: list[tuple[str, list[str]]]) -> str:
    """The editor's field for a field the menu rules named (`button.1.sub_button.0.url` -> `b2.s0.value`
    when the form's first row was empty); `_form` for the menu as a whole."""
    match = _FIELD.match(field or "")
    if not match or match.group(1) is None or int(match.group(1)) >= len(origins):
        return "_form"
    top, subs = origins[int(match.group(1))]
    prefix = top
    if match.group(2) is not None and int(match.group(2)) < len(subs):
        prefix = subs[int(match.group(2))]
    name = match.group(3) or "name"
    if name in ("key", "url", "media_id", "article_id"):
        name = "value"
    return f"{prefix}.{name}"


def _oa_account(console: Console, account_id: int) -> ChannelAccount:
    account = channels.get_account(console.db, account_id)
    if account.kind != "wechat_oa":
        raise NotFound("an Official Account has a custom menu; this account is another kind")
    return account


def _page(console: Console, account: ChannelAccount, values: dict[str, str], *, errors: dict[str, str] | None = None,
          read_error: str | None = None, status: int = 200) -> Response:
    return console.page("channels/menu.html", account=account, values=values, errors=errors or {},
                        read_error=read_error, type_names=TYPE_NAMES, tops=range(MAX_TOP), subs=range(MAX_SUB),
                        editable=console.can("channels", "write"), status=status)


@router.get("/console/channels/{account_id}/menu")
def menu_page(account_id: int, console: ConsoleDep) -> Response:
    """The menu WeChat has now, in the editor."""
    console.auth.require("channels", "read")
    account = _oa_account(console, account_id)
    try:
        current = oa.get_menu(console.db, account)
    except SiyuError as exc:
        # The health card says so too; the editor still opens, empty.
        return _page(console, account, {}, read_error=exc.message)
    return _page(console, account, values_of(current))


@router.post("/console/channels/{account_id}/menu")
def publish_menu(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Check the edited menu against the platform's rules and publish it; a refused field is shown on it."""
    console.auth.require("channels", "write")
    account = _oa_account(console, account_id)
    menu, origins = menu_of(form)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    try:
        if not menu["button"]:
            raise Invalid("a menu has 1 to 3 buttons", field="button")
        with console.db.begin_nested():
            oa.set_menu(console.db, account, menu, actor=console.actor)
    except Invalid as exc:
        where = form_field(exc.field, origins)
        column = where.rsplit(".", 1)[-1]
        message = console.gettext(EXPLAINED[column]) if column in EXPLAINED else explain(exc, console.locale)
        if where == "_form" and exc.field == "button":
            message = console.gettext("Give the menu one to three buttons.")
        return _page(console, account, values, errors={where: message}, status=exc.status)
    except SiyuError as exc:
        return _page(console, account, values, errors={"_form": explain(exc, console.locale)}, status=exc.status)
    return redirect(f"/console/channels/{account.id}/menu", flash="menu_published")


@router.post("/console/channels/{account_id}/menu/delete")
def remove_menu(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Remove the menu from the Official Account (the page asked first)."""
    console.auth.require("channels", "write")
    account = _oa_account(console, account_id)
    try:
        oa.delete_menu(console.db, account, actor=console.actor)
    except SiyuError as exc:
        return _page(console, account, {}, errors={"_form": explain(exc, console.locale)}, status=exc.status)
    return redirect(f"/console/channels/{account.id}/menu", flash="menu_deleted")
