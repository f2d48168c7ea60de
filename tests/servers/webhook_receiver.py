"""A brand's webhook endpoint as the webhook channel's docs describe one: it checks X-Siyu-Signature
(HMAC-SHA256 over "<timestamp>.<body>") in constant time, refuses stale timestamps, dedupes on the
Idempotency-Key, and can be told to refuse (`fail_with`) like a broken endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from siyu.channels import webhook


@dataclass
class Receiver:
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    fail_with: list[int] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            body = await request.body()
            if self.fail_with:
                status = self.fail_with.pop(0)
                return JSONResponse({"error": f"failing with {status}"}, status_code=status)
            ok = webhook.verify(self.secret, request.headers.get("x-siyu-timestamp", ""), body,
                                request.headers.get("x-siyu-signature", ""))
            if not ok:
                return JSONResponse({"error": "bad signature"}, status_code=401)
            key = request.headers.get("idempotency-key", "")
            if key not in self.keys:
                self.keys.add(key)
                self.received.append(json.loads(body))
            return JSONResponse({"id": f"r-{len(self.received)}"})

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
