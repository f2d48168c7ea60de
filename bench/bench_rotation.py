"""Staff rotation on a channel code: how close each strategy keeps every staff member to their fair share,
and how many choices a second `siyu.acquisition.rotation.choose` makes.

Ten staff on one code: eight regulars with weights, all but one capped per day, that one working weekday
office hours only, and two backups (one capped). New contacts arrive at seeded random times, 1,000 a
local day, and each is handed to whoever the strategy chooses; the counts reset at local midnight. The
regulars' caps add up to less than a day's arrivals, so the office-hours member and the backups take
the rest. Each strategy runs over the same arrivals with its own seeded draws.

A member's *target* is the share its strategy promises of each arrival they could have taken (on duty
and with room, in the eligible set that arrival met): 1/n of the eligible set for round robin and
random, weight / total eligible weight for weighted; summed over the run. Actual minus target is the
strategy's unfairness, apart from what caps and hours take away. A second run with the same weights and
no caps, hours or backups shows the strategies alone.

    uv run python bench/bench_rotation.py              # 10 days, 10,000 arrivals
    SCALE=full uv run python bench/bench_rotation.py   # 100 days, 100,000 arrivals

Pure Python, no database. Writes docs/benchmarks_rotation.md.
"""

from __future__ import annotations

import os
import platform
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from siyu.acquisition.rotation import STRATEGIES, Member, choose, eligible

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks_rotation.md"
SCALE = os.environ.get("SCALE", "small")
DAYS = {"small": 10, "full": 100}[SCALE]
PER_DAY = 1_000
START = datetime(2026, 11, 30)  # a Monday, workspace-local
OFFICE = ({"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"},)

STAFF = [
    Member(1, weight=3, daily_cap=200, position=1),
    Member(2, weight=2, daily_cap=150, position=2),
    Member(3, weight=2, daily_cap=150, position=3),
    Member(4, weight=2, hours=OFFICE, position=4),
    Member(5, weight=1, daily_cap=100, position=5),
    Member(6, weight=1, daily_cap=100, position=6),
    Member(7, weight=1, daily_cap=80, position=7),
    Member(8, weight=1, daily_cap=80, position=8),
    Member(9, weight=1, backup=True, position=9),
    Member(10, weight=1, daily_cap=100, backup=True, position=10),
]
PLAIN = [Member(m.staff_id, weight=m.weight, position=m.position) for m in STAFF]


def arrivals() -> list[datetime]:
    """PER_DAY arrivals a day at seeded random minutes and seconds, in order."""
    rng = random.Random(6)
    out = []
    for day in range(DAYS):
        midnight = START + timedelta(days=day)
        out += sorted(midnight + timedelta(seconds=rng.randrange(86_400)) for _ in range(PER_DAY))
    return out


@dataclass
class Run:
    strategy: str
    actual: Counter[int] = field(default_factory=Counter)
    target: dict[int, float] = field(default_factory=dict)
    nobody: int = 0
    seconds: float = 0.0
    calls: int = 0
    worst_day: float = 0.0  # largest |actual - target| of one member on one day

    def close_day(self, actual: Counter[int], target: Counter[float]) -> None:
        self.worst_day = max(self.worst_day, *(abs(actual[k] - target[k]) for k in target))

    def deviation(self, staff_id: int) -> float:
        return self.actual[staff_id] - self.target.get(staff_id, 0.0)

    def worst(self, members: list[Member]) -> tuple[float, int, float, int]:
        """Largest |actual - target| and whose; largest |actual - target| / target and whose."""
        absolute = max(members, key=lambda m: abs(self.deviation(m.staff_id)))
        relative = max((m for m in members if self.target.get(m.staff_id)),
                       key=lambda m: abs(self.deviation(m.staff_id)) / self.target[m.staff_id])
        return (abs(self.deviation(absolute.staff_id)), absolute.staff_id,
                abs(self.deviation(relative.staff_id)) / self.target[relative.staff_id] * 100, relative.staff_id)


def simulate(strategy: str, members: list[Member], moments: list[datetime]) -> Run:
    run = Run(strategy, target={m.staff_id: 0.0 for m in members})
    draws = random.Random(f"draws-{strategy}")
    counts: Counter[int] = Counter()
    day_target: Counter[float] = Counter()
    cursor, day = 0, moments[0].date()
    for at in moments:
        if at.date() != day:
            run.close_day(counts, day_target)
            day, counts, day_target = at.date(), Counter(), Counter()
        pool = eligible(members, counts, at)
        total = sum(m.weight for m in pool)
        for m in pool:
            share = m.weight / total if strategy == "weighted" else 1 / len(pool)
            run.target[m.staff_id] += share
            day_target[m.staff_id] += share
        draw = draws.random()
        started = time.perf_counter()
        chosen, cursor = choose(strategy, members, counts, at, cursor=cursor, draw=draw)
        run.seconds += time.perf_counter() - started
        run.calls += 1
        if chosen is None:
            run.nobody += 1
            continue
        # what the engine promises, checked on every arrival (not timings)
        assert chosen in pool
        assert chosen.daily_cap is None or counts[chosen.staff_id] < chosen.daily_cap
        counts[chosen.staff_id] += 1
        run.actual[chosen.staff_id] += 1
    run.close_day(counts, day_target)
    return run


