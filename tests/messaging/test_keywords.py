"""Keyword auto-replies: passive on the OA, queued on Customer Service, nothing on 1:1 WeCom; priority,
default reply, time windows in the workspace's timezone, hits and the event, hostile patterns refused,
and the "keyword" auto-tagging trigger."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from siyu.channels import service
from siyu.contacts import tag_rules, tags
from siyu.conversations.models import Message
from siyu.core.errors import Invalid, NotFound
from siyu.core.models import Event
from siyu.messaging import keywords, message_templates
from tests.messaging.conftest import ACTOR, make_account, text


def rule(db, **values):
    base = {"name": "价格", "match_type": "contains", "keywords": ["价格"],
            "reply": {"text": "{{ nickname }}，价格见菜单"}}
    return keywords.create_rule(db, values={**base, **values}, actor=ACTOR)


def test_the_oa_answers_a_keyword_with_a_passive_reply_and_records_the_hit(db, oa):
    r = rule(db, account_id=oa.id)
    got = service.receive(db, oa, text("请问价格多少", nickname="小红"))

    assert got.reply == {"type": "text", "text": "小红，价格见菜单"}
    assert got.reply_origin == f"keyword:{r.id}"
    [hit] = keywords.list_hits(db, rule_id=r.id)[0]
    assert (hit.contact_id, hit.message_id, hit.keyword) == (got.contact_id, got.message_id, "价格")
    assert keywords.get_rule(db, r.id).hits == 1
    event = db.execute(select(Event).where(Event.type == "keyword.matched")).scalar_one()
    assert event.properties == {"rule_id": r.id, "account_id": oa.id, "keyword": "价格", "message_id": got.message_id}
    assert event.contact_id == got.contact_id


def test_customer_service_queues_the_reply_and_wecom_chats_get_none(db, ws, adapters, run_jobs):
    kf, wecom = make_account(db, "wecom_kf"), make_account(db, "wecom")
    rule(db)  # all accounts
    on_kf = service.receive(db, kf, text("价格", sender="kf-1"))
    on_wecom = service.receive(db, wecom, text("价格", sender="wm-1"))
    run_jobs()

    assert on_kf.reply is None
    assert len(on_kf.urgent_jobs) == 1
    assert adapters["wecom_kf"].sent == [("kf-1", {"type": "text", "text": "，价格见菜单"})]
    assert (on_wecom.reply, on_wecom.urgent_jobs, adapters["wecom"].sent) == (None, [], [])
    assert len(keywords.list_hits(db)[0]) == 1


def test_lower_priority_wins_then_the_newest_and_the_default_only_when_nothing_matches(db, oa):
    rule(db, name="late", priority=50, match_type="exact", keywords=["价格"], reply={"text": "exact"})
    rule(db, name="first", priority=10, keywords=["价"], reply={"text": "p10 old"})
    rule(db, name="newer", priority=10, keywords=["格"], reply={"text": "p10 new"})
    rule(db, name="fallback", match_type="default", keywords=[], reply={"text": "default"}, account_id=oa.id)

    assert service.receive(db, oa, text("价格", key="a")).reply["text"] == "p10 new"
    assert service.receive(db, oa, text("你好", key="b")).reply["text"] == "default"
    assert service.receive(db, oa, text("ＰＲＩＣＥ", key="c")).reply["text"] == "default"


def test_exact_and_regex_compare_normalised_text(db, oa):
    rule(db, match_type="exact", keywords=["vip"], reply={"text": "exact"})
    rule(db, name="order", match_type="regex", keywords=[r"^订单\s*\d{6,}$"], reply={"text": "regex"})
    assert service.receive(db, oa, text("  ＶＩＰ ", key="a")).reply["text"] == "exact"
    assert service.receive(db, oa, text("订单 123456", key="b")).reply["text"] == "regex"
    assert service.receive(db, oa, text("vip please", key="c")).reply is None


def test_time_windows_follow_the_workspace_timezone(db, ws, oa, frozen_now):
    ws.timezone = "Asia/Shanghai"
    rule(db, windows=[{"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}], reply={"text": "office"})
    rule(db, name="night", match_type="default", keywords=[], reply={"text": "closed"})

    monday_10_shanghai = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    monday_20_shanghai = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    frozen_now.current = monday_10_shanghai
    assert service.receive(db, oa, text("价格", key="a")).reply["text"] == "office"
    frozen_now.current = monday_20_shanghai
    assert service.receive(db, oa, text("价格", key="b")).reply["text"] == "closed"


def test_images_and_duplicates_are_not_answered(db, oa):
    rule(db)
    first = service.receive(db, oa, text("价格"))
    again = service.receive(db, oa, text("价格"))
    assert first.reply is not None
    assert again.reply is None
    assert len(keywords.list_hits(db)[0]) == 1


def test_a_reply_from_a_deleted_template_is_skipped_with_the_reason(db, oa, adapters):
    template = message_templates.create_template(db, values={"name": "价格表", "content": {"text": "见菜单"}},
                                                 actor=ACTOR)
    rule(db, reply={"template_id": template.id})
    assert service.receive(db, oa, text("价格", key="a")).reply == {"type": "text", "text": "见菜单"}
    message_templates.delete_template(db, template, actor=ACTOR)
    got = service.receive(db, oa, text("价格", key="b"))
    assert got.reply is None
    skipped = db.execute(select(Message).where(Message.direction == "out")).scalar_one()
    assert (skipped.status, skipped.error, skipped.contact_id) == ("skipped", "template_deleted", got.contact_id)


@pytest.mark.parametrize(("values", "field"), [
    ({"match_type": "regex", "keywords": [r"(a)\1"]}, "keywords[0]"),
    ({"match_type": "regex", "keywords": ["(价格|多少钱)*"]}, "keywords[0]"),
    ({"match_type": "regex", "keywords": ["[unclosed"]}, "keywords[0]"),
    ({"match_type": "regex", "keywords": ["a" * 201]}, "keywords[0]"),
    ({"match_type": "contains", "keywords": []}, "keywords"),
    ({"match_type": "default", "keywords": ["x"]}, "keywords"),
    ({"match_type": "fuzzy"}, "match_type"),
    ({"priority": -1}, "priority"),
    ({"windows": [{"days": [8], "start": "09:00", "end": "18:00"}]}, "windows[0].days"),
    ({"windows": [{"days": [1], "start": "18:00", "end": "09:00"}]}, "windows[0].end"),
    ({"windows": [{"days": [1], "start": "9am", "end": "18:00"}]}, "windows[0].start"),
    ({"reply": {"text": "{{ unknown_field }}"}}, "reply.text"),
    ({"reply": {"type": "email", "subject": "s", "body": "b"}}, "reply.type"),
    ({"reply": {"text": ""}}, "reply.text"),
])
def test_bad_rules_are_refused_with_the_field(db, oa, values, field):
    with pytest.raises(Invalid) as caught:
        rule(db, **values)
    assert caught.value.field == field
    assert keywords.list_rules(db) == []


def test_a_rule_on_another_workspaces_account_is_not_found(db, oa, make_workspace):
    from siyu.core.tenancy import bind_workspace

    other = make_workspace("Other")
    bind_workspace(db, other.id)
    with pytest.raises(NotFound) as caught:
        rule(db, account_id=oa.id)
    assert caught.value.field == "account_id"


def test_the_keyword_trigger_tags_people_who_sent_a_keyword(db, oa, run_jobs):
    r = rule(db)
    group = tags.create_tag_group(db, name="兴趣", actor=ACTOR)
    asked = tags.create_tag(db, group_id=group.id, name="问过价格", actor=ACTOR)
    tag_rules.create_rule(db, values={"name": "asked price", "trigger": "keyword", "config": {"rule_ids": [r.id]},
                                      "add_tag_ids": [asked.id]}, actor=ACTOR)
    by_word = tags.create_tag(db, group_id=group.id, name="说过价格", actor=ACTOR)
    tag_rules.create_rule(db, values={"name": "said it", "trigger": "keyword", "config": {"keywords": ["价格"]},
                                      "add_tag_ids": [by_word.id]}, actor=ACTOR)
    with pytest.raises(NotFound):
        tag_rules.create_rule(db, values={"name": "x", "trigger": "keyword", "config": {"rule_ids": [r.id + 99]},
                                          "add_tag_ids": [asked.id]}, actor=ACTOR)

    got = service.receive(db, oa, text("价格?"))
    other = service.receive(db, oa, text("hello", sender="o-2", key="m2"))
    run_jobs()
    assert tags.tag_counts(db).get(asked.id) == 1
    assert tags.tag_counts(db).get(by_word.id) == 1
    assert got.contact_id != other.contact_id


def test_rules_and_welcomes_only_go_where_the_platform_can_answer(db, ws, adapters):
    from siyu.messaging import welcome

    wecom = make_account(db, "wecom")
    with pytest.raises(Invalid) as caught:
        rule(db, account_id=wecom.id)
    assert (caught.value.field, caught.value.code) == ("account_id", "no_replies")
    kf = make_account(db, "wecom_kf")
    with pytest.raises(Invalid) as refused:
        welcome.save_welcome(db, kf, content={"text": "hi"}, enabled=True, actor=ACTOR)
    assert (refused.value.field, refused.value.code) == ("account_id", "no_welcome")
