"""Welcome messages: saved per account, sent once on a follow, rendered for the new contact, urgent, with the
WeCom welcome code; switched off, refused when empty, degraded to a skipped record when rendering fails."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.channels import service
from siyu.conversations.models import Message
from siyu.core.errors import Invalid
from siyu.messaging import welcome
from tests.messaging.conftest import ACTOR, follow, make_account

CARD = {"type": "link", "title": "{{ nickname }}的新人礼", "url": "https://shop.example.com/gift",
        "description": "领取", "pic_url": "https://shop.example.com/gift.png"}


def outbound(db) -> list[Message]:
    return list(db.execute(select(Message).where(Message.direction == "out").order_by(Message.id)).scalars())


def test_a_follow_gets_the_personal_welcome_once_through_the_urgent_path(db, oa, adapters, run_jobs):
    welcome.save_welcome(db, oa, content={"text": "你好，{{ nickname | default('朋友') }}！", "attachments": [CARD]},
                         enabled=True, actor=ACTOR)

    got = service.receive(db, oa, follow())
    again = service.receive(db, oa, follow())
    run_jobs()

    assert again.duplicate
    assert len(got.urgent_jobs) == 2  # the text, then its card: the OA sends one type per message
    assert [c for _a, c in adapters["wechat_oa"].sent] == [
        {"type": "text", "text": "你好，小明！"},
        {**CARD, "title": "小明的新人礼"},
    ]
    assert [(m.origin, m.status, m.contact_id) for m in outbound(db)] == [
        (f"welcome:{welcome.get_welcome(db, oa).id}", "sent", got.contact_id)] * 2


def test_the_fallback_is_used_when_the_field_is_empty(db, oa, adapters, run_jobs):
    welcome.save_welcome(db, oa, content={"text": "你好，{{ nickname | default('朋友', true) }}"}, enabled=True,
                         actor=ACTOR)
    service.receive(db, oa, follow(nickname=None))
    run_jobs()
    assert adapters["wechat_oa"].sent[0][1]["text"] == "你好，朋友"


def test_wecom_sends_text_and_cards_in_one_message_with_the_welcome_code(db, ws, adapters):
    account = make_account(db, "wecom")
    welcome.save_welcome(db, account, content={"text": "欢迎 {{ nickname }}", "attachments": [CARD]}, enabled=True,
                         actor=ACTOR)

    got = service.receive(db, account, follow("wm-1", welcome_code="WELCOME-CODE", state="poster",
                                              welcome_code_expires_at="2026-11-30T08:00:20+00:00"))
    without = service.receive(db, account, follow("wm-2", key="f2"))

    [message] = [m for m in outbound(db) if m.contact_id == got.contact_id]
    assert message.content == {"type": "text", "text": "欢迎 小明", "attachments": [{**CARD, "title": "小明的新人礼"}],
                               "welcome_code": "WELCOME-CODE",
                               "welcome_code_expires_at": "2026-11-30T08:00:20+00:00"}
    assert got.urgent_jobs == [message.job_id]
    [skipped] = [m for m in outbound(db) if m.contact_id == without.contact_id]
    assert (skipped.status, skipped.error, without.urgent_jobs) == ("skipped", "no_welcome_code", [])


def test_a_switched_off_welcome_sends_nothing(db, oa, run_jobs, adapters):
    welcome.save_welcome(db, oa, content={"text": "hi"}, enabled=False, actor=ACTOR)
    got = service.receive(db, oa, follow())
    run_jobs()
    assert (got.urgent_jobs, outbound(db), adapters["wechat_oa"].sent) == ([], [], [])


@pytest.mark.parametrize(("content", "field"), [
    ({"text": "   "}, "content.text"),
    ({"text": ""}, "content.text"),
    ({"text": "hi {{ shoe_size }}"}, "content.text"),
    ({"text": "hi", "attachments": [{"type": "link", "title": "t", "url": "ftp://x"}]}, "content.attachments[0].url"),
    ({"text": "hi", "attachments": [{"type": "email", "subject": "s", "body": "b"}]},
     "content.attachments[0].type"),
])
def test_an_empty_or_broken_welcome_is_refused_with_its_field(db, oa, content, field):
    with pytest.raises(Invalid) as caught:
        welcome.save_welcome(db, oa, content=content, enabled=True, actor=ACTOR)
    assert caught.value.field == field
    assert welcome.get_welcome(db, oa) is None


def test_a_render_failure_leaves_a_skipped_record_and_sends_nothing(db, oa, adapters, run_jobs):
    # A custom attribute the contact doesn't have: the template is valid, this contact can't fill it.
    welcome.save_welcome(db, oa, content={"text": "您的积分 {{ attributes.points + 10 }}"}, enabled=True, actor=ACTOR)
    got = service.receive(db, oa, follow())
    run_jobs()
    [message] = outbound(db)
    assert message.status == "skipped"
    assert message.error.startswith("render_failed: content.text")
    assert message.contact_id == got.contact_id
    assert adapters["wechat_oa"].sent == []


def test_a_registered_lookup_takes_precedence_over_the_default(db, oa, adapters, run_jobs):
    welcome.save_welcome(db, oa, content={"text": "default"}, enabled=True, actor=ACTOR)

    @welcome.welcome_lookup("test-channel-code")
    def by_state(session, account, details):
        if details.get("scene") == "poster":
            return welcome.Welcome(origin="channel_code:7", content={"type": "text", "text": "from the poster"})
        return None

    try:
        service.receive(db, oa, follow("o-1", key="a", scene="poster"))
        service.receive(db, oa, follow("o-2", key="b", scene="other"))
    finally:
        welcome.remove_welcome_lookup("test-channel-code")
    run_jobs()
    assert [(m.origin, m.text) for m in outbound(db)] == [
        ("channel_code:7", "from the poster"), (f"welcome:{welcome.get_welcome(db, oa).id}", "default")]
