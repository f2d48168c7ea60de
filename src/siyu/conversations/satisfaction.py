"""Satisfaction: one "rate us 1-5" message when a conversation closes, the contact's digit recorded.

The survey goes through the conversation's account (`queue_send`, purpose service, so consent rules
for service messages apply). A reply within 24 hours that is a single digit 1-5 (full-width digits
too) is the rating: it is recorded on the conversation with a `conversation.rated` event and opens no
new conversation.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.console.nav import N_
from siyu.conversations.models import Conversation, Message
from siyu.conversations.threads import get_settings
from siyu.core import clock
from siyu.core.events import record_event
from siyu.core.i18n import gettext
from siyu.core.tenancy import bound_workspace
from siyu.core.workspaces import get_workspace

ANSWER_HOURS = 24
DEFAULT_QUESTION = N_("How did we do? Please reply with a number from 1 (poor) to 5 (excellent).")


def question(session: Session) -> str:
    """The survey text: the workspace's own, or the default in the workspace's language."""
    custom = get_settings(session).survey_text.strip()
    if custom:
        return custom
    workspace_id = bound_workspace(session)
    language = (get_workspace(session, workspace_id).locale if workspace_id is not None else None) or "en"
    return gettext(language, DEFAULT_QUESTION)


def queue_survey(session: Session, conversation: Conversation) -> Message | None:
    """Ask the contact to rate a conversation that just closed (once; None when it can't be asked)."""
    if not get_settings(session).survey_enabled or conversation.account_id is None or conversation.contact_id is None:
        return None
    if conversation.survey_message_id is not None or conversation.first_inbound_at is None:
        return None
    account = channels.get_account(session, conversation.account_id)
    message = channels.queue_send(session, account=account, contact_id=conversation.contact_id,
                                  content={"type": "text", "text": question(session)},
                                  origin=f"survey:{conversation.id}", purpose="service",
                                  idempotency_key=f"survey:{conversation.id}")
    conversation.survey_message_id = message.id
    session.flush()
    return message


def rating_of(text: str) -> int | None:
    """The rating a reply gives: one digit 1-5 (full-width too), nothing else but spaces."""
    value = unicodedata.normalize("NFKC", text or "").strip()
    if len(value) == 1 and value in "12345":
        return int(value)
    return None


def record_rating(session: Session, message: Message) -> Conversation | None:
    """If this inbound message rates the contact's recently closed conversation, record it."""
    rating = rating_of(message.text)
    if rating is None or message.contact_id is None or message.account_id is None:
        return None
    since = clock.now() - timedelta(hours=ANSWER_HOURS)
    conversation = session.execute(select(Conversation).where(
        Conversation.contact_id == message.contact_id, Conversation.account_id == message.account_id,
        Conversation.status == "closed", Conversation.survey_message_id.is_not(None),
        Conversation.rating.is_(None), Conversation.closed_at >= since,
    ).order_by(Conversation.closed_at.desc()).limit(1)).scalars().first()
    if conversation is None:
        return None
    conversation.rating, conversation.rated_at = rating, clock.now()
    message.conversation_id = conversation.id
    session.flush()
    record_event(session, type="conversation.rated", contact_id=conversation.contact_id, source="conversations",
                 idempotency_key=f"rated:{conversation.id}",
                 properties={"conversation_id": conversation.id, "rating": rating, "staff_id": conversation.staff_id,
                             "account_id": conversation.account_id})
    return conversation


def report(session: Session, conversations: list[Conversation]) -> list[dict[str, Any]]:
    """Per staff member: average rating, how many rated, and how many gave each score."""
    by_staff: dict[int | None, list[int]] = {}
    for c in conversations:
        if c.rating is not None:
            by_staff.setdefault(c.responder_id or c.staff_id, []).append(c.rating)
    rows = []
    for staff_id, ratings in by_staff.items():
        rows.append({"staff_id": staff_id, "count": len(ratings), "average": round(sum(ratings) / len(ratings), 2),
                     "distribution": {str(n): ratings.count(n) for n in range(1, 6)}})
    return sorted(rows, key=lambda r: (-r["count"], r["staff_id"] or 0))
