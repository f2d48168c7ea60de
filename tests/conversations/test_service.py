"""Conversations: opened by the contact, answered from the inbox, closed by a person or by silence, the
satisfaction survey and its rating, the reports, and staff seeing only their own contacts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from siyu.contacts import staff as staff_service
from siyu.conversations import satisfaction, service
from siyu.conversations.models import Conversation, Message
from siyu.core.errors import Invalid, NotFound
from siyu.core.models import Event
from tests.conversations.conftest import ACTOR


def events(db, kind):
    return db.execute(select(Event.properties).where(Event.type == kind).order_by(Event.id)).scalars().all()


def test_messages_open_then_join_one_conversation_and_a_reply_is_the_first_response(db, say, frozen_now,
                                                                                   adapter, run_jobs, make_staff):
    user, member = make_staff(wecom_userid="li")
    first = say("在吗？", staff_userid="li")
    frozen_now.advance(seconds=60)
    second = say("想问下发货时间")
    conversation = service.get_conversation(db, db.get(Message, first.message_id).conversation_id)
    assert db.get(Message, second.message_id).conversation_id == conversation.id
    assert (conversation.status, conversation.staff_id, conversation.messages) == ("open", member.id, 2)

    frozen_now.advance(seconds=90)
    sent = service.reply(db, conversation, text="您好，今天发货", actor=ACTOR.__class__(
        type="user", id=str(user.id), label="li@example.com", via="console"))
    run_jobs()
    assert (sent.staff_id, sent.conversation_id, sent.origin) == (member.id, conversation.id, f"reply:user:{user.id}")
    assert adapter.sent[-1][1]["text"] == "您好，今天发货"
    assert service.response_seconds(conversation) == 150
    assert conversation.responder_id == member.id
    report = service.first_response_report(db)
    assert report["staff"] == [{"staff_id": member.id, "count": 1, "median_seconds": 150, "p90_seconds": 150}]
    assert [d["median_seconds"] for d in report["days"]] == [150]
    assert [(d["staff_id"], d["count"]) for d in report["staff_days"]] == [(member.id, 1)]


def test_an_automatic_message_is_no_response(db, say, account):
    got = say("hi")
    from siyu.channels import service as channels

    channels.queue_send(db, account=account, contact_id=got.contact_id, content={"text": "auto"},
                        origin="keyword:1", idempotency_key="k")
    conversation = service.list_conversations(db)[0][0]
    assert conversation.messages == 2
    assert conversation.first_response_at is None
    assert service.first_response_report(db)["unanswered"] == 1


def test_one_batch_of_sends_joins_each_contacts_own_open_conversation(db, say, account):
    from siyu.channels import service as channels

    a, b = say("hi", openid="o-a"), say("hello", openid="o-b")
    c = say("x", openid="o-c")  # c's conversation is closed: the message to c joins none
    db.get(Conversation, db.get(Message, c.message_id).conversation_id).status = "closed"
    db.flush()
    c_id = c.contact_id
    sent = channels.queue_sends(db, account=account, items=[
        channels.Outgoing(contact_id=cid, content={"text": "news"}, origin="broadcast:1",
                          idempotency_key=f"bc:{cid}", purpose="marketing")
        for cid in (a.contact_id, b.contact_id, c_id, a.contact_id)])
    by_contact = {m.contact_id: m for m in sent if m is not None}
    for got in (a, b):
        inbound = db.get(Message, got.message_id)
        assert by_contact[got.contact_id].conversation_id == inbound.conversation_id
        assert db.get(Conversation, inbound.conversation_id).messages == 2
    assert by_contact[c_id].conversation_id is None


def test_silence_closes_the_conversation_and_the_rating_is_recorded(db, say, frozen_now, run_jobs, adapter):
    service.update_settings(db, idle_close_hours=2, actor=ACTOR)
    say("请问有优惠吗")
    frozen_now.advance(seconds=3600)
    run_jobs()
    conversation = service.list_conversations(db, status=None)[0][0]
    assert conversation.status == "open"
    frozen_now.advance(seconds=3 * 3600)
    run_jobs()
    db.refresh(conversation)
    assert (conversation.status, conversation.closed_by) == ("closed", "idle")
    assert adapter.sent[-1][1]["text"] == satisfaction.question(db)
    assert [e["conversation_id"] for e in events(db, "conversation.closed")] == [conversation.id]

    frozen_now.advance(seconds=600)
    rated = say(" ４ ")
    db.refresh(conversation)
    assert conversation.rating == 4
    assert db.get(Message, rated.message_id).conversation_id == conversation.id
    assert [e["rating"] for e in events(db, "conversation.rated")] == [4]
    assert db.execute(select(Conversation)).scalars().all() == [conversation]
    assert service.satisfaction_report(db) == [
        {"staff_id": None, "count": 1, "average": 4.0, "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}]

    say("5")  # rated already: this opens a new conversation
    assert len(service.list_conversations(db, status="open")[0]) == 1


def test_a_late_digit_is_no_rating(db, say, frozen_now, run_jobs):
    say("hello")
    conversation = service.list_conversations(db)[0][0]
    service.close(db, conversation, actor=ACTOR)
    service.close(db, conversation, actor=ACTOR)
    assert len(events(db, "conversation.closed")) == 1
    frozen_now.advance(seconds=25 * 3600)
    say("5")
    assert conversation.rating is None
    assert len(service.list_conversations(db, status="open")[0]) == 1


def test_the_survey_text_follows_the_setting(db, ws):
    assert "1" in satisfaction.question(db)
    service.update_settings(db, survey_text="给我们打个分吧 1-5", actor=ACTOR)
    assert satisfaction.question(db) == "给我们打个分吧 1-5"
    with pytest.raises(Invalid):
        service.update_settings(db, idle_close_hours=0, actor=ACTOR)


@pytest.mark.parametrize(("text", "rating"), [("5", 5), ("１", 1), (" 3\n", 3), ("6", None), ("55", None),
                                              ("好评5", None), ("", None)])
def test_what_counts_as_a_rating(text, rating):
    assert satisfaction.rating_of(text) == rating


def test_staff_see_only_their_own_contacts_conversations(db, say, make_staff):
    from siyu.contacts import service as contacts

    user, member = make_staff("staff", name="Wang")
    mine = say("mine", openid="o-1")
    theirs = say("theirs", openid="o-2")
    _, colleague = make_staff("staff", name="Zhao")
    staff_service.assign_owner(db, [mine.contact_id], member.id, actor=ACTOR)
    staff_service.assign_owner(db, [theirs.contact_id], colleague.id, actor=ACTOR)
    viewer = SimpleNamespace(role="staff", user_id=user.id)
    seen = service.list_conversations(db, viewer=viewer)[0]
    assert [c.contact_id for c in seen] == [mine.contact_id]
    other = next(c for c in service.list_conversations(db)[0] if c.contact_id != mine.contact_id)
    with pytest.raises(NotFound):
        service.get_conversation(db, other.id, viewer=viewer)
    assert contacts.get_contact(db, mine.contact_id).owner_id == member.id


def test_a_sweep_with_more_than_a_batch_goes_on_until_all_are_closed(db, say, frozen_now, run_jobs, monkeypatch):
    from siyu.conversations import tasks

    monkeypatch.setattr(tasks, "BATCH", 2)
    for n in range(5):
        say("hi", openid=f"o-{n}")
    frozen_now.advance(seconds=25 * 3600)
    run_jobs()
    assert service.list_conversations(db, status="open")[0] == []
    assert len(service.list_conversations(db, status="closed")[0]) == 5


def test_median_and_p90_are_nearest_rank():
    values = [60.0, 10.0, 30.0, 20.0, 50.0, 40.0, 70.0, 80.0, 90.0, 100.0]
    assert service.percentile(values, 0.9) == 90.0
    assert service.percentile([5.0], 0.9) == 5.0
