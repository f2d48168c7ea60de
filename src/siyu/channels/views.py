"""Console: channel accounts — connect, edit, pause, delete, test the connection, see sync health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from siyu.channels import accounts, chat_archive
from siyu.channels import service as channels
from siyu.channels.base import Adapter
from siyu.channels.models import ChannelAccount
from siyu.console.nav import N_
from siyu.console.shell import (
    FLASHES,
    Console,
    ConsoleDep,
    ConsoleRoute,
    FormDep,
    explain,
    form_text,
    is_htmx,
    redirect,
)
from siyu.core.errors import SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FLASHES.update({
    "account_created": N_("Account connected. Paste its callback URL into the platform's admin if it has one."),
    "account_saved": N_("Account saved."),
    "account_paused": N_("Account paused: nothing is sent through it until you resume it."),
    "account_resumed": N_("Account resumed."),
    "account_deleted": N_("Account deleted. Its messages stay in the archive."),
    "pull_queued": N_("A pull of the chat archive is queued; it runs within a minute."),
})
HEALTH_NAMES = {"ok": N_("working"), "error": N_("failing"), "unknown": N_("not checked yet")}
STATUS_NAMES = {"active": N_("active"), "paused": N_("paused")}
EXPLAINED = {
    ("invalid", "kind"): N_("Choose a kind of channel."),
    ("invalid", "name"): N_("Enter a name of 1 to 120 characters."),
    ("conflict", "name"): N_("Another account has this name."),
    ("invalid", "config.url"): N_("Enter an http:// or https:// URL."),
    ("invalid", "secrets.secret"): N_("Enter this secret (the webhook's signing secret needs 16 characters or more)."),
    ("invalid", "config.corp_id"): N_("Enter the CorpID."),
    ("invalid", "config.publickey_ver"): N_("The public key version is a number."),
    ("invalid", "secrets.private_key"): N_("Paste an unencrypted RSA private key in PEM."),
}



def _explain(console: Console, exc: SiyuError) -> str:
    message = EXPLAINED.get((exc.code, exc.field or ""))
    if message:
        return console.gettext(message)
    if exc.field and exc.field.startswith(("config.", "secrets.")):
        return console.gettext("Check this setting: %(reason)s") % {"reason": exc.message}
    return explain(exc, console.locale)


def _settings(adapter: Adapter, form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's config and secrets, split by the adapter's fields (empty optional settings left out)."""
    config: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for f in adapter.fields:
        value = form_text(form, f"{'secrets' if f.secret else 'config'}.{f.name}")
        if f.secret:
            secrets[f.name] = value
        elif value or f.required:
            config[f.name] = value
    return config, secrets


def _view(console: Console, account: ChannelAccount) -> dict[str, Any]:
    return {"account": account, "adapter": accounts.adapter_of(account.kind), "health": accounts.health(account),
            "secret_state": accounts.secret_state(account)}


def _list(console: Console) -> Response:
    rows = channels.list_accounts(console.db)
    return console.page("channels/accounts.html", rows=[_view(console, a) for a in rows], kinds=accounts.kinds(),
                        health_names=HEALTH_NAMES, status_names=STATUS_NAMES, editable=console.can("channels", "write"))


def _form(console: Console, adapter: Adapter, *, errors: dict[str, str] | None = None,
          values: dict[str, str] | None = None, status: int = 200) -> Response:
    if values is None:
        values = {f"config.{f.name}": f.default for f in adapter.fields if not f.secret}
        values |= {f"secrets.{f.name}": accounts.suggestion(f.name) for f in adapter.fields if f.secret}
    return console.page("channels/account_new.html", adapter=adapter, errors=errors or {}, values=values,
                        suggested=set(accounts.SUGGESTED), status=status)


def _detail(console: Console, account: ChannelAccount, *, errors: dict[str, str] | None = None,
            values: dict[str, str] | None = None, check: accounts.ConnectionCheck | None = None,
            status: int = 200) -> Response:
    view = _view(console, account)
    return console.page(
        "channels/account.html", **view, errors=errors or {}, check=check, status=status,
        values=values or {"name": account.name, **{f"config.{k}": str(v) for k, v in account.config.items()}},
        callback_url=accounts.callback_url(str(console.request.base_url), account, console.request.app.routes),
        shared_labels=[console.gettext(f.label) for f in view["adapter"].fields if f.name in accounts.SUGGESTED],
        archive=chat_archive.position(console.db, account), archive_kind=chat_archive.KIND,
        health_names=HEALTH_NAMES, status_names=STATUS_NAMES, editable=console.can("channels", "write"),
    )


