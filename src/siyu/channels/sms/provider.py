"""What every SMS provider offers siyu: send one templated message, and read the provider's pushes
(delivery receipts, replies) into plain shapes. Aliyun is the first (`siyu.channels.sms.aliyun`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from siyu.channels.base import Inbound


@dataclass(frozen=True)
class Receipt:
    """The provider's word on one sent message."""

    biz_id: str
    phone: str
    delivered: bool
    code: str
    reason: str
    out_id: str | None = None
    at: datetime | None = None


class SmsProvider(Protocol):
    name: str

    async def send(self, phone: str, sign: str, template: str, params: Mapping[str, Any], out_id: str) -> str:
        """Send one templated message; the provider's id of it (BizId). ChannelError when refused."""

    async def check(self) -> str:
        """One harmless signed call, for the console's "test connection"."""

    def receipts(self, items: list[Mapping[str, Any]]) -> list[Receipt]:
        """Delivery receipts from one push."""

    def replies(self, items: list[Mapping[str, Any]]) -> list[Inbound]:
        """Inbound replies from one push."""
