"""Console pages: sign-in, dashboard, module placeholders, settings, users, API keys and the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.console import service
from siyu.console.nav import BY_KEY, JOB_STATUS_NAMES, PRODUCT_MODULES, ROLE_NAMES
from siyu.console.shell import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Console,
    ConsoleDep,
    ConsoleRoute,
    CsrfRefused,
    FormDep,
    console_db,
    explain,
    form_text,
    is_htmx,
    redirect,
    render,
    safe_next,
)
from siyu.core import jobs, security, sessions, workspaces
from siyu.core.auth import client_ip
from siyu.core.errors import NotAuthenticated, NotFound, SiyuError, Throttled
from siyu.core.i18n import LOCALES, negotiate
from siyu.core.permissions import MODULES, Role
from siyu.core.tenancy import bind_workspace
from siyu.settings import get_settings

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
T = TypeVar("T")

TIMEZONES = sorted(available_timezones())
SCOPE_MODULES = MODULES



def _attempt(db: Session, write: Callable[[], T]) -> T:
    """Run one service call in a savepoint: a refused write leaves nothing behind and the form re-renders."""
    with db.begin_nested():
        return write()


def _field_errors(exc: SiyuError, locale: str) -> dict[str, str]:
    return {exc.field or "_form": explain(exc, locale)}


# --- sign in and out ------------------------------------------------------------------------------


def _login_locale(request: Request, lang: str | None) -> str:
    return lang if lang in LOCALES else negotiate(request.headers.get("accept-language"))


def _login_page(
    request: Request,
    locale: str,
    *,
    token: str,
    status: int = 200,
    email: str = "",
    next_url: str = "/console",
    errors: dict[str, str] | None = None,
) -> Response:
    response = render(
        "login.html",
        locale,
        {
            "csrf_token": token,
            "email": email,
            "next": next_url,
            "errors": errors or {},
            "path": request.url.path,
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=get_settings().cookie_secure,
    )
    return response


@router.get("/")
def root() -> RedirectResponse:
    """The console is the home page."""
    return RedirectResponse("/console", status_code=307)


@router.get("/console/login")
def login_form(request: Request, next: str | None = None, lang: str | None = None) -> Response:
    """The sign-in form; its CSRF token is a double-submit cookie since there is no session yet."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or security.token(24)
    return _login_page(request, _login_locale(request, lang), token=token, next_url=safe_next(next))


async def _login_fields(request: Request) -> FormData:
    form = await request.form()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not security.same(sent, cookie):
        request.state.locale = _login_locale(request, None)
        raise CsrfRefused("the sign-in form is missing its security token or it is stale", field=CSRF_FIELD)
    return form


