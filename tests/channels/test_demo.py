"""The channels' demo: a paused stand-in Official Account whose followers wrote to it, archived, threaded
and searchable like real conversations, and nothing queued for a platform."""

from __future__ import annotations

import random

from rich.progress import Progress
from sqlalchemy import func, select

from siyu.channels import service
from siyu.channels.demo import ACCOUNT_NAME, add_demo_channels
from siyu.contacts import service as contacts
from siyu.conversations import search
from siyu.conversations import service as conversations
from siyu.conversations.models import Message
from siyu.core.audit import Actor
from siyu.core.models import Job


def test_the_demo_account_has_threaded_searchable_history_and_sends_nothing(db, ws):
    for i in range(12):
        contacts.create_contact(db, fields={"phone": f"1380000{i:04d}"}, actor=Actor.cli("t"))
    add_demo_channels(db, ws, random.Random(3), Progress(disable=True))
    add_demo_channels(db, ws, random.Random(3), Progress(disable=True))  # a second run adds nothing

    [account] = [a for a in service.list_accounts(db) if a.name == ACCOUNT_NAME]
    assert account.status == "paused"
    assert service.address_count(db, account) == 12
    messages = db.execute(select(Message.direction, func.count()).group_by(Message.direction)).all()
    assert dict(messages)["in"] >= 12
    assert db.execute(select(func.count()).select_from(Message).where(Message.conversation_id.is_(None))).scalar() == 0
    threads, _ = conversations.list_conversations(db, status=None, account_id=account.id, limit=100)
    assert len(threads) == 12
    assert db.execute(select(func.count()).select_from(Job).where(Job.kind.like("channels.deliver%"))).scalar() == 0
    # The followers are the demo's own contacts, found by their phone numbers.
    assert len(contacts.list_contacts(db, limit=100)[0]) == 12
    first = db.execute(select(Message.text).where(Message.direction == "in").order_by(Message.id)).scalars().first()
    hits, _, _ = search.search(db, q=first)
    assert first in [h.message.text for h in hits]
