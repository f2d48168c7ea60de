"""Console: the contact base's settings — which identities name one person, how often segments refresh."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, redirect
from siyu.contacts import service
from siyu.contacts.identities import IDENTITY_TYPES
from siyu.contacts.views import can_manage, require_manager
from siyu.contacts.views_tags import EXPLAINED, explain_here
from siyu.core.errors import SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

IDENTITY_NAMES = {
    "phone": N_("Phone number"),
    "email": N_("Email address"),
    "openid": N_("WeChat Official Account openid"),
    "unionid": N_("WeChat unionid"),
    "external_userid": N_("WeCom external contact id"),
    "shop_customer_id": N_("Shop customer id"),
}
FLASHES.update({"contact_settings_saved": N_("Contact settings saved.")})
EXPLAINED.update({
    ("invalid", "segment_refresh_minutes"): N_("Enter a whole number of minutes from 1 to 1440."),
})


def _page(console: Console, *, errors: dict[str, str] | None = None, minutes: str | None = None,
          keys: list[str] | None = None, status: int = 200) -> Response:
    settings = service.get_settings(console.db)
    return console.page(
        "contacts/settings.html",
        status=status,
        identity_types=IDENTITY_TYPES,
        identity_names=IDENTITY_NAMES,
        keys=keys if keys is not None else list(settings.one_person_keys),
        minutes=minutes if minutes is not None else str(settings.segment_refresh_minutes),
        editable=can_manage(console),
        errors=errors or {},
    )


@router.get("/console/contact-settings")
def settings_page(console: ConsoleDep) -> Response:
    """Which identity types merge contacts automatically, and the dynamic segments' refresh interval."""
    console.auth.require("contacts", "read")
    return _page(console)


@router.post("/console/contact-settings")
def save_settings(console: ConsoleDep, form: FormDep) -> Response:
    """Save the settings; a refused value re-renders the form with its error and changes nothing."""
    require_manager(console)
    keys = [k for k in form.getlist("one_person_keys") if isinstance(k, str) and k in IDENTITY_TYPES]
    minutes = str(form.get("segment_refresh_minutes") or "").strip()
    try:
        with console.db.begin_nested():
            service.update_settings(
                console.db, one_person_keys=keys,
                segment_refresh_minutes=int(minutes) if minutes.isdigit() and len(minutes) <= 6 else -1,
                actor=console.actor,
            )
    except SiyuError as exc:
        errors = {exc.field or "_form": explain_here(exc, console)}
        return _page(console, errors=errors, minutes=minutes, keys=keys, status=exc.status)
    return redirect("/console/contact-settings", flash="contact_settings_saved")
