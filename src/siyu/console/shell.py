"""The console's frame: templates per locale, the signed-in person, CSRF, errors turned into pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu import __version__
from siyu.console.nav import JOB_STATUS_NAMES, N_, PRODUCT_MODULES, ROLE_NAMES
from siyu.core import security, sessions, workspaces
from siyu.core.audit import Actor
from siyu.core.auth import Auth, SessionDep, client_ip
from siyu.core.errors import Forbidden, SiyuError, Throttled
from siyu.core.i18n import LOCALE_NAMES, LOCALES, negotiate, translations
from siyu.core.models import ConsoleSession, User, Workspace
from siyu.core.tenancy import bind_workspace
from siyu.settings import get_settings

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
SESSION_COOKIE = "siyu_session"
LOGIN_CSRF_COOKIE = "siyu_csrf"
FLASH_COOKIE = "siyu_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# Alpine's standard build evaluates expressions with Function(), hence 'unsafe-eval'; nothing else is inline.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)


# Messages a redirect leaves for the next page, by key (the cookie carries only the key).
FLASHES = {
    "saved": N_("Settings saved."),
    "member_added": N_("Member added."),
    "role_changed": N_("Role changed."),
    "member_removed": N_("Member removed."),
    "key_revoked": N_("API key revoked."),
    "job_retried": N_("The job will run again."),
    "job_resolved": N_("The job is marked done."),
}


class LoginRequired(Exception):
    """No live console session: pages send the browser to the login form, writes get a 401."""


class CsrfRefused(Forbidden):
    """A form arrived without the token of the page that rendered it."""

    code = "csrf"


# The console's own templates first, then each module's `templates/` (named `<module>/page.html`).
TEMPLATE_DIRS = [HERE / "templates", *sorted(set(HERE.parent.glob("*/templates")) - {HERE / "templates"})]


@lru_cache
def environment(locale: str) -> Environment:
    """The template environment of one locale.

    One environment per locale with its gettext installed once: binding callables on a shared
    environment per request would race between requests served by different threads.
    """
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIRS),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    catalog = translations(locale)
    env.install_gettext_callables(catalog.gettext, catalog.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        locale=locale,
        LOCALES=LOCALES,
        LOCALE_NAMES=LOCALE_NAMES,
        version=__version__,
        html_lang={"zh_Hans": "zh-Hans", "es": "es"}.get(locale, "en"),
    )
    return env


def render(
    template: str,
    locale: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A rendered page with the console's security headers."""
    html = environment(locale).get_template(template).render(**context)
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@dataclass
class Console:
    """The signed-in person inside their current workspace, for one request."""

    request: Request
    db: Session
    cs: ConsoleSession
    user: User
    workspace: Workspace
    role: str
    auth: Auth
    locale: str
    spaces: list[tuple[Workspace, str]]
    flash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        """Who writes: this user, through the console, from this address."""
        return self.auth.actor

    def gettext(self, message: str) -> str:
        """Translate a message into this request's language."""
        return translations(self.locale).gettext(message)

    def can(self, module: str, access: str) -> bool:
        """True when the user's role allows `access` on `module` here."""
        return self.auth.can(module, access)

    def page(
        self, template: str, *, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        """Render a console page with the frame's context (user, workspace, switchers, CSRF token)."""
        base = {
            "me": self.user,
            "workspace": self.workspace,
            "role": self.role,
            "spaces": self.spaces,
            "csrf_token": self.cs.csrf_token,
            "can": self.can,
            "path": self.request.url.path,
            "nav_modules": PRODUCT_MODULES,
            "role_names": ROLE_NAMES,
            "job_status_names": JOB_STATUS_NAMES,
            "flash": self.gettext(FLASHES[self.flash]) if self.flash in FLASHES else None,
        }
        response = render(template, self.locale, {**base, **context}, status=status, headers=headers)
        if self.flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/console")
        return response


def pick_locale(user: User | None, workspace: Workspace | None, accept_language: str | None) -> str:
    """The user's choice, else the workspace's language, else the browser's."""
    for choice in (user.locale if user else None, workspace.locale if workspace else None):
        if choice in LOCALES:
            return choice
    return negotiate(accept_language)


def console_db(db: SessionDep) -> Session:
    """The request's unit of work (committed when the handler returns, before the answer leaves)."""
    return db


def current(request: Request, db: Session = Depends(console_db)) -> Console:
    """The console's one auth dependency: a live session cookie, bound to the current workspace."""
    found = sessions.resolve(db, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise LoginRequired()
    cs, user = found
    spaces = workspaces.user_workspaces(db, user.id)
    roles = {ws.id: (ws, role) for ws, role in spaces}
    # A member removed from the current workspace lands in another one of theirs.
    chosen = roles.get(cs.workspace_id or -1) or (spaces[0] if spaces else None)
    if chosen is None:
        request.state.locale = pick_locale(user, None, request.headers.get("accept-language"))
        raise Forbidden(
            "you are not a member of any workspace yet: ask an owner to add you", code="no_workspace"
        )
    ws, role = chosen
    bind_workspace(db, ws.id)
    locale = pick_locale(user, ws, request.headers.get("accept-language"))
    request.state.locale = locale
    auth = Auth(
        workspace_id=ws.id,
        actor=Actor(type="user", id=str(user.id), label=user.email, via="console", ip=client_ip(request)),
        role=role,
        user_id=user.id,
    )
    return Console(
        request=request,
        db=db,
        cs=cs,
        user=user,
        workspace=ws,
        role=role,
        auth=auth,
        locale=locale,
        spaces=spaces,
        flash=request.cookies.get(FLASH_COOKIE),
    )


def _csrf_from(request: Request, form: FormData) -> str:
    value = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    return value if isinstance(value, str) else ""


async def checked_form(request: Request, console: Console = Depends(current)) -> FormData:
    """The posted form, refused (403, nothing written) unless it carries this session's CSRF token."""
    form = await request.form()
    sent = _csrf_from(request, form)
    if not sent or not security.same(sent, console.cs.csrf_token):
        raise CsrfRefused(
            "this form is missing its security token or it is stale: reload the page and try again",
            field=CSRF_FIELD,
        )
    return form


def safe_next(value: str | None, default: str = "/console") -> str:
    """A local console path to go back to; anything else (other hosts, schemes) becomes the default."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def redirect(url: str, *, flash: str | None = None) -> RedirectResponse:
    """A 303 after a write (post/redirect/get), optionally carrying a flash message key."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            flash,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=get_settings().cookie_secure,
            max_age=60,
        )
    return response


def is_htmx(request: Request) -> bool:
    """True for requests sent by htmx (they get fragments and status codes, not redirects)."""
    return request.headers.get("hx-request") == "true"


def refuse_login_required(request: Request) -> Response:
    """Send a page request to the login form; a write or an htmx call gets a 401."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login_url = f"/console/login?next={quote(target, safe='')}"
    if request.method in ("GET", "HEAD") and not is_htmx(request):
        return RedirectResponse(login_url, status_code=303)
    locale = negotiate(request.headers.get("accept-language"))
    catalog = translations(locale)
    return render(
        "error.html",
        locale,
        {
            "status": 401,
            "title": catalog.gettext("Please sign in"),
            "message": catalog.gettext("Your session has ended. Sign in again to continue."),
            "login_url": login_url,
        },
        status=401,
        headers={"HX-Redirect": login_url} if is_htmx(request) else None,
    )


_ERROR_TITLES = {
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Conflict"),
    413: N_("Too large"),
    422: N_("Please check the form"),
    429: N_("Too many attempts"),
}

# What a person reads for the errors the console can meet; the English service message is the fallback.
_EXPLAINED: dict[tuple[str, str | None], str] = {
    ("csrf", CSRF_FIELD): N_(
        "This form is missing its security token or it has expired. Reload the page and try again."
    ),
    ("forbidden", None): N_("Your role in this workspace does not allow this."),
    ("forbidden", "role"): N_("Only an owner may grant or take away the owner role."),
    ("no_workspace", None): N_("You are not a member of any workspace yet. Ask an owner to add you."),
    ("not_found", None): N_("This page or item does not exist in this workspace."),
    ("not_authenticated", "password"): N_("Wrong email or password."),
    ("not_authenticated", "workspace_id"): N_("You are not a member of that workspace."),
    ("invalid", "name"): N_("Enter a name of at most 120 characters."),
    ("invalid", "timezone"): N_("Choose a timezone from the list, such as Asia/Shanghai."),
    ("invalid", "currency"): N_("Use a three-letter ISO 4217 currency code, such as CNY."),
    ("invalid", "locale"): N_("Choose one of the offered languages."),
    ("invalid", "email"): N_("Enter a valid email address."),
    ("invalid", "password"): N_("A new user needs a password of at least 10 characters."),
    ("invalid", "role"): N_("Choose one of the offered roles."),
    ("invalid", "scopes"): N_("Choose at least one permission."),
    ("invalid", "cursor"): N_("This page link is not valid any more. Start from the first page."),
    ("conflict", "email"): N_("This person is already a member of this workspace, or the email is taken."),
    ("conflict", "role"): N_("The workspace must keep at least one owner."),
    ("conflict", "user_id"): N_("The workspace must keep at least one owner."),
    ("conflict", "key_id"): N_("This API key is already revoked."),
    ("conflict", "job_id"): N_("Only parked jobs and jobs with an unknown outcome can be retried or resolved."),
    ("invalid", "note"): N_("Say what you checked before marking the job done."),
    ("invalid", "status"): N_("Choose one of the listed statuses."),
}
_UNKNOWN_ERROR = N_("Something went wrong")


def form_text(form: Mapping[str, Any], name: str) -> str:
    """A form field's text, trimmed; "" when it is missing or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def explain(exc: SiyuError, locale: str) -> str:
    """A translated, human sentence for an error the console shows."""
    catalog = translations(locale)
    if isinstance(exc, Throttled):
        minutes = exc.minutes
        return catalog.ngettext(
            "Too many failed sign-ins. Try again in %(num)d minute.",
            "Too many failed sign-ins. Try again in %(num)d minutes.",
            minutes,
        ) % {"num": minutes}
    if exc.code == "invalid" and exc.field == "name" and "120" not in exc.message:
        return catalog.gettext("Enter a name.")
    message = _EXPLAINED.get((exc.code, exc.field)) or _EXPLAINED.get((exc.code, None))
    return catalog.gettext(message) if message else exc.message


def error_page(request: Request, exc: SiyuError) -> Response:
    """A page (or, for htmx, a fragment) for an error: what went wrong and where to go."""
    locale = getattr(request.state, "locale", None) or negotiate(request.headers.get("accept-language"))
    catalog = translations(locale)
    title = catalog.gettext(_ERROR_TITLES.get(exc.status, _UNKNOWN_ERROR))
    template = "_error_fragment.html" if is_htmx(request) else "error.html"
    return render(
        template,
        locale,
        {"status": exc.status, "title": title, "message": explain(exc, locale), "code": exc.code},
        status=exc.status,
    )


class ConsoleRoute(APIRoute):
    """Console routes turn refusals into pages (the request's session has rolled back by then)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                return refuse_login_required(request)
            except SiyuError as exc:
                return error_page(request, exc)
            return response

        return run


# What every console page takes: the signed-in person's console, and a form whose CSRF token was checked.
ConsoleDep = Annotated[Console, Depends(current)]
FormDep = Annotated[FormData, Depends(checked_form)]
