"""Sensitive-word rules: alerts on messages in and out after width and case normalisation, the cached
automaton rebuilt when rules change, alert handling, and the matcher equal to a naive reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.channels import service as channels
from siyu.conversations import sensitive
from siyu.conversations import text as texts
from siyu.conversations.models import SensitiveAlert
from siyu.core.errors import Invalid
from siyu.core.models import Event
from tests.conversations.conftest import ACTOR


def claims(db, **extra):
    values = {"name": "Forbidden claims", "category": "forbidden_claim", "severity": "high",
              "words": ["最便宜", "第一", "100%有效"], **extra}
    return sensitive.create_rule(db, values=values, actor=ACTOR)


def test_hits_in_and_out_raise_alerts_with_the_text_as_written(db, say, account):
    claims(db)
    got = say("你们是不是全网最便宜的？")
    sent = channels.queue_send(db, account=account, contact_id=got.contact_id, origin="test",
                               content={"type": "text", "text": "本品１００％有效"}, idempotency_key="o")
    say("谢谢")
    alerts = db.execute(select(SensitiveAlert).order_by(SensitiveAlert.id)).scalars().all()
    assert [(a.message_id, a.matched, a.direction, a.severity) for a in alerts] == [
        (got.message_id, "最便宜", "in", "high"), (sent.id, "１００％有效", "out", "high")]
    events = db.execute(select(Event.properties).where(Event.type == "conversation.alert")).scalars().all()
    assert [e["matched"] for e in events] == ["最便宜", "１００％有效"]
    assert sensitive.open_alert_count(db) == 2


def test_rule_changes_apply_to_the_next_message(db, say):
    rule = claims(db)
    say("第一名")
    sensitive.update_rule(db, rule, values={"words": ["竞品"]}, actor=ACTOR)
    say("第一名")
    say("比竞品好")
    sensitive.create_rule(db, values={"name": "Phones", "kind": "regex", "pattern": r"1[3-9]\d{9}"}, actor=ACTOR)
    say("加我 13812345678")
    matched = db.execute(select(SensitiveAlert.matched).order_by(SensitiveAlert.id)).scalars().all()
    assert matched == ["第一", "竞品", "13812345678"]


def test_patterns_keep_their_classes_and_match_either_case_and_width(db, say):
    sensitive.create_rule(db, values={"name": "Han", "kind": "regex", "pattern": r"加\p{Han}*微信\D{0,2}\d{5,}"},
                          actor=ACTOR)
    sensitive.create_rule(db, values={"name": "Brand", "kind": "regex", "pattern": r"WeChat\s*ID"}, actor=ACTOR)
    say("加我微信：１２３４５６")  # full-width digits are digits after NFKC
    say("my wechat id is here")
    matched = db.execute(select(SensitiveAlert.matched).order_by(SensitiveAlert.id)).scalars().all()
    assert matched == ["加我微信：１２３４５６", "wechat id"]


def test_a_pattern_that_backtracks_forever_elsewhere_scans_a_long_message_at_once(db, say):
    # `(\w+\s?)+$` takes exponential time on a backtracking engine over this text; RE2 is linear.
    sensitive.create_rule(db, values={"name": "Tail", "kind": "regex", "pattern": r"(\w+\s?)+$"}, actor=ACTOR)
    say("a" * 3000 + "!")
    assert db.execute(select(SensitiveAlert)).all() == []
    say("最后 ok")
    assert db.execute(select(SensitiveAlert.matched)).scalars().all() == ["ok"]


def test_direction_and_inactive_rules(db, say, account):
    claims(db, direction="out")
    sensitive.create_rule(db, values={"name": "Off", "words": ["坏"], "active": False}, actor=ACTOR)
    say("最便宜 坏")
    assert db.execute(select(SensitiveAlert)).all() == []


def test_alerts_are_acknowledged_then_resolved(db, say):
    claims(db)
    say("第一")
    alert = sensitive.list_alerts(db)[0][0]
    sensitive.handle_alert(db, alert, status="acknowledged", actor=ACTOR)
    assert sensitive.open_alert_count(db) == 0
    sensitive.handle_alert(db, alert, status="resolved", actor=ACTOR)
    sensitive.handle_alert(db, alert, status="acknowledged", actor=ACTOR)
    assert (alert.status, alert.handled_by) == ("resolved", ACTOR.label)
    assert [a.id for a in sensitive.list_alerts(db, status="resolved")[0]] == [alert.id]


@pytest.mark.parametrize(("values", "field"), [
    ({"name": "", "words": ["a"]}, "name"),
    ({"name": "x", "words": []}, "words"),
    ({"name": "x", "kind": "regex", "pattern": "("}, "pattern"),
    ({"name": "x", "kind": "regex", "pattern": "a*"}, "pattern"),
    ({"name": "x", "kind": "regex", "pattern": r"(\d)\1{5}"}, "pattern"),
    ({"name": "x", "kind": "regex", "pattern": "最(?!近)"}, "pattern"),
    ({"name": "x", "words": ["a"], "severity": "extreme"}, "severity"),
])
def test_bad_rules_are_refused_with_the_field(db, ws, values, field):
    with pytest.raises(Invalid) as caught:
        sensitive.create_rule(db, values=values, actor=ACTOR)
    assert caught.value.field == field


ALPHABET = "abAB1１最便宜ＡＢ %％"


def naive(words: list[list[str]], text: str) -> set[tuple[int, int, int]]:
    found = set()
    for rule_id, rule_words in enumerate(words, start=1):
        for word in rule_words:
            key = texts.plain(word).strip()
            if not key:
                continue
            at = text.find(key)
            while at >= 0:
                found.add((rule_id, at, at + len(key)))
                at = text.find(key, at + 1)
    return found


@settings(deadline=None)
@given(words=st.lists(st.lists(st.text(ALPHABET, min_size=1, max_size=4), max_size=4), max_size=4),
       text=st.text(ALPHABET, max_size=40))
def test_the_matcher_equals_a_naive_search_of_the_normalised_text(words, text):
    matcher = sensitive.Matcher(sensitive.RuleSpec(i, tuple(w)) for i, w in enumerate(words, start=1))
    normalised = texts.plain(text)
    assert {(h.rule_id, h.start, h.end) for h in matcher.find(normalised)} == naive(words, normalised)


def test_the_demo_rules_are_added_once_and_catch_an_absolute_claim(db, ws, say, account):
    from siyu.conversations import demo

    demo.add_demo_rules(db, ws, None, None)
    demo.add_demo_rules(db, ws, None, None)
    assert len(sensitive.list_rules(db)) == len(demo.RULES)
    got = say("你们是骗子吗")
    channels.queue_send(db, account=account, contact_id=got.contact_id, origin="test", idempotency_key="x",
                        content={"type": "text", "text": "全网最便宜，不买后悔"})
    matched = db.execute(select(SensitiveAlert.matched).order_by(SensitiveAlert.id)).scalars().all()
    assert matched == ["骗子", "最便宜", "不买后悔"]


def test_a_stored_pattern_re2_cannot_take_is_skipped_and_the_other_rules_still_watch(db, say, caplog):
    claims(db)
    old = sensitive.create_rule(db, values={"name": "Old", "kind": "regex", "pattern": "x"}, actor=ACTOR)
    old.pattern = r"(a)\1"  # saved before patterns ran on RE2
    db.flush()
    with caplog.at_level("WARNING", logger="siyu.conversations.sensitive"):
        say("第一 aa")
    assert db.execute(select(SensitiveAlert.matched)).scalars().all() == ["第一"]
    assert f"rule {old.id}" in caplog.text
