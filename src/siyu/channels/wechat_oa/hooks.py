"""The Official Account's callback URL, `/hooks/wechat-oa/{account}`: thin; the work is in `callbacks`.

The body is read with a cap before anything parses it; the push is processed and committed in one
worker thread, answered, and only then are its urgent jobs (a welcome) run in the background — so the
answer leaves well within the platform's 5 seconds and a crash after it leaves the jobs to the workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from siyu.channels import service
from siyu.channels.wechat_oa import callbacks
from siyu.channels.wechat_oa.adapter import KIND
from siyu.channels.wechat_oa.xml import MAX_BODY_BYTES
from siyu.core import worker
from siyu.core.auth import SessionDep, in_unit_of_work
from siyu.core.errors import TooLarge

router = APIRouter(include_in_schema=False)
# What runs a push's urgent jobs after the answer (tests run them on the test's own connection).
run_urgent: Callable[[list[int]], Any] = worker.run_now


async def capped_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused (413) as soon as it passes `limit` bytes, declared or not."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"a callback body is at most {limit} bytes", field="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"a callback body is at most {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/hooks/wechat-oa/{account}")
def verify_url(account: str, request: Request, session: SessionDep) -> Response:
    """The server-configuration check of the OA admin: the bare echostr."""
    target = service.account_for_callback(session, account, KIND)
    return PlainTextResponse(callbacks.verify_url(target, dict(request.query_params)))


def _process(session: Session, account: str, params: dict[str, str], body: bytes) -> callbacks.Answer:
    target = service.account_for_callback(session, account, KIND)
    return callbacks.handle(session, target, params, body)


@router.post("/hooks/wechat-oa/{account}")
async def push(account: str, request: Request, session: SessionDep) -> Response:
    """A message or event pushed by the platform."""
    body = await capped_body(request)
    answer = await in_unit_of_work(session, _process, session, account, dict(request.query_params), body)
    background = BackgroundTask(run_urgent, list(answer.urgent_jobs)) if answer.urgent_jobs else None
    return Response(answer.body, media_type=answer.content_type, background=background)
