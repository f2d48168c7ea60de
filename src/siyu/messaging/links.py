"""Tracked short links: each link of a broadcast's content becomes `<public url>/l/<code>`, one code per
recipient and link. Opening it records the click — the message moves to `clicked` and a `link.clicked`
event is recorded — and redirects (302) to the original URL; an unknown code is a 404 page."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import URL
from siyu.core import clock
from siyu.core.auth import SessionDep
from siyu.core.errors import NotFound
from siyu.core.events import record_event
from siyu.core.i18n import negotiate, translations
from siyu.core.tenancy import bind_workspace
from siyu.messaging.broadcast_models import BroadcastLink
from siyu.messaging.content import FILLS
from siyu.settings import get_settings

# The text fields of the content shapes (`siyu.messaging.content`) that may carry a link.
TEXT_PARTS = ("text", "title", "description")
CODE_BYTES = 8


def new_code() -> str:
    """A short random code (64 bits: guessing one is hopeless, collisions practically never happen)."""
    return secrets.token_urlsafe(CODE_BYTES)


def short_url(code: str) -> str:
    """The public address of a code."""
    return f"{get_settings().public_url.rstrip('/')}/l/{code}"


def links_in(content: Mapping[str, Any]) -> list[str]:
    """The distinct URLs of a content's text parts, its filled template fields and its `url`, in order of
    appearance."""
    found: list[str] = []
    for key in TEXT_PARTS:
        value = content.get(key)
        if isinstance(value, str):
            found.extend(URL.findall(value))
    for key in FILLS.values():  # an SMS template's params, a template message's data
        for value in (content.get(key) or {}).values():
            if isinstance(value, str):
                found.extend(URL.findall(value))
    url = content.get("url")
    if isinstance(url, str) and URL.fullmatch(url):
        found.append(url)
    return list(dict.fromkeys(found))


def rewrite(content: Mapping[str, Any], codes: Mapping[str, str]) -> dict[str, Any]:
    """The content with every tracked URL replaced by its short link."""
    if not codes:
        return dict(content)
    out = dict(content)

    def swap(match: re.Match[str]) -> str:
        code = codes.get(match.group(0))
        return short_url(code) if code else match.group(0)

    for key in TEXT_PARTS:
        if isinstance(out.get(key), str):
            out[key] = URL.sub(swap, out[key])
    for key in FILLS.values():
        if isinstance(out.get(key), Mapping):
            out[key] = {k: URL.sub(swap, v) if isinstance(v, str) else v for k, v in out[key].items()}
    if isinstance(out.get("url"), str) and out["url"] in codes:
        out["url"] = short_url(codes[out["url"]])
    return out


def record_click(session: Session, code: str) -> str:
    """Count a click on a code and mark its message clicked; the URL to send the browser to."""
    bind_workspace(session, None)
    link = session.execute(select(BroadcastLink).where(BroadcastLink.code == code)).scalar_one_or_none()
    if link is None:
        raise NotFound("no such link", field="code")
    bind_workspace(session, link.workspace_id)
    now = clock.now()
    session.execute(update(BroadcastLink).where(BroadcastLink.id == link.id)
                    .values(clicks=BroadcastLink.clicks + 1).execution_options(synchronize_session=False))
    if link.first_clicked_at is None:
        link.first_clicked_at = now
    if link.message_id is not None:
        message = channels.get_message(session, link.message_id)
        channels.set_status(session, message, "clicked", at=now)
    session.refresh(link, ["clicks"])
    record_event(session, type="link.clicked", contact_id=link.contact_id, occurred_at=now,
                 properties={"broadcast_id": link.broadcast_id, "message_id": link.message_id, "url": link.url},
                 idempotency_key=f"click:{link.id}:{link.clicks}", source="messaging")
    return link.url


router = APIRouter(include_in_schema=False)


@router.get("/l/{code}")
def follow(code: str, request: Request, session: SessionDep) -> Response:
    """Record the click (committed before the answer leaves), then redirect to the link's address."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{4,24}", code):
        return _not_found(request)
    try:
        url = record_click(session, code)
    except NotFound:
        return _not_found(request)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def _not_found(request: Request) -> Response:
    from siyu.console.shell import render

    locale = negotiate(request.headers.get("accept-language"))
    catalog = translations(locale)
    return render("error.html", locale, {"status": 404, "title": catalog.gettext("Link not found"),
                                         "message": catalog.gettext("This link is wrong or has expired.")},
                  status=404)
