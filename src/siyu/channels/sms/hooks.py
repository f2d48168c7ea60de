"""SMS provider pushes: `POST /hooks/sms/{account}/report` (receipts) and `/inbound` (replies).

Each URL carries `?token=<push token>`; answered `{"code": 0, "msg": "成功"}` after the commit, as
Aliyun expects. A receipt that arrives before the worker recorded its message's BizId is answered
`{"code": 1}`, so Aliyun pushes it again; the rest of the batch is stored either way.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from siyu.channels import service as channels
from siyu.channels.sms import service
from siyu.core.auth import SessionDep, in_unit_of_work

router = APIRouter(include_in_schema=False)
OK = {"code": 0, "msg": "成功"}
# Any other answer makes Aliyun push the batch again later (receipts are idempotent here).
LATER = {"code": 1, "msg": "稍后重试"}


async def _push(request: Request, session: SessionDep, account: str, handle: Any) -> dict[str, Any]:
    body = await request.body()

    token = request.query_params.get("token")

    def work() -> dict[str, Any]:
        found = channels.account_for_callback(session, account, "sms")
        service.check_push_token(found, token)
        result = handle(session, found, service.push_items(body))
        return LATER if result.early else OK

    return await in_unit_of_work(session, work)


@router.post("/hooks/sms/{account}/report")
async def report(account: str, request: Request, session: SessionDep) -> dict[str, Any]:
    """Delivery receipts (Aliyun SmsReport)."""
    return await _push(request, session, account, service.record_receipts)


@router.post("/hooks/sms/{account}/inbound")
async def inbound(account: str, request: Request, session: SessionDep) -> dict[str, Any]:
    """Replies (Aliyun SmsUp)."""
    return await _push(request, session, account, service.record_replies)
