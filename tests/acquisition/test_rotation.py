"""The staff rotation: whoever a code hands a contact to is on duty and under their cap, backups only take
contacts when every regular is full or off, weighted shares stay within 1 of their target, round robin
visits everyone once a cycle, and bad member lists are refused naming the field."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from siyu.acquisition import models, rotation
from siyu.acquisition.rotation import Member, choose, eligible, eligible_userids, on_duty
from siyu.core.errors import Invalid

MONDAY = datetime(2026, 11, 30)  # a Monday, workspace-local

times = st.from_regex(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", fullmatch=True)
windows = st.fixed_dictionaries({
    "days": st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True).map(sorted),
    "start": times, "end": st.one_of(times, st.just("24:00")),
}).filter(lambda w: w["start"] != w["end"])
# positions distinct (as the code's rows are numbered), shuffled against staff ids
member_lists = st.lists(
    st.tuples(st.integers(1, 5), st.one_of(st.none(), st.integers(0, 6)), st.lists(windows, max_size=2),
              st.booleans()),
    min_size=1, max_size=7,
).flatmap(lambda specs: st.permutations(range(1, len(specs) + 1)).map(lambda positions: [
    Member(staff_id=100 + i, weight=w, daily_cap=cap, hours=tuple(h), backup=b, position=p)
    for i, ((w, cap, h, b), p) in enumerate(zip(specs, positions, strict=True))]))
local_moments = st.integers(0, 7 * 24 * 60 - 1).map(lambda m: MONDAY + timedelta(minutes=m))


def minute_in(start: str, end: str, minute: int) -> bool:
    def m(t: str) -> int:
        return int(t[:2]) * 60 + int(t[3:])
    return m(start) <= minute < m(end)


def naive_on_duty(member: Member, at: datetime) -> bool:
    """A window crossing midnight is two plain windows: start..24:00 on its days, 00:00..end the day after."""
    if not member.hours:
        return True
    minute = at.hour * 60 + at.minute
    for w in member.hours:
        if w["start"] < w["end"] or w["end"] == "24:00":
            if at.isoweekday() in w["days"] and minute_in(w["start"], w["end"], minute):
                return True
        else:
            if at.isoweekday() in w["days"] and minute_in(w["start"], "24:00", minute):
                return True
            if (at - timedelta(days=1)).isoweekday() in w["days"] and minute_in("00:00", w["end"], minute):
                return True
    return False


def test_strategies_are_the_models_strategies():
    assert rotation.STRATEGIES == models.STRATEGIES


# --- a day of arrivals --------------------------------------------------------------------------------


@given(st.sampled_from(rotation.STRATEGIES), member_lists, st.integers(0, 6),
       st.lists(st.integers(0, 180), min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_a_day_of_adds_respects_caps_duty_and_backups(strategy, members, weekday, gaps, rng):
    counts: Counter[int] = Counter()
    cursor = 0
    at = MONDAY + timedelta(days=weekday)
    day = at.date()
    for gap in gaps:
        at += timedelta(minutes=gap)
        if at.date() != day:  # the day's counts reset at local midnight
            day, counts = at.date(), Counter()
        chosen, cursor = choose(strategy, members, counts, at, cursor=cursor, draw=rng.random())
        regulars_free = [m for m in members if not m.backup and on_duty(m, at)
                         and (m.daily_cap is None or counts[m.staff_id] < m.daily_cap)]
        if chosen is None:
            assert eligible(members, counts, at) == []
            assert not regulars_free
            assert not [m for m in members if on_duty(m, at) and (m.daily_cap is None or counts[m.staff_id] <
                                                                  m.daily_cap)]
            continue
        assert naive_on_duty(chosen, at), "nobody off duty is chosen"
        counts[chosen.staff_id] += 1
        assert chosen.daily_cap is None or counts[chosen.staff_id] <= chosen.daily_cap, "never over the cap"
        assert not chosen.backup or not regulars_free, "a backup only when every regular is full or off"
        assert cursor == chosen.position


@given(member_lists, st.dictionaries(st.integers(100, 106), st.integers(0, 8)), local_moments)
def test_the_eligible_set_is_regulars_first_then_backups_in_position_order(members, counts, at):
    def free(m: Member) -> bool:
        return naive_on_duty(m, at) and (m.daily_cap is None or counts.get(m.staff_id, 0) < m.daily_cap)

    regulars = sorted((m for m in members if not m.backup and free(m)), key=lambda m: m.position)
    backups = sorted((m for m in members if m.backup and free(m)), key=lambda m: m.position)

    assert eligible(members, counts, at) == (regulars or backups)


@given(member_lists, local_moments)
def test_userids_for_wecom_are_the_eligible_set_in_position_order_without_the_unbound(members, at):
    userid_of = {m.staff_id: f"u{m.staff_id}" for m in members if m.staff_id % 3}
    expected = [f"u{m.staff_id}" for m in eligible(members, {}, at) if m.staff_id % 3]

    assert eligible_userids(members, {}, at, userid_of) == expected


def test_a_cap_of_zero_takes_nobody_and_a_full_regular_hands_over_to_the_backup():
    members = [Member(1, daily_cap=2, position=1), Member(2, daily_cap=0, position=2),
               Member(3, backup=True, position=3)]
    at = MONDAY.replace(hour=10)

    assert [m.staff_id for m in eligible(members, {}, at)] == [1]
    assert [m.staff_id for m in eligible(members, {1: 2}, at)] == [3]
    assert eligible([*members[:2]], {1: 2}, at) == []
    assert choose("round_robin", members[:2], {1: 2}, at, cursor=7, draw=0.5) == (None, 7)


# --- working hours ------------------------------------------------------------------------------------


@example(Member(1, hours=({"days": [1], "start": "22:00", "end": "06:00"},)), MONDAY.replace(hour=23))
@given(st.builds(lambda h: Member(1, hours=tuple(h)), st.lists(windows, max_size=3)), local_moments)
def test_on_duty_agrees_with_windows_split_at_midnight(member, at):
    assert on_duty(member, at) == naive_on_duty(member, at)


def test_a_night_shift_runs_from_its_day_into_the_next_morning():
    night = Member(1, hours=({"days": [1], "start": "22:00", "end": "06:00"},))

    assert on_duty(night, MONDAY.replace(hour=22))
    assert on_duty(night, MONDAY.replace(hour=23, minute=59))
    assert on_duty(night, MONDAY + timedelta(days=1, hours=5, minutes=59))  # Tuesday early
    assert not on_duty(night, MONDAY + timedelta(days=1, hours=6))
    assert not on_duty(night, MONDAY.replace(hour=21, minute=59))
    assert not on_duty(night, MONDAY.replace(hour=3))  # Sunday's night, not listed
    sunday_night = Member(1, hours=({"days": [7], "start": "20:00", "end": "02:00"},))
    assert on_duty(sunday_night, MONDAY.replace(hour=1, minute=30))  # wraps from Sunday into Monday
    assert not on_duty(sunday_night, MONDAY.replace(hour=20))


def test_the_whole_day_and_the_end_of_the_day():
    whole = Member(1, hours=({"days": [1, 2, 3, 4, 5], "start": "00:00", "end": "24:00"},))
    office = Member(2, hours=({"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"},))

    assert on_duty(whole, MONDAY)
    assert on_duty(whole, MONDAY.replace(hour=23, minute=59))
    assert not on_duty(whole, MONDAY + timedelta(days=5))  # Saturday
    assert on_duty(office, MONDAY.replace(hour=9))
    assert not on_duty(office, MONDAY.replace(hour=18))


def test_off_duty_regulars_hand_over_to_backups_on_duty():
    members = [Member(1, hours=({"days": [1], "start": "09:00", "end": "18:00"},), position=1),
               Member(2, backup=True, hours=({"days": [1], "start": "18:00", "end": "09:00"},), position=2),
               Member(3, backup=True, position=3, daily_cap=1)]

    assert [m.staff_id for m in eligible(members, {}, MONDAY.replace(hour=12))] == [1]
    assert [m.staff_id for m in eligible(members, {}, MONDAY.replace(hour=20))] == [2, 3]
    assert [m.staff_id for m in eligible(members, {3: 1}, MONDAY.replace(hour=8))] == []


# --- the strategies -----------------------------------------------------------------------------------


always_on = st.lists(st.integers(1, 10), min_size=1, max_size=8).map(
    lambda ws: [Member(staff_id=10 + i, weight=w, position=i + 1) for i, w in enumerate(ws)])


@example([Member(1, 16, position=1), Member(2, 4, position=2), Member(3, 2, position=3),
          Member(4, 2, position=4), Member(5, 1, position=5)], 200, 0)  # plain D'Hondt runs 2.2 ahead here
@given(always_on, st.integers(1, 300), st.integers(0, 9))
def test_weighted_shares_stay_within_one_of_their_target(members, adds, cursor):
    counts: Counter[int] = Counter()
    total = sum(m.weight for m in members)
    for n in range(1, adds + 1):
        chosen, cursor = choose("weighted", members, counts, MONDAY, cursor=cursor, draw=0.0)
        assert chosen is not None
        counts[chosen.staff_id] += 1
        for m in members:
            assert abs(counts[m.staff_id] - Fraction(n * m.weight, total)) < 1, (n, m, dict(counts))


@example([Member(10 + i, w, position=i + 1) for i, w in enumerate((16, 4, 2, 2, 1))], {10: 2}, 0)  # D'Hondt: 10
@given(always_on, st.dictionaries(st.integers(10, 17), st.integers(0, 50)), st.integers(0, 9))
def test_weighted_picks_the_lowest_next_share_among_those_within_quota(members, counts, cursor):
    chosen, _ = choose("weighted", members, counts, MONDAY, cursor=cursor, draw=0.0)
    total, after = sum(m.weight for m in members), sum(counts.get(m.staff_id, 0) for m in members) + 1

    within = [m for m in members if Fraction(counts.get(m.staff_id, 0) + 1) <= -(-after * m.weight // total)]
    assert within, "someone is always within quota"
    best = min(within, key=lambda m: (Fraction(counts.get(m.staff_id, 0) + 1, m.weight), m.position <= cursor,
                                      m.position))
    assert chosen == best


@given(always_on, st.integers(0, 12), st.integers(1, 4))
def test_round_robin_visits_each_eligible_member_once_per_cycle(members, cursor, cycles):
    picks = []
    for _ in range(len(members) * cycles):
        chosen, cursor = choose("round_robin", members, {}, MONDAY, cursor=cursor, draw=0.0)
        assert chosen is not None
        picks.append(chosen.staff_id)
    everyone = sorted(m.staff_id for m in members)
    for start in range(0, len(picks), len(members)):
        assert sorted(picks[start:start + len(members)]) == everyone


@given(always_on, st.data())
def test_round_robin_continues_after_the_last_chosen_when_members_change(members, data):
    cursor = data.draw(st.integers(0, len(members) + 1))
    kept = data.draw(st.lists(st.sampled_from(members), min_size=1, unique=True))

    chosen, new_cursor = choose("round_robin", kept, {}, MONDAY, cursor=cursor, draw=0.0)

    after = sorted((m for m in kept if m.position > cursor), key=lambda m: m.position)
    assert chosen == (after[0] if after else min(kept, key=lambda m: m.position))
    assert new_cursor == chosen.position


def test_weighted_ties_rotate_so_a_days_remainder_moves_round():
    members = [Member(i, position=i) for i in range(1, 4)]
    cursor, firsts = 0, []
    for _day in range(3):  # one add a day: counts reset, only the cursor carries over
        chosen, cursor = choose("weighted", members, {}, MONDAY, cursor=cursor, draw=0.0)
        assert chosen is not None
        firsts.append(chosen.staff_id)

    assert firsts == [1, 2, 3]


def test_round_robin_skips_whoever_is_full_and_keeps_the_order():
    members = [Member(1, position=1), Member(2, position=2, daily_cap=1), Member(3, position=3)]
    counts: Counter[int] = Counter()
    cursor, picks = 0, []
    for _ in range(7):
        chosen, cursor = choose("round_robin", members, counts, MONDAY, cursor=cursor, draw=0.0)
        assert chosen is not None
        counts[chosen.staff_id] += 1
        picks.append(chosen.staff_id)

    assert picks == [1, 2, 3, 1, 3, 1, 3]


@given(always_on, st.floats(0.0, 1.0, exclude_max=True))
def test_random_maps_the_draw_onto_the_eligible_set(members, draw):
    chosen, cursor = choose("random", members, {}, MONDAY, cursor=0, draw=draw)

    assert chosen == members[int(draw * len(members))]
    assert cursor == chosen.position


def test_random_with_a_seeded_draw_is_uniform_in_the_long_run():
    members = [Member(staff_id=i, weight=i, position=i) for i in range(1, 7)]  # weights play no part
    rng = random.Random(20261130)
    counts: Counter[int] = Counter()
    for _ in range(60_000):
        chosen, _ = choose("random", members, {}, MONDAY, cursor=0, draw=rng.random())
        assert chosen is not None
        counts[chosen.staff_id] += 1

    expected = 60_000 / 6
    chi2 = sum((counts[m.staff_id] - expected) ** 2 / expected for m in members)
    assert chi2 < 20.5  # 5 degrees of freedom, p = 0.001
    assert all(abs(counts[m.staff_id] - expected) < 0.03 * expected for m in members)


def test_a_draw_outside_zero_to_one_is_a_programming_error():
    with pytest.raises(ValueError, match="draw"):
        choose("random", [Member(1, position=1)], {}, MONDAY, cursor=0, draw=1.0)


def test_an_unknown_strategy_is_refused_on_the_rotation_field():
    with pytest.raises(Invalid) as caught:
        choose("fastest", [Member(1)], {}, MONDAY, cursor=0, draw=0.0)
    assert caught.value.field == "rotation"


# --- checking what people write -----------------------------------------------------------------------


@given(st.lists(st.fixed_dictionaries(
    {"staff_id": st.integers(1, 10**9)},
    optional={"weight": st.integers(1, 100), "daily_cap": st.one_of(st.none(), st.integers(0, 100_000)),
              "hours": st.lists(windows, max_size=3), "backup": st.booleans()}),
    max_size=10, unique_by=lambda m: m["staff_id"]))
def test_valid_members_come_back_complete_in_order(raw):
    out = rotation.validate_members(raw)

    assert [m["staff_id"] for m in out] == [m["staff_id"] for m in raw]
    for given_, got in zip(raw, out, strict=True):
        assert set(got) == {"staff_id", "weight", "daily_cap", "hours", "backup"}
        assert got["weight"] == given_.get("weight", 1)
        assert got["daily_cap"] == given_.get("daily_cap")
        assert got["backup"] is given_.get("backup", False)
        assert [(w["start"], w["end"], set(w["days"])) for w in got["hours"]] == [
            (w["start"], w["end"], set(w["days"])) for w in given_.get("hours", [])]
    assert rotation.validate_members(out) == out
    members = rotation.members_of(out)
    assert [m.position for m in members] == list(range(1, len(out) + 1))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["staff_id", "weight", "daily_cap", "hours", "backup", "days", "start", "end", "x"]),
        inner, max_size=5),
    max_leaves=20)


@given(json_values)
def test_any_json_is_either_members_or_refused_with_a_field(value):
    for check, prefix in ((rotation.validate_members, "members"), (rotation.validate_hours, "hours")):
        field = None
        try:
            check(value)
        except Invalid as exc:
            field = exc.field or ""
        assert field is None or field.startswith(prefix)


@pytest.mark.parametrize(("value", "field"), [
    ("alice", "members"),
    ([1], "members.0"),
    ([{}], "members.0.staff_id"),
    ([{"staff_id": "7"}], "members.0.staff_id"),
    ([{"staff_id": True}], "members.0.staff_id"),
    ([{"staff_id": 0}], "members.0.staff_id"),
    ([{"staff_id": 1}, {"staff_id": 2}, {"staff_id": 1}], "members.2.staff_id"),
    ([{"staff_id": 1, "weight": 0}], "members.0.weight"),
    ([{"staff_id": 1, "weight": 1.5}], "members.0.weight"),
    ([{"staff_id": 1, "weight": 101}], "members.0.weight"),
    ([{"staff_id": 1}, {"staff_id": 2}, {"staff_id": 3, "daily_cap": -1}], "members.2.daily_cap"),
    ([{"staff_id": 1, "daily_cap": "10"}], "members.0.daily_cap"),
    ([{"staff_id": 1, "daily_cap": 100_001}], "members.0.daily_cap"),
    ([{"staff_id": 1, "backup": "yes"}], "members.0.backup"),
    ([{"staff_id": 1, "position": 3}], "members.0.position"),
    ([{"staff_id": 1, "hours": "9-18"}], "members.0.hours"),
    ([{"staff_id": 1, "hours": [{"days": [8], "start": "09:00", "end": "18:00"}]}], "members.0.hours.0.days"),
    ([{"staff_id": 1, "hours": [{"days": [1], "start": "9:00", "end": "18:00"}]}], "members.0.hours.0.start"),
    ([{"staff_id": 1, "hours": [{"days": [1], "start": "09:00"}]}], "members.0.hours.0.end"),
    ([{"staff_id": 1, "hours": [{"days": [1], "start": "0٩:00", "end": "18:00"}]}], "members.0.hours.0.start"),
    ([{"staff_id": n} for n in range(1, 102)], "members"),
])
def test_bad_members_are_refused_naming_the_field(value, field):
    with pytest.raises(Invalid) as caught:
        rotation.validate_members(value)
    assert caught.value.field == field


def test_a_code_may_require_at_least_one_member():
    assert rotation.validate_members([]) == []
    with pytest.raises(Invalid) as caught:
        rotation.validate_members([], "staff", at_least_one=True)
    assert caught.value.field == "staff"


@pytest.mark.parametrize(("value", "field"), [
    ({"days": [1]}, "hours"),
    (["09:00-18:00"], "hours.0"),
    ([{"days": [], "start": "09:00", "end": "18:00"}], "hours.0.days"),
    ([{"days": [0], "start": "09:00", "end": "18:00"}], "hours.0.days"),
    ([{"days": [True], "start": "09:00", "end": "18:00"}], "hours.0.days"),
    ([{"days": "weekdays", "start": "09:00", "end": "18:00"}], "hours.0.days"),
    ([{"days": [1], "start": "25:00", "end": "18:00"}], "hours.0.start"),
    ([{"days": [1], "start": "24:00", "end": "06:00"}], "hours.0.start"),
    ([{"days": [1], "start": "09:00", "end": "18:60"}], "hours.0.end"),
    ([{"days": [1], "start": "09:00", "end": 18}], "hours.0.end"),
    ([{"days": [1], "start": "09:00", "end": "09:00"}], "hours.0.end"),
    ([{"days": [1], "start": "00:00", "end": "24:00"}, {"days": [1], "start": "00:00", "end": "00:00"}],
     "hours.1.end"),
    ([{"days": [1], "start": "09:00", "end": "18:00", "tz": "UTC"}], "hours.0.tz"),
    ([{"days": [1], "start": "09:00", "end": "18:00"}] * 15, "hours"),
])
def test_bad_hours_are_refused_naming_the_field(value, field):
    with pytest.raises(Invalid) as caught:
        rotation.validate_hours(value)
    assert caught.value.field == field


def test_hours_are_normalised_and_a_night_shift_is_allowed():
    assert rotation.validate_hours(None) == []
    assert rotation.validate_hours([{"days": [3, 1, 1], "start": "22:00", "end": "06:00"}]) == [
        {"days": [1, 3], "start": "22:00", "end": "06:00"}]