def describe(m: Member) -> tuple[str, str, str]:
    cap = "—" if m.daily_cap is None else f"{m.daily_cap}/day"
    hours = "Mon–Fri 09:00–18:00" if m.hours else "always"
    return ("backup" if m.backup else "regular", cap, hours)


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (shared with other work during the run)",
        f"- Python {platform.python_version()}",
        "- load average at the end of the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        f"- {platform.platform()}",
    ]


def report(constrained: list[Run], plain: list[Run], adds: int) -> str:
    by = {r.strategy: r for r in constrained}
    lines = [
        "# Benchmark: staff rotation fairness",
        "",
        f"`{'SCALE=full ' if SCALE == 'full' else ''}uv run python bench/bench_rotation.py` — one channel code, "
        f"10 staff, {adds:,} new contacts over {DAYS} local days ({PER_DAY:,} a day at seeded random times; "
        "counts reset at local midnight), each handed to `siyu.acquisition.rotation.choose`. Eight regulars "
        "(seven capped, the eighth uncapped but on weekday office hours only) and two backups; the "
        "regulars' caps add up to less than a day's arrivals, so the office-hours member and then the "
        "backups take the rest.",
        "",
        "*Target*: the share the strategy promises of each arrival the member could have taken (on duty, "
        "with room, in the eligible set that arrival met) — 1/n of the eligible set for round robin and "
        "random, weight / total eligible weight for weighted — summed over the run. *Actual − target* is "
        "the strategy's own unfairness, apart from what caps and hours take away.",
        "",
        "| staff | role | weight | cap | hours | round robin target | actual | random target | actual "
        "| weighted target | actual |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in STAFF:
        role, cap, hours = describe(m)
        cells = [f"{by[s].target[m.staff_id]:,.1f} | {by[s].actual[m.staff_id]:,}" for s in STRATEGIES]
        lines.append(f"| {m.staff_id} | {role} | {m.weight} | {cap} | {hours} | {' | '.join(cells)} |")
    lines += [
        "",
        "| strategy | max \\|actual − target\\| (staff) | max as % of target (staff) | worst member-day "
        "| nobody eligible | `choose()` calls/s | µs per call |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in constrained:
        absolute, who_a, relative, who_r = r.worst(STAFF)
        lines.append(f"| {r.strategy} | {absolute:,.1f} ({who_a}) | {relative:.2f}% ({who_r}) | "
                     f"{r.worst_day:,.1f} | {r.nobody} | "
                     f"{r.calls / r.seconds:,.0f} | {r.seconds / r.calls * 1e6:.1f} |")
    lines += [
        "",
        f"The same weights with no caps, hours or backups ({adds:,} arrivals; target = 1/10 each for round "
        f"robin and random, weight / {sum(m.weight for m in PLAIN)} for weighted):",
        "",
        "| strategy | max \\|actual − target\\| (staff) | max as % of target (staff) | worst member-day |",
        "|---|---|---|---|",
    ]
    for r in plain:
        absolute, who_a, relative, who_r = r.worst(PLAIN)
        lines.append(f"| {r.strategy} | {absolute:,.2f} ({who_a}) | {relative:.3f}% ({who_r}) | {r.worst_day:.2f} |")
    lines += [
        "",
        "Round robin and weighted are deterministic: without caps or hours each member stays within one "
        "contact of the day's target after every add (weighted is Balinski and Young's quota method; the "
        "tests check the bound after every add). The counts reset each day, so a day's remainder (here "
        f"{PER_DAY:,} arrivals over a total weight of {sum(m.weight for m in PLAIN)}) can fall the same way "
        "every day: under weighted the heavier members come first in each cycle and take it, which adds "
        "up to the figure over the whole run while no member-day is off by a whole contact. Random drifts "
        "like any fair draw, about √n.",
        "",
        "Weighted balances the *day's counts*: a member who comes on duty mid-day (staff 4 at 09:00) is "
        "behind the day's share and takes most arrivals until level with the others, which the "
        "per-arrival target above counts against it (and caps the others keep hitting). Round robin and "
        "random just add them to the turn.",
        "",
        "Machine:",
        *machine(),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    moments = arrivals()
    constrained = [simulate(s, STAFF, moments) for s in STRATEGIES]
    plain = [simulate(s, PLAIN, moments) for s in STRATEGIES]
    doc = report(constrained, plain, len(moments))
    OUT.write_text(doc, encoding="utf-8")
    print(doc)


if __name__ == "__main__":
    main()
