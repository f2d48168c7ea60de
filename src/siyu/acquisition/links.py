"""`/c/<state>`: a link code's public address. Opening it records a click arrival and redirects (302) to
the code's target; a paused or expired link still redirects, and the arrival says so."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.acquisition import arrivals, codes
from siyu.core.auth import SessionDep
from siyu.core.errors import NotFound
from siyu.core.i18n import negotiate, translations

router = APIRouter(include_in_schema=False)


def record_click(session: Session, state: str) -> str:
    """Record a click on a link code; the URL to send the browser to."""
    code = codes.link_code(session, state)
    if code is None or not code.target_url:
        raise NotFound("no such link", field="state")
    arrivals.record_arrival(session, code, kind="click", dedupe_key=f"click:{secrets.token_hex(12)}",
                            contact_id=None)
    return code.target_url


@router.get("/c/{state}")
def follow(state: str, request: Request, session: SessionDep) -> Response:
    """Record the click (committed before the answer leaves), then redirect."""
    try:
        url = record_click(session, state)
    except NotFound:
        from siyu.console.shell import render

        locale = negotiate(request.headers.get("accept-language"))
        catalog = translations(locale)
        return render("error.html", locale, {"status": 404, "title": catalog.gettext("Link not found"),
                                             "message": catalog.gettext("This link is wrong or has expired.")},
                      status=404)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
