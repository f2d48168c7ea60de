"""REST endpoints of conversations: the inbox and replies, archive search, sensitive-word rules and
alerts, settings and the per-staff reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from siyu.conversations import schemas as s
from siyu.conversations import search, sensitive, service
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.errors import Forbidden
from siyu.core.schemas import Page
from siyu.core.tenancy import MAX_ID

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("conversations", "read"))]
Write = Annotated[Auth, Depends(api_auth("conversations", "write"))]
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200)]


def _manager(auth: Auth) -> None:
    """Rules, alerts, settings and reports are for owners, admins, operators and analysts, not staff."""
    if auth.role == "staff":
        raise Forbidden("only owners, admins and operators see this")


@router.get("/conversations", tags=["conversations"])
def list_conversations(
    auth: Read, session: SessionDep, status: Literal["open", "closed"] | None = None, staff_id: OptId = None,
    contact_id: OptId = None, account_id: OptId = None, cursor: str | None = None, limit: Limit = 50,
) -> Page[s.ConversationOut]:
    """Conversations, newest first; staff see only their own contacts'."""
    rows, nxt = service.list_conversations(session, status=status, staff_id=staff_id, contact_id=contact_id,
                                           account_id=account_id, viewer=auth, cursor=cursor, limit=limit)
    return Page[s.ConversationOut](items=[s.ConversationOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.get("/conversations/{conversation_id}", tags=["conversations"])
def read_conversation(conversation_id: int, auth: Read, session: SessionDep) -> s.ThreadOut:
    """One conversation with its messages, oldest first."""
    conversation = service.get_conversation(session, conversation_id, viewer=auth)
    thread = [s.MessageOut.model_validate(m) for m in service.thread(session, conversation)]
    return s.ThreadOut(**s.ConversationOut.model_validate(conversation).model_dump(), thread=thread)


@router.post("/conversations/{conversation_id}/close", tags=["conversations"])
def close_conversation(conversation_id: int, auth: Write, session: SessionDep) -> s.ConversationOut:
    """Close a conversation; the satisfaction survey is queued to the contact."""
    conversation = service.get_conversation(session, conversation_id, viewer=auth)
    return s.ConversationOut.model_validate(service.close(session, conversation, actor=auth.actor))


@router.post("/conversations/{conversation_id}/replies", status_code=201, tags=["conversations"])
def reply(conversation_id: int, body: s.ReplyIn, auth: Write, session: SessionDep) -> s.MessageOut:
    """Answer the contact through the conversation's account (queued; see the message's status)."""
    conversation = service.get_conversation(session, conversation_id, viewer=auth)
    message = service.reply(session, conversation, text=body.text, actor=auth.actor,
                            idempotency_key=body.idempotency_key)
    return s.MessageOut.model_validate(message)


@router.get("/archive/search", tags=["conversations"])
def search_messages(
    auth: Read, session: SessionDep, q: Annotated[str, Query(max_length=200)] = "", contact_id: OptId = None,
    channel: Annotated[str | None, Query(max_length=32)] = None, account_id: OptId = None, staff_id: OptId = None,
    direction: Literal["in", "out"] | None = None, since: datetime | None = None, until: datetime | None = None,
    substring: bool = False, cursor: str | None = None, limit: Limit = 50,
) -> s.SearchPage:
    """Every archived message in and out matching the words (Chinese or English) and filters, newest first."""
    hits, nxt, fallback = search.search(
        session, q=q, contact_id=contact_id, channel=channel, account_id=account_id, staff_id=staff_id,
        direction=direction, since=since, until=until, substring=substring, viewer=auth, cursor=cursor, limit=limit,
    )
    items = [s.hit_out(h.message, h.spans, str(h.highlighted)) for h in hits]
    return s.SearchPage(items=items, next_cursor=nxt, substring=fallback)


@router.get("/sensitive-rules", tags=["sensitive words"])
def list_rules(auth: Read, session: SessionDep) -> list[s.RuleOut]:
    """The workspace's sensitive-word rules."""
    _manager(auth)
    return [s.RuleOut.model_validate(r) for r in sensitive.list_rules(session)]


@router.post("/sensitive-rules", status_code=201, tags=["sensitive words"])
def create_rule(body: s.RuleIn, auth: Write, session: SessionDep) -> s.RuleOut:
    """A word list or a pattern that raises an alert when a message in or out contains it."""
    _manager(auth)
    return s.RuleOut.model_validate(sensitive.create_rule(session, values=body.model_dump(), actor=auth.actor))


@router.get("/sensitive-rules/{sensitive_rule_id}", tags=["sensitive words"])
def read_rule(sensitive_rule_id: int, auth: Read, session: SessionDep) -> s.RuleOut:
    """One rule."""
    _manager(auth)
    return s.RuleOut.model_validate(sensitive.get_rule(session, sensitive_rule_id))


@router.patch("/sensitive-rules/{sensitive_rule_id}", tags=["sensitive words"])
def update_rule(sensitive_rule_id: int, body: s.RuleUpdate, auth: Write, session: SessionDep) -> s.RuleOut:
    """Change a rule; it applies to the next message."""
    _manager(auth)
    rule = sensitive.get_rule(session, sensitive_rule_id)
    values = body.model_dump(exclude_unset=True)
    return s.RuleOut.model_validate(sensitive.update_rule(session, rule, values=values, actor=auth.actor))


@router.delete("/sensitive-rules/{sensitive_rule_id}", status_code=204, tags=["sensitive words"])
def delete_rule(sensitive_rule_id: int, auth: Write, session: SessionDep) -> Response:
    """Remove a rule (its alerts stay)."""
    _manager(auth)
    sensitive.delete_rule(session, sensitive.get_rule(session, sensitive_rule_id), actor=auth.actor)
    return Response(status_code=204)


@router.get("/sensitive-alerts", tags=["sensitive words"])
def list_alerts(
    auth: Read, session: SessionDep, status: Literal["open", "acknowledged", "resolved"] | None = None,
    severity: Literal["low", "medium", "high"] | None = None, cursor: str | None = None, limit: Limit = 50,
) -> Page[s.AlertOut]:
    """Alerts, newest first."""
    _manager(auth)
    rows, nxt = sensitive.list_alerts(session, status=status, severity=severity, cursor=cursor, limit=limit)
    return Page[s.AlertOut](items=[s.AlertOut.model_validate(a) for a in rows], next_cursor=nxt)


@router.patch("/sensitive-alerts/{alert_id}", tags=["sensitive words"])
def handle_alert(alert_id: int, body: s.AlertUpdate, auth: Write, session: SessionDep) -> s.AlertOut:
    """Acknowledge or resolve an alert."""
    _manager(auth)
    alert = sensitive.get_alert(session, alert_id)
    return s.AlertOut.model_validate(sensitive.handle_alert(session, alert, status=body.status, actor=auth.actor))


def _settings_out(settings: object) -> s.SettingsOut:
    return s.SettingsOut.model_validate(settings, from_attributes=True)


@router.get("/conversation-settings", tags=["conversations"])
def read_settings(auth: Read, session: SessionDep) -> s.SettingsOut:
    """When idle conversations close and what the satisfaction survey asks."""
    return _settings_out(service.get_settings(session))


@router.patch("/conversation-settings", tags=["conversations"])
def update_settings(body: s.SettingsIn, auth: Write, session: SessionDep) -> s.SettingsOut:
    """Change the idle hours or the survey."""
    _manager(auth)
    return _settings_out(service.update_settings(session, actor=auth.actor, **body.model_dump(exclude_unset=True)))


@router.get("/conversation-reports/first-response", tags=["conversations"])
def first_response(
    auth: Read, session: SessionDep, since: datetime | None = None, until: datetime | None = None,
) -> s.FirstResponseOut:
    """First-response time (median and p90 seconds) per staff member and per day of conversations opened."""
    _manager(auth)
    return s.FirstResponseOut.model_validate(service.first_response_report(session, since=since, until=until))


@router.get("/conversation-reports/satisfaction", tags=["conversations"])
def satisfaction(
    auth: Read, session: SessionDep, since: datetime | None = None, until: datetime | None = None,
) -> list[s.SatisfactionRow]:
    """Average rating, count and distribution per staff member."""
    _manager(auth)
    return [s.SatisfactionRow.model_validate(r) for r in service.satisfaction_report(session, since=since, until=until)]