@router.get("/console/channels")
def accounts_page(console: ConsoleDep) -> Response:
    """Every account with its kind, status and sync health, and the kinds one may connect."""
    console.auth.require("channels", "read")
    return _list(console)


@router.get("/console/channels/new")
def new_account(console: ConsoleDep, kind: str = "") -> Response:
    """The form of one kind's settings."""
    console.auth.require("channels", "write")
    return _form(console, accounts.adapter_of(kind))


@router.post("/console/channels")
def create_account(console: ConsoleDep, form: FormDep) -> Response:
    """Connect an account; a refused setting re-renders the form with the reason on the field."""
    console.auth.require("channels", "write")
    adapter = accounts.adapter_of(form_text(form, "kind"))
    config, secrets = _settings(adapter, form)
    name = form_text(form, "name")
    try:
        with console.db.begin_nested():
            account = accounts.create(console.db, kind=adapter.kind, name=name, config=config, secrets=secrets,
                                      actor=console.actor)
    except SiyuError as exc:
        # Nothing was saved yet: what the person typed comes back, secrets included (a Token they may
        # already have pasted into the platform's admin must not be lost).
        values = {"name": name, **{f"config.{k}": str(v) for k, v in config.items()},
                  **{f"secrets.{k}": v for k, v in secrets.items()}}
        return _form(console, adapter, errors={exc.field or "_form": _explain(console, exc)}, values=values,
                     status=exc.status)
    return redirect(f"/console/channels/{account.id}", flash="account_created")


@router.get("/console/channels/{account_id}")
def account_page(account_id: int, console: ConsoleDep) -> Response:
    """One account: its callback URL, health, the connection test and (for managers) its settings."""
    console.auth.require("channels", "read")
    return _detail(console, channels.get_account(console.db, account_id))


@router.post("/console/channels/{account_id}")
def update_account(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save an account's name and settings; an empty secret keeps the saved one."""
    console.auth.require("channels", "write")
    account = channels.get_account(console.db, account_id)
    adapter = accounts.adapter_of(account.kind)
    config, secrets = _settings(adapter, form)
    # Optional settings left empty are removed.
    config |= {f.name: None for f in adapter.fields if not f.secret and f.name not in config}
    name = form_text(form, "name")
    try:
        with console.db.begin_nested():
            accounts.update(console.db, account, name=name, config=config, secrets=secrets, actor=console.actor)
    except SiyuError as exc:
        console.db.refresh(account)
        values = {"name": name, **{f"config.{k}": str(v) for k, v in config.items() if v is not None}}
        return _detail(console, account, errors={exc.field or "_form": _explain(console, exc)}, values=values,
                       status=exc.status)
    return redirect(f"/console/channels/{account.id}", flash="account_saved")


@router.post("/console/channels/{account_id}/status")
def toggle_status(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Pause an active account or resume a paused one."""
    console.auth.require("channels", "write")
    account = channels.get_account(console.db, account_id)
    status = "paused" if account.status == "active" else "active"
    accounts.update(console.db, account, status=status, actor=console.actor)
    return redirect(f"/console/channels/{account.id}",
                    flash="account_paused" if status == "paused" else "account_resumed")


@router.post("/console/channels/{account_id}/delete")
def delete_account(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete an account (the page asked for confirmation)."""
    console.auth.require("channels", "write")
    accounts.delete(console.db, channels.get_account(console.db, account_id), actor=console.actor)
    return redirect("/console/channels", flash="account_deleted")


@router.post("/console/channels/{account_id}/test")
def test_account(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Test the connection now: the platform's answer and the updated health (a fragment for htmx)."""
    console.auth.require("channels", "write")
    account = channels.get_account(console.db, account_id)
    check = accounts.check_connection(console.db, account)
    if is_htmx(console.request):
        return console.page("channels/_health.html", **_view(console, account), check=check,
                            health_names=HEALTH_NAMES, editable=True)
    return _detail(console, account, check=check)


@router.post("/console/channels/{account_id}/pull")
def pull_archive(account_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Queue a chat-archive pull now instead of at the next period."""
    console.auth.require("channels", "write")
    account = channels.get_account(console.db, account_id)
    chat_archive.schedule(console.db, account, now=True)
    return redirect(f"/console/channels/{account.id}", flash="pull_queued")
