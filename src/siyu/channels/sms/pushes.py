"""Aliyun SMS pushes (HTTP batch push): SmsReport (delivery receipts) and SmsUp (replies), each a JSON
array of objects. Times are Beijing time, `yyyy-MM-dd HH:mm:ss`. Items missing what we need are skipped
by the caller with a count, never guessed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from siyu.channels.base import Inbound
from siyu.channels.sms.provider import Receipt

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_time(value: Any) -> datetime | None:
    """A push's local time as an aware datetime; None when absent or unreadable."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class AliyunPushes:
    """The reading half of the Aliyun provider (no connection needed)."""

    def receipts(self, items: list[Mapping[str, Any]]) -> list[Receipt]:
        found: list[Receipt] = []
        for item in items:
            biz_id = str(item.get("biz_id") or "")
            if not biz_id:
                continue
            found.append(Receipt(
                biz_id=biz_id, phone=str(item.get("phone_number") or ""), delivered=_true(item.get("success")),
                code=str(item.get("err_code") or ""), reason=str(item.get("err_msg") or ""),
                out_id=str(item["out_id"]) if item.get("out_id") else None,
                at=beijing_time(item.get("report_time")),
            ))
        return found

    def replies(self, items: list[Mapping[str, Any]]) -> list[Inbound]:
        found: list[Inbound] = []
        for item in items:
            phone, content = str(item.get("phone_number") or "").strip(), str(item.get("content") or "")
            if not phone:
                continue
            sequence = item.get("sequence_id")
            if sequence not in (None, ""):
                key = f"up:{sequence}"
            else:
                digest = hashlib.sha256(content.encode()).hexdigest()[:16]
                key = f"up:{phone}:{item.get('send_time')}:{digest}"
            found.append(Inbound(
                dedupe_key=key, sender=phone, kind="text", text=content[:2000],
                details={"sign_name": str(item.get("sign_name") or ""), "dest_code": str(item.get("dest_code") or "")},
                occurred_at=beijing_time(item.get("send_time")),
                external_id=str(sequence) if sequence not in (None, "") else None,
            ))
        return found

