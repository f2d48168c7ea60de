"""API shapes of the conversations module."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from siyu.core.schemas import Strict


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: int | None
    contact_id: int | None
    account_id: int | None
    staff_id: int | None
    channel: str
    direction: str
    msg_type: str
    text: str
    origin: str | None
    status: str
    error: str | None
    created_at: datetime


class HitOut(MessageOut):
    highlights: list[tuple[int, int]] = Field(description="[start, end) character ranges of `text` that matched")
    highlighted: str = Field(description="`text` HTML-escaped with the matches in <mark>")


class SearchPage(BaseModel):
    items: list[HitOut]
    next_cursor: str | None
    substring: bool = Field(description="true when the words found nothing and these matched as a substring; "
                                        "ask the next page with substring=true")


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int | None
    account_id: int | None
    channel: str
    staff_id: int | None
    status: str
    opened_at: datetime
    first_inbound_at: datetime | None
    first_response_at: datetime | None
    responder_id: int | None
    last_message_at: datetime
    messages: int
    closed_at: datetime | None
    closed_by: str | None
    rating: int | None
    rated_at: datetime | None


class ThreadOut(ConversationOut):
    thread: list[MessageOut]


class ReplyIn(Strict):
    text: str = Field(min_length=1, max_length=4000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200,
                                        description="the same key twice queues one message")


class RuleIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    category: Literal["over_marketing", "forbidden_claim", "competitor", "abuse", "other"] = "other"
    kind: Literal["words", "regex"] = "words"
    words: list[str] = Field(default_factory=list, max_length=2000)
    pattern: str = Field(default="", max_length=500)
    severity: Literal["low", "medium", "high"] = "medium"
    direction: Literal["both", "in", "out"] = "both"
    active: bool = True


class RuleUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    category: Literal["over_marketing", "forbidden_claim", "competitor", "abuse", "other"] | None = None
    kind: Literal["words", "regex"] | None = None
    words: list[str] | None = Field(default=None, max_length=2000)
    pattern: str | None = Field(default=None, max_length=500)
    severity: Literal["low", "medium", "high"] | None = None
    direction: Literal["both", "in", "out"] | None = None
    active: bool | None = None


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    category: str
    kind: str
    words: list[str]
    pattern: str
    severity: str
    direction: str
    active: bool
    created_at: datetime
    updated_at: datetime


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int
    rule_id: int | None
    rule_name: str
    category: str
    severity: str
    matched: str
    direction: str
    contact_id: int | None
    staff_id: int | None
    status: str
    created_at: datetime
    handled_at: datetime | None
    handled_by: str | None


class AlertUpdate(Strict):
    status: Literal["acknowledged", "resolved"]


class SettingsIn(Strict):
    idle_close_hours: int | None = Field(default=None, ge=1, le=720,
                                         description="close a conversation after this many silent hours")
    survey_enabled: bool | None = None
    survey_text: str | None = Field(default=None, max_length=500,
                                    description="the satisfaction question; empty for the default")


class SettingsOut(BaseModel):
    idle_close_hours: int
    survey_enabled: bool
    survey_text: str


class ResponseRow(BaseModel):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class StaffResponse(ResponseRow):
    staff_id: int | None


class DayResponse(ResponseRow):
    day: str


class StaffDayResponse(StaffResponse):
    day: str


class FirstResponseOut(BaseModel):
    staff: list[StaffResponse]
    days: list[DayResponse]
    staff_days: list[StaffDayResponse]
    unanswered: int = Field(description="conversations the contact opened that nobody answered yet")


class SatisfactionRow(BaseModel):
    staff_id: int | None
    count: int
    average: float
    distribution: dict[str, int]


def hit_out(message: Any, spans: list[tuple[int, int]], highlighted: str) -> HitOut:
    """One search hit as the API shows it."""
    base = MessageOut.model_validate(message).model_dump()
    return HitOut(**base, highlights=spans, highlighted=highlighted)
