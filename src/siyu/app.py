"""The FastAPI application: mounts every module's API and console routers, one error shape for all."""

from __future__ import annotations

import gc
import importlib
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siyu import __version__
from siyu.core.errors import SiyuError
from siyu.core.schemas import NUL_REFUSED
from siyu.settings import get_settings

# (module, attribute) of every REST router, mounted under /api/v1; later modules add theirs here.
API_ROUTERS: tuple[tuple[str, str], ...] = (
    ("siyu.core.api", "router"),
    ("siyu.core.api_events", "router"),
    ("siyu.core.api_jobs", "router"),
    ("siyu.contacts.api", "router"),
    ("siyu.contacts.api_segments", "router"),
    ("siyu.contacts.api_tags", "router"),
    ("siyu.contacts.api_staff", "router"),
    ("siyu.contacts.api_imports", "router"),
    ("siyu.messaging.broadcast_api", "router"),
    ("siyu.channels.wechat_oa.api", "router"),
    ("siyu.channels.api", "router"),
    ("siyu.messaging.api", "router"),
    ("siyu.messaging.api_keywords", "router"),
    ("siyu.channels.api_webhooks", "router"),
    ("siyu.conversations.api", "router"),
    ("siyu.channels.wecom.api", "router"),
    ("siyu.acquisition.api", "router"),
    ("siyu.acquisition.api_groups", "router"),
    ("siyu.acquisition.api_posters", "router"),
    ("siyu.acquisition.api_spend", "router"),
)
# Console sub-apps and other routers mounted at the root (console pages, channel callbacks).
ROOT_ROUTERS: tuple[tuple[str, str], ...] = (
    ("siyu.console.views", "router"),
    ("siyu.contacts.views", "router"),
    ("siyu.contacts.views_segments", "router"),
    ("siyu.contacts.views_tags", "router"),
    ("siyu.contacts.views_staff", "router"),
    ("siyu.contacts.views_lifecycle", "router"),
    ("siyu.contacts.views_imports", "router"),
    ("siyu.contacts.views_settings", "router"),
    ("siyu.messaging.broadcast_views", "router"),
    ("siyu.messaging.links", "router"),
    ("siyu.channels.wechat_oa.hooks", "router"),
    ("siyu.channels.views", "router"),
    ("siyu.channels.views_menu", "router"),
    ("siyu.messaging.views", "router"),
    ("siyu.messaging.views_keywords", "router"),
    ("siyu.channels.sms.hooks", "router"),
    ("siyu.channels.email_routes", "router"),
    ("siyu.conversations.views", "router"),
    ("siyu.channels.wecom.callbacks", "router"),
    ("siyu.acquisition.links", "router"),
    ("siyu.acquisition.views_groups", "router"),
    ("siyu.acquisition.views_posters", "router"),
    ("siyu.acquisition.views_spend", "router"),
    ("siyu.acquisition.views", "router"),
)
# Routes that take whole files: (method, path prefix, the setting that caps their bodies instead of
# max_body_bytes).
LARGE_BODIES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/api/v1/contacts/imports", "import_max_bytes"),
    ("POST", "/console/imports", "import_max_bytes"),
    ("POST", "/api/v1/poster-templates", "poster_body_max_bytes"),
    ("PUT", "/api/v1/poster-templates", "poster_body_max_bytes"),
    ("POST", "/console/poster-templates", "poster_body_max_bytes"),
)


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status)


def _field_of(loc: Any) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


class BodyLimit:
    """Refuses bodies over the configured size before a handler reads them, declared length or not.

    `larger` lifts the limit for some routes: (method, path prefix, their own limit).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, larger: tuple[tuple[str, str, int], ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger

    def _limit(self, scope: Scope) -> int:
        path, method = scope.get("path", ""), scope.get("method", "")
        for route_method, prefix, limit in self.larger:
            if method == route_method and (path == prefix or path.startswith(prefix + "/")):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(scope, receive, send, max_bytes)
            return
        seen = 0
        exceeded = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    exceeded = True
                    # Whatever the framework makes of a cut-off body, the answer below replaces it.
                    return {"type": "http.disconnect"}
            return message

        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if exceeded:
                if not replaced:
                    replaced = True
                    await self._refuse(scope, receive, send, max_bytes)
                return
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not replaced:
            await self._refuse(scope, receive, send, max_bytes)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        response = _error(413, "too_large", f"request body is larger than {max_bytes} bytes", "body")
        await response(scope, receive, send)


class RefuseNulQuery:
    """Refuses a query string carrying a NUL character (`%00`): no database text column can hold one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if b"%00" in raw:
            for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    response = _error(422, "invalid", NUL_REFUSED, key.strip("\x00") or None)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(*, start_worker: bool = False) -> FastAPI:
    """Build the application; `start_worker` runs one in-process worker next to the server."""
    settings = get_settings()
    app = FastAPI(
        title="siyu",
        version=__version__,
        description="Private-domain marketing: contacts, channels, campaigns and measurement.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    @app.exception_handler(SiyuError)
    async def _siyu_error(_request: Request, exc: SiyuError) -> Response:
        return JSONResponse({"error": exc.as_dict()}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
        if first.get("type") == "json_invalid":
            return _error(400, "malformed_json", "the body is not valid JSON", "body")
        if first.get("type") == "extra_forbidden":
            return _error(422, "unknown_field", f"unknown field {_field_of(first['loc'])!r}", _field_of(first["loc"]))
        return _error(422, "invalid", str(first.get("msg", "invalid")), _field_of(first.get("loc", ())))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated", 403: "forbidden"}
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    for module, attr in API_ROUTERS:
        app.include_router(getattr(importlib.import_module(module), attr), prefix="/api/v1")
    for module, attr in ROOT_ROUTERS:
        app.include_router(getattr(importlib.import_module(module), attr))

    from siyu.console.shell import STATIC_DIR

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    if start_worker:
        from siyu.core.worker import attach_in_process_worker

        attach_in_process_worker(app)

    larger = tuple((method, prefix, int(getattr(settings, name))) for method, prefix, name in LARGE_BODIES)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, larger=larger)
    app.add_middleware(RefuseNulQuery)
    if settings.gc_freeze:
        # Everything imported and built so far lives as long as the process: a 1,000-event batch
        # allocates enough containers to trigger full collections, which would otherwise walk it all.
        gc.collect()
        gc.freeze()
    return app