@router.post("/console/login")
def login(
    request: Request,
    form: Annotated[FormData, Depends(_login_fields)],
    db: Annotated[Session, Depends(console_db)],
    lang: str | None = None,
) -> Response:
    """Check the password, open a session and set its cookie; failures count toward a lock-out."""
    settings = get_settings()
    locale = _login_locale(request, lang)
    email, next_url = form_text(form, "email"), safe_next(form_text(form, "next"))
    password = form.get("password")
    try:
        opened = sessions.login(
            db,
            email=email,
            password=password if isinstance(password, str) else "",
            ip=client_ip(request),
            hours=settings.session_hours,
            max_failures=settings.login_max_failures,
            window=timedelta(minutes=settings.login_window_minutes),
        )
    except (NotAuthenticated, Throttled) as exc:
        # The failure counter is the lock-out's memory: keep it although the sign-in failed.
        db.commit()
        return _login_page(
            request,
            locale,
            token=security.token(24),
            status=exc.status,
            email=email,
            next_url=next_url,
            errors=_field_errors(exc, locale),
        )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        opened.token,
        max_age=settings.session_hours * 3600,
        path="/",
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/console/logout")
def logout(request: Request, console: ConsoleDep, form: FormDep) -> Response:
    """End this session and forget its cookie."""
    sessions.logout(console.db, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- frame: workspace and language ----------------------------------------------------------------


@router.post("/console/workspace")
def switch_workspace(console: ConsoleDep, form: FormDep) -> Response:
    """Make another of the user's workspaces the current one."""
    target = form_text(form, "workspace_id")
    if not target.isdigit():
        raise NotAuthenticated("you are not a member of that workspace", field="workspace_id")
    # Membership of the target workspace is another workspace's row: look it up unscoped.
    bind_workspace(console.db, None)
    sessions.switch_workspace(console.db, console.cs, int(target))
    return redirect("/console")


@router.post("/console/locale")
def switch_locale(console: ConsoleDep, form: FormDep) -> Response:
    """Remember the language the user reads the console in."""
    workspaces.set_user_locale(console.db, console.user, form_text(form, "locale") or None)
    return redirect(safe_next(form_text(form, "next")))


# --- dashboard and modules ------------------------------------------------------------------------


@router.get("/console")
def dashboard(console: ConsoleDep) -> Response:
    """The workspace at a glance: its settings, events over the last two weeks, jobs by status."""
    days = service.events_per_day(console.db, timezone=console.workspace.timezone)
    summary = service.summary(console.db, with_jobs=console.can("jobs", "read"))
    return console.page(
        "dashboard.html",
        days=days,
        total_events=sum(d.count for d in days),
        summary=summary,
        chart={"days": [d.day.isoformat() for d in days], "counts": [d.count for d in days]},
        modules=PRODUCT_MODULES,
    )


@router.get("/console/m/{module}")
def product_module(module: str, console: ConsoleDep) -> Response:
    """A product module's page: until the module ships, what it will do and the first step to take."""
    found = BY_KEY.get(module)
    if found is None:
        raise NotFound("no such module", field="module")
    console.auth.require(module, "read")
    return console.page("module.html", module=found)


# --- settings -------------------------------------------------------------------------------------


def _settings_page(
    console: Console,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    ws = console.workspace
    current_values = {"name": ws.name, "timezone": ws.timezone, "currency": ws.currency, "locale": ws.locale}
    return console.page(
        "settings.html",
        status=status,
        values=values or current_values,
        errors=errors or {},
        timezones=TIMEZONES,
        editable=console.can("workspace", "write"),
    )


@router.get("/console/settings")
def settings_form(console: ConsoleDep) -> Response:
    """The workspace's name, timezone, currency and language."""
    console.auth.require("workspace", "read")
    return _settings_page(console)


@router.post("/console/settings")
def settings_save(console: ConsoleDep, form: FormDep) -> Response:
    """Save the workspace's settings; a refused value is shown next to its field and nothing changes."""
    console.auth.require("workspace", "write")
    values = {k: form_text(form, k) for k in ("name", "timezone", "currency", "locale")}
    values["currency"] = values["currency"].upper()
    try:
        _attempt(
            console.db,
            lambda: workspaces.update_workspace(console.db, console.actor, console.workspace, values),
        )
    except SiyuError as exc:
        console.db.refresh(console.workspace)
        return _settings_page(
            console, values=values, errors=_field_errors(exc, console.locale), status=exc.status
        )
    return redirect("/console/settings", flash="saved")


# --- users and roles ------------------------------------------------------------------------------


def _users_page(
    console: Console,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    editable = console.can("members", "write")
    roles = [r.value for r in Role if r != Role.OWNER or console.role == Role.OWNER.value]
    return console.page(
        "users.html",
        status=status,
        members=workspaces.list_members(console.db),
        roles=roles,
        role_names=ROLE_NAMES,
        editable=editable,
        values=values or {"role": "operator"},
        errors=errors or {},
    )


@router.get("/console/users")
def users(console: ConsoleDep) -> Response:
    """The workspace's members and their roles."""
    console.auth.require("members", "read")
    return _users_page(console)


@router.post("/console/users")
def add_member(console: ConsoleDep, form: FormDep) -> Response:
    """Add a person (existing, or new with a name and password) with a role."""
    console.auth.require("members", "write")
    values = {k: form_text(form, k) for k in ("email", "name", "role")}
    password = form.get("password")
    try:
        _attempt(
            console.db,
            lambda: workspaces.add_member(
                console.db,
                console.actor,
                workspace_id=console.workspace.id,
                email=values["email"],
                role=values["role"],
                name=values["name"] or None,
                password=password if isinstance(password, str) and password else None,
                actor_role=console.role,
            ),
        )
    except SiyuError as exc:
        return _users_page(
            console, values=values, errors=_field_errors(exc, console.locale), status=exc.status
        )
    return redirect("/console/users", flash="member_added")


@router.post("/console/users/{user_id}/role")
def change_role(user_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Give a member another role."""
    console.auth.require("members", "write")
    member, _ = workspaces.get_member(console.db, user_id)
    workspaces.change_role(console.db, console.actor, member, form_text(form, "role"), actor_role=console.role)
    return redirect("/console/users", flash="role_changed")


@router.post("/console/users/{user_id}/remove")
def remove_member(user_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Take a member out of the workspace."""
    console.auth.require("members", "write")
    member, _ = workspaces.get_member(console.db, user_id)
    workspaces.remove_member(console.db, console.actor, member, actor_role=console.role)
    return redirect("/console/users", flash="member_removed")


# --- API keys -------------------------------------------------------------------------------------


def _keys_page(
    console: Console,
    *,
    created: workspaces.NewKey | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    # The page that shows a secret must not be kept by the browser or a proxy.
    headers = {"Cache-Control": "no-store"} if created else None
    return console.page(
        "api_keys.html",
        status=status,
        headers=headers,
        keys=workspaces.list_api_keys(console.db),
        created=created,
        scope_modules=SCOPE_MODULES,
        editable=console.can("api_keys", "write"),
        values=values or {"name": "", "scopes": []},
        errors=errors or {},
    )


@router.get("/console/api-keys")
def api_keys(console: ConsoleDep) -> Response:
    """The workspace's API keys; secrets are never shown here."""
    console.auth.require("api_keys", "read")
    return _keys_page(console)


@router.post("/console/api-keys")
def create_api_key(console: ConsoleDep, form: FormDep) -> Response:
    """Create a key and show its secret on this response only."""
    console.auth.require("api_keys", "write")
    name = form_text(form, "name")
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    try:
        created = _attempt(
            console.db, lambda: workspaces.create_api_key(console.db, console.actor, name=name, scopes=scopes)
        )
    except SiyuError as exc:
        return _keys_page(
            console,
            values={"name": name, "scopes": scopes},
            errors=_field_errors(exc, console.locale),
            status=exc.status,
        )
    return _keys_page(console, created=created)


@router.post("/console/api-keys/{key_id}/revoke")
def revoke_api_key(key_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Revoke a key: it stops working at once."""
    console.auth.require("api_keys", "write")
    key = workspaces.revoke_api_key(console.db, console.actor, workspaces.get_api_key(console.db, key_id))
    if is_htmx(console.request):
        return console.page("_api_key_row.html", key=key, editable=True)
    return redirect("/console/api-keys", flash="key_revoked")


# --- audit log ------------------------------------------------------------------------------------


@router.get("/console/audit")
def audit(console: ConsoleDep, action: str | None = None, cursor: str | None = None) -> Response:
    """Every write in the workspace, newest first, with what changed."""
    console.auth.require("audit", "read")
    entries, next_cursor = service.audit_page(console.db, cursor=cursor or None, action=action or None)
    context: dict[str, Any] = {
        "entries": entries,
        "next_cursor": next_cursor,
        "action": action or "",
        "diff": service.diff,
    }
    if is_htmx(console.request) and cursor:
        return console.page("_audit_rows.html", **context)
    return console.page("audit.html", actions=service.audit_actions(console.db), **context)


# --- background jobs ------------------------------------------------------------------------------


def _jobs_page(
    console: Console, *, status: str = "", cursor: str | None = None, errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows, next_cursor = jobs.list_jobs(console.db, status=status or None, cursor=cursor)
    return console.page(
        "jobs.html",
        status=status_code,
        jobs=rows,
        next_cursor=next_cursor,
        current_status=status,
        counts=jobs.job_counts(console.db),
        status_names=JOB_STATUS_NAMES,
        editable=console.can("jobs", "write"),
        errors=errors or {},
    )


@router.get("/console/jobs")
def background_jobs(console: ConsoleDep, status: str | None = None, cursor: str | None = None) -> Response:
    """The workspace's background jobs; parked and unknown ones wait for a person's decision."""
    console.auth.require("jobs", "read")
    return _jobs_page(console, status=status or "", cursor=cursor or None)


@router.post("/console/jobs/{job_id}/retry")
def retry_job(job_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Run a parked job again, or an unknown one whose effect a person found did not happen."""
    console.auth.require("jobs", "write")
    jobs.retry_job(console.db, console.actor, jobs.get_job_by_id(console.db, job_id))
    return redirect("/console/jobs", flash="job_retried")


@router.post("/console/jobs/{job_id}/resolve")
def resolve_job(job_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Mark an unknown job done: a person checked that its effect happened."""
    console.auth.require("jobs", "write")
    job = jobs.get_job_by_id(console.db, job_id)
    note = form_text(form, "note")
    try:
        _attempt(console.db, lambda: jobs.resolve_job(console.db, console.actor, job, note=note))
    except SiyuError as exc:
        errors = {f"note-{job_id}": explain(exc, console.locale)}
        return _jobs_page(console, status=jobs.UNKNOWN, errors=errors, status_code=exc.status)
    return redirect("/console/jobs", flash="job_resolved")
