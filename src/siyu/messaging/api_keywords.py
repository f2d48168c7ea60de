"""REST endpoints of keyword auto-reply rules and their hits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page, Strict
from siyu.core.tenancy import MAX_ID
from siyu.messaging import keywords as keyword_rules

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("messaging", "read"))]
Write = Annotated[Auth, Depends(api_auth("messaging", "write"))]
MatchType = Literal["exact", "contains", "regex", "default"]


class WindowIn(Strict):
    days: list[int] = Field(min_length=1, max_length=7, description="ISO weekdays, 1 Monday to 7 Sunday")
    start: str = Field(default="00:00", description="HH:MM in the workspace's timezone")
    end: str = Field(default="24:00", description="HH:MM, after start")


class RuleIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    account_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="leave out for every account")
    active: bool = True
    match_type: MatchType
    keywords: list[str] = Field(default_factory=list, max_length=keyword_rules.MAX_KEYWORDS,
                                description="words, or regular expressions for regex; none for default")
    priority: int = Field(default=100, ge=0, le=10_000, description="lower is tried first, then the newest")
    windows: list[WindowIn] = Field(default_factory=list, max_length=keyword_rules.MAX_WINDOWS,
                                    description="when the rule answers; none: always")
    reply: dict[str, Any] = Field(description="a text, link or image content, or {template_id}")


class RuleUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    account_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    active: bool | None = None
    match_type: MatchType | None = None
    keywords: list[str] | None = Field(default=None, max_length=keyword_rules.MAX_KEYWORDS)
    priority: int | None = Field(default=None, ge=0, le=10_000)
    windows: list[WindowIn] | None = Field(default=None, max_length=keyword_rules.MAX_WINDOWS)
    reply: dict[str, Any] | None = None


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    account_id: int | None
    active: bool
    match_type: str
    keywords: list[str]
    priority: int
    windows: list[dict[str, Any]]
    reply: dict[str, Any]
    hits: int
    last_hit_at: datetime | None
    created_at: datetime


class HitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: int
    account_id: int | None
    contact_id: int | None
    message_id: int | None
    keyword: str
    created_at: datetime


@router.get("/keyword-rules", tags=["keyword replies"])
def list_rules(auth: Read, session: SessionDep,
               account_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> list[RuleOut]:
    """Rules in the order they are tried; `account_id` keeps that account's and the workspace-wide ones."""
    return [RuleOut.model_validate(r) for r in keyword_rules.list_rules(session, account_id=account_id)]


@router.post("/keyword-rules", status_code=201, tags=["keyword replies"])
def create_rule(body: RuleIn, auth: Write, session: SessionDep) -> RuleOut:
    """A new rule; a regex that could take exponential time is refused (422 naming the keyword)."""
    return RuleOut.model_validate(keyword_rules.create_rule(session, values=body.model_dump(), actor=auth.actor))


@router.get("/keyword-rules/{keyword_rule_id}", tags=["keyword replies"])
def read_rule(keyword_rule_id: int, auth: Read, session: SessionDep) -> RuleOut:
    """One rule with its hit count."""
    return RuleOut.model_validate(keyword_rules.get_rule(session, keyword_rule_id))


@router.patch("/keyword-rules/{keyword_rule_id}", tags=["keyword replies"])
def update_rule(keyword_rule_id: int, body: RuleUpdate, auth: Write, session: SessionDep) -> RuleOut:
    """Change any of a rule's fields (`account_id: null` makes it workspace-wide)."""
    rule = keyword_rules.get_rule(session, keyword_rule_id)
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "active", "match_type", "keywords", "priority", "windows", "reply"):
        if changes.get(required, "") is None:
            changes.pop(required)
    return RuleOut.model_validate(keyword_rules.update_rule(session, rule, changes=changes, actor=auth.actor))


@router.delete("/keyword-rules/{keyword_rule_id}", status_code=204, tags=["keyword replies"])
def delete_rule(keyword_rule_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a rule and its hits."""
    keyword_rules.delete_rule(session, keyword_rules.get_rule(session, keyword_rule_id), actor=auth.actor)
    return Response(status_code=204)


@router.get("/keyword-rules/{keyword_rule_id}/hits", tags=["keyword replies"])
def rule_hits(keyword_rule_id: int, auth: Read, session: SessionDep, cursor: str | None = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[HitOut]:
    """The messages one rule answered, newest first."""
    rule = keyword_rules.get_rule(session, keyword_rule_id)
    rows, nxt = keyword_rules.list_hits(session, rule_id=rule.id, cursor=cursor, limit=limit)
    return Page[HitOut](items=[HitOut.model_validate(h) for h in rows], next_cursor=nxt)


@router.get("/keyword-hits", tags=["keyword replies"])
def all_hits(auth: Read, session: SessionDep, cursor: str | None = None,
             limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[HitOut]:
    """Every rule's hits, newest first."""
    rows, nxt = keyword_rules.list_hits(session, cursor=cursor, limit=limit)
    return Page[HitOut](items=[HitOut.model_validate(h) for h in rows], next_cursor=nxt)
