"""The matcher against a naive reference: the matching rule with the lowest (priority, -id) among those in
a window, defaults only when no keyword rule matched; patterns run on RE2, in linear time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from siyu.core.errors import Invalid
from siyu.messaging import matcher
from siyu.messaging.matcher import Rule, Window

WORDS = ["价格", "优惠", "vip", "VIP", "ｖｉｐ", "order", "a"]
windows = st.builds(
    lambda days, start, length: Window(frozenset(days), start, min(start + length, 1440)),
    st.sets(st.integers(1, 7), min_size=1), st.integers(0, 1439), st.integers(1, 1440),
)
rules = st.lists(
    st.builds(
        lambda i, kind, kws, prio, wins: Rule(i, kind, () if kind == "default" else tuple(kws), prio, tuple(wins)),
        st.integers(1, 10_000), st.sampled_from(["exact", "contains", "regex", "default"]),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), st.integers(0, 5),
        st.lists(windows, max_size=2),
    ),
    max_size=8, unique_by=lambda r: r.id,
)
moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))


def naive(rules: list[Rule], text: str, at: datetime) -> tuple[int, str] | None:
    def open_at(rule: Rule) -> bool:
        minute = at.hour * 60 + at.minute
        return not rule.windows or any(at.isoweekday() in w.days and w.start <= minute < w.end for w in rule.windows)

    def said(rule: Rule) -> str | None:
        t = text.casefold().replace("ｖｉｐ", "vip")
        for k in rule.keywords:
            k2 = k.casefold().replace("ｖｉｐ", "vip")
            if (rule.match_type == "exact" and t.strip() == k2) or (rule.match_type == "contains" and k2 in t) or (
                    rule.match_type == "regex" and re.search(k.replace("ｖｉｐ", "vip"), t, re.IGNORECASE)):
                return k
        return None

    matching = [(r.priority, -r.id, r.id, said(r)) for r in rules
                if r.match_type != "default" and open_at(r) and said(r) is not None]
    if matching:
        _p, _n, rule_id, keyword = min(matching)
        return rule_id, str(keyword)
    defaults = [(r.priority, -r.id, r.id) for r in rules if r.match_type == "default" and open_at(r)]
    return (min(defaults)[2], "") if defaults else None


@example([Rule(1, "regex", ("ｖｉｐ",), 0)], "VIP", datetime(2026, 11, 30, tzinfo=UTC))
@given(rules, st.lists(st.sampled_from([*WORDS, " ", "多少", "x"]), max_size=4).map("".join), moments)
def test_choose_agrees_with_the_naive_reference(rules, text, at):
    got = matcher.choose(rules, text, at)
    assert (None if got is None else (got[0].id, got[1])) == naive(rules, text, at)


@given(windows, moments)
def test_a_window_holds_exactly_inside_its_days_and_minutes(window, at):
    inside = window.holds(at)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=window.start)
    end = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=window.end)
    assert inside == (at.isoweekday() in window.days and start <= at.replace(second=0, microsecond=0) < end)


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a*)*b", "(a|aa)+$", "(x+x+)+y", ".*.*.*.*.*z"])
def test_patterns_that_backtrack_forever_elsewhere_answer_a_hostile_message_at_once(pattern):
    # On a backtracking engine each of these takes exponential (or n^5) time on this message and the
    # test would not finish; RE2 matches in linear time.
    matcher.check_pattern(pattern, field="keywords[0]")
    assert matcher.keyword_in(Rule(1, "regex", (pattern,), 0), "a" * 499 + "!") is None


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"(a)\1", "invalid escape"), ("(?=a)b", "invalid perl operator"), ("(?<!a)b", "invalid perl operator"),
    ("[unclosed", "missing ]"), ("(价格|多少钱)*", "empty text"), ("a" * 201, "200 characters"),
])
def test_patterns_re2_cannot_take_or_that_match_everything_are_refused(pattern, reason):
    with pytest.raises(Invalid) as caught:
        matcher.check_pattern(pattern, field="keywords[0]")
    assert (caught.value.code, caught.value.field) == ("bad_pattern", "keywords[0]")
    assert reason in caught.value.message


@pytest.mark.parametrize(("pattern", "said"), [
    (r"^订单\s*\d{6,}$", "订单 123456"), ("价格|多少钱", "这个多少钱"), ("^(优惠|折扣)券?$", "折扣券"),
    ("[a-z]+@[a-z]+", "mail me at a@b"), (r"\d{3}-\d{4}", "call 555-1234"),
])
def test_ordinary_patterns_are_accepted_and_match(pattern, said):
    assert matcher.check_pattern(pattern, field="keywords[0]") is None  # no Invalid raised
    assert matcher.keyword_in(Rule(1, "regex", (pattern,), 0), said) == pattern
