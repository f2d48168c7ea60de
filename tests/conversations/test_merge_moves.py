"""Two contacts merged (contacts.merge): the merged one's archive, conversations, channel addresses, sensitive
alerts and keyword hits follow the keeper instead of being nulled or deleted with the contact, and the
person's next message lands on the keeper."""

from __future__ import annotations

from sqlalchemy import func, select, text

from siyu.channels import service as channels
from siyu.channels.models import AccountContact
from siyu.contacts import service as contacts
from siyu.conversations import sensitive
from siyu.conversations.models import Conversation, Message, SensitiveAlert
from siyu.core.db import Base
from siyu.models_registry import import_all_models
from tests.conversations.conftest import ACTOR


def rows_naming(db, contact_id: int) -> dict[str, int]:
    """How many rows of each table with a contact_id name this contact."""
    import_all_models()
    found = {}
    for table in Base.metadata.sorted_tables:
        if "contact_id" in table.c:
            n = db.execute(select(func.count()).select_from(table).where(table.c.contact_id == contact_id)).scalar_one()
            if n:
                found[table.name] = n
    return found


def test_the_merged_contacts_messages_and_conversations_follow_the_keeper(db, say, account):
    keeper = contacts.create_contact(db, fields={"name": "王芳"}, actor=ACTOR)
    sensitive.create_rule(db, values={"name": "Claims", "words": ["最便宜"]}, actor=ACTOR)
    first = say("你们最便宜吗？", openid="o-wf")
    say("在吗", openid="o-wf")
    merged_id = first.contact_id
    reply = channels.queue_send(db, account=account, contact_id=merged_id, content={"text": "在的"},
                                origin="reply:user:1", idempotency_key="r1")
    before = rows_naming(db, merged_id)
    assert {"messages", "conversations", "account_contacts", "sensitive_alerts"} <= set(before)

    contacts.merge_contacts(db, keeper, contacts.get_contact(db, merged_id), actor=ACTOR, automatic=False)
    db.expire_all()

    assert rows_naming(db, merged_id) == {}
    moved = rows_naming(db, keeper.id)
    for table, n in before.items():
        assert moved.get(table, 0) >= n, table
    assert db.get(Message, reply.id).contact_id == keeper.id
    conversation = db.execute(select(Conversation)).scalar_one()
    assert (conversation.contact_id, conversation.messages) == (keeper.id, 3)
    assert db.execute(select(SensitiveAlert.contact_id)).scalar_one() == keeper.id

    again = say("还有货吗", openid="o-wf")
    assert again.contact_id == keeper.id
    assert db.get(Message, again.message_id).conversation_id == conversation.id
    assert db.execute(select(func.count()).select_from(AccountContact)).scalar_one() == 1
    assert db.execute(text("SELECT count(*) FROM contacts")).scalar_one() == 1
