"""A local Aliyun SMS (dysmsapi, RPC style) that checks the signature of every request as Aliyun does,
answers like it (Code OK, BizId, RequestId; refusals with their Code and Message), misbehaves when told
(throttling, 5xx, a hang past the client's timeout), and pushes receipts and replies to siyu."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from siyu.channels.sms import aliyun

COMMON = ("AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
          "SignatureVersion", "Timestamp", "Version", "Signature")


@dataclass
class FakeAliyunSms:
    keys: dict[str, str] = field(default_factory=lambda: {"LTAI-test": "test-secret"})
    # What the next SendSms calls get instead of OK: a Code ("isv.BUSINESS_LIMIT_CONTROL"), an HTTP
    # status (503), or "hang" (no answer before the client gives up).
    script: list[str | int] = field(default_factory=list)
    hang_seconds: float = 1.0
    sent: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _nonces: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.rpc, methods=["GET", "POST"])])

    def _error(self, status: int, code: str, message: str) -> JSONResponse:
        self.refused.append(code)
        return JSONResponse({"Code": code, "Message": message, "RequestId": f"req-{next(self._ids)}"},
                            status_code=status)

    async def rpc(self, request: Request) -> Response:
        params = dict(request.query_params)
        missing = [p for p in COMMON if not params.get(p)]
        if missing:
            return self._error(400, "MissingParameter", f"{missing[0]} is mandatory for this action.")
        secret = self.keys.get(params["AccessKeyId"])
        if secret is None:
            return self._error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not aliyun.verify(params, secret, request.method):
            return self._error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        if params["SignatureNonce"] in self._nonces:
            return self._error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(params["SignatureNonce"])
        if params["Action"] == "QuerySmsSignList":
            return JSONResponse({"Code": "OK", "Message": "OK", "RequestId": f"req-{next(self._ids)}",
                                 "SmsSignList": [{"SignName": "思域"}]})
        if params["Action"] != "SendSms":
            return self._error(400, "InvalidAction.NotFound", "Specified api is not found.")
        if self.script:
            step = self.script.pop(0)
            if step == "hang":
                await asyncio.sleep(self.hang_seconds)
                return JSONResponse({"Code": "OK", "BizId": "late", "RequestId": "late"})
            if isinstance(step, int):
                return Response("upstream error", status_code=step)
            messages = {"isv.BUSINESS_LIMIT_CONTROL": "触发小时级流控Permits:5",
                        "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号"}
            return self._error(200, step, messages.get(step, step))
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._error(400, "MissingParameter", f"{name} is mandatory for this action.")
        json.loads(params.get("TemplateParam") or "{}")
        biz_id = f"{next(self._ids):06d}^0"
        self.sent.append({**params, "BizId": biz_id})
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": f"req-{biz_id}"})

    # --- pushes to siyu ------------------------------------------------------------------------------

    def report(self, sent: dict[str, str], *, success: bool = True, code: str = "DELIVERED",
               message: str = "用户接收成功") -> dict[str, Any]:
        """The SmsReport item Aliyun pushes for one accepted send."""
        return {"phone_number": sent["PhoneNumbers"], "send_time": "2026-11-30 20:00:00",
                "report_time": "2026-11-30 20:00:08", "success": success, "err_code": code, "err_msg": message,
                "sms_size": "1", "biz_id": sent["BizId"], "out_id": sent.get("OutId", "")}

    @staticmethod
    def reply(phone: str, content: str, sequence_id: int, sign: str = "思域") -> dict[str, Any]:
        """The SmsUp item Aliyun pushes for one reply."""
        return {"phone_number": phone, "send_time": "2026-11-30 20:05:00", "content": content,
                "sign_name": sign, "dest_code": "1234", "sequence_id": sequence_id}

    @staticmethod
    def push(client: Any, account_id: int, kind: str, items: list[dict[str, Any]], token: str) -> Any:
        """POST a push as Aliyun does (`kind` report or inbound) through an HTTP client of siyu."""
        return client.post(f"/hooks/sms/{account_id}/{kind}?token={token}",
                           content=json.dumps(items, ensure_ascii=False).encode(),
                           headers={"Content-Type": "application/json"})
