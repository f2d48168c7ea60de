"""Which conversation a message belongs to, and the settings that shape conversations.

Kept apart from `service.py` (which sends through channels) so the flush hook can use it while the
channels module is still importing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.conversations.models import Conversation, ConversationSettings, Message
from siyu.core import clock, jobs
from siyu.core.db import any_of
from siyu.core.tenancy import bound_workspace

SWEEP = "conversations.sweep"
SWEEP_SLOT_SECONDS = 900
SWEEPS_ASKED = "conversations.sweeps_asked"


def get_settings(session: Session, workspace_id: int | None = None) -> ConversationSettings:
    """The workspace's conversation settings (defaults, not yet stored, until someone saves them)."""
    workspace_id = workspace_id if workspace_id is not None else bound_workspace(session)
    found = session.execute(select(ConversationSettings)
                            .where(ConversationSettings.workspace_id == workspace_id)).scalar_one_or_none()
    if found is not None:
        return found
    return ConversationSettings(workspace_id=workspace_id, idle_close_hours=24, survey_enabled=True, survey_text="")


def is_response(message: Message) -> bool:
    """An outbound message a person wrote: by a staff member, or a reply from the inbox."""
    return message.direction == "out" and (message.staff_id is not None or (message.origin or "").startswith("reply:"))


def open_conversation(session: Session, contact_id: int, account_id: int) -> Conversation | None:
    """The contact's open conversation on an account, if any."""
    return open_conversations(session, {(contact_id, account_id)}).get((contact_id, account_id))


def schedule_sweep(session: Session, workspace_id: int, last_message_at: datetime) -> None:
    """Make sure a sweep runs once this conversation may have gone idle."""
    hours = get_settings(session, workspace_id).idle_close_hours
    due = last_message_at + timedelta(hours=hours)
    slot = int(due.timestamp() // SWEEP_SLOT_SECONDS) + 1
    # A busy transaction (a broadcast) asks once per slot, not once per message.
    asked: set[tuple[int, int]] = session.info.setdefault(SWEEPS_ASKED, set())
    if (workspace_id, slot) in asked:
        return
    asked.add((workspace_id, slot))
    jobs.enqueue(session, SWEEP, f"{workspace_id}:{slot}", {}, workspace_id=workspace_id,
                 run_at=datetime.fromtimestamp(slot * SWEEP_SLOT_SECONDS, UTC))


def join_inbound(session: Session, message: Message, *, staff_id: int | None) -> Conversation:
    """Add an inbound message to the contact's open conversation on its account, or open one."""
    if message.contact_id is None or message.account_id is None:
        raise ValueError("an inbound message names its contact and account")
    at = message.created_at or clock.now()
    conversation = open_conversation(session, message.contact_id, message.account_id)
    if conversation is None:
        conversation = Conversation(workspace_id=message.workspace_id, contact_id=message.contact_id,
                                    account_id=message.account_id,
                                    channel=message.channel, staff_id=staff_id, status="open", opened_at=at,
                                    first_inbound_at=at, last_message_at=at, messages=0)
        session.add(conversation)
        session.flush()
    elif conversation.staff_id is None:
        conversation.staff_id = staff_id
    if conversation.first_inbound_at is None:
        conversation.first_inbound_at = at
    conversation.last_message_at = max(conversation.last_message_at, at)
    conversation.last_inbound_at = at
    conversation.messages += 1
    message.conversation_id = conversation.id
    schedule_sweep(session, message.workspace_id, conversation.last_message_at)
    return conversation


def open_conversations(session: Session, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], Conversation]:
    """The open conversation of each (contact, account) pair that has one, in one query."""
    if not pairs:
        return {}
    rows = session.execute(select(Conversation).where(
        any_of(session, Conversation.contact_id, list({c for c, _a in pairs})),
        Conversation.account_id.in_({a for _c, a in pairs}),
        Conversation.status == "open").order_by(Conversation.id)).scalars()
    found: dict[tuple[int, int], Conversation] = {}
    for c in rows:  # the newest open one wins
        if c.contact_id is not None and c.account_id is not None and (c.contact_id, c.account_id) in pairs:
            found[(c.contact_id, c.account_id)] = c
    return found


def attach_outbound(session: Session, messages: Sequence[Message]) -> None:
    """Put new outbound messages into their contact's open conversation; a person's first counts as the
    conversation's first response."""
    todo = [(m, (m.contact_id, m.account_id)) for m in messages
            if m.conversation_id is None and m.contact_id is not None and m.account_id is not None]
    found = open_conversations(session, {pair for _m, pair in todo})
    for message, pair in todo:
        conversation = found.get(pair)
        if conversation is None:
            continue
        at = message.created_at or clock.now()
        message.conversation_id = conversation.id
        conversation.last_message_at = max(conversation.last_message_at, at)
        conversation.messages += 1
        if is_response(message) and conversation.first_response_at is None:
            conversation.first_response_at = at
            conversation.responder_id = message.staff_id or conversation.staff_id
        schedule_sweep(session, message.workspace_id, conversation.last_message_at)
