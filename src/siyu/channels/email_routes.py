"""Email's public routes: the unsubscribe page (`GET /u/{token}` asks, `POST` withdraws; a mailbox's
RFC 8058 one-click POST withdraws without a page) and the mail service's signed events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from siyu.channels import email_feedback as feedback
from siyu.channels import service as channels
from siyu.console.shell import render
from siyu.core.auth import SessionDep, in_unit_of_work
from siyu.core.errors import NotFound
from siyu.core.i18n import LOCALES, negotiate

router = APIRouter(include_in_schema=False)
ONE_CLICK = b"List-Unsubscribe=One-Click"


def _locale(request: Request) -> str:
    chosen = request.query_params.get("lang")
    return chosen if chosen in LOCALES else negotiate(request.headers.get("accept-language"))


def _page(request: Request, token: str, state: str, address: str = "", status: int = 200) -> HTMLResponse:
    return render("channels/unsubscribe.html", _locale(request),
                  {"token": token, "state": state, "address": address}, status=status)


@router.get("/u/{token}")
def confirm(token: str, request: Request) -> HTMLResponse:
    """Ask the recipient to confirm (a link follower such as a mail scanner must not unsubscribe anyone)."""
    try:
        found = feedback.read_token(token)
    except NotFound:
        return _page(request, token, "invalid", status=404)
    return _page(request, token, "ask", found.value)


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request, session: SessionDep) -> Response:
    """Withdraw email consent: the confirm button, or a mailbox's one-click POST (answered in text)."""
    one_click = ONE_CLICK in await request.body()
    try:
        found = await in_unit_of_work(session, feedback.unsubscribe, session, token, one_click=one_click)
    except NotFound:
        return PlainTextResponse("invalid link", status_code=404) if one_click else _page(
            request, token, "invalid", status=404)
    if one_click:
        return PlainTextResponse("unsubscribed")
    return _page(request, token, "done", found.value)


# The smallest transparent GIF.
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


@router.get("/o/{token}.gif")
async def opened(token: str, session: SessionDep) -> Response:
    """The open-tracking pixel: marks the message opened; the same image whatever the token says."""
    await in_unit_of_work(session, feedback.record_open, session, token)
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})


@router.post("/hooks/email/{account}/events")
async def events(account: str, request: Request, session: SessionDep) -> dict[str, Any]:
    """Bounces, complaints, deliveries and opens from the mail service, signed with the events secret."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}

    def work() -> dict[str, Any]:
        found = channels.account_for_callback(session, account, "email")
        feedback.check_signature(found, headers, body)
        result = feedback.record_events(session, found, feedback.parse_events(body))
        return {"processed": result.processed, "unknown": result.unknown, "withdrawn": result.withdrawn}

    return await in_unit_of_work(session, work)
