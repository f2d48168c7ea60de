"""Keyword auto-replies on the inbound path: what answering costs per text message, and the ratio to the
same inbound pipeline without the reply hooks, in the same run.

On SQLite (a file under a temporary folder) and on PostgreSQL (a database of its own), one workspace has
an Official Account (a stand-in adapter with the OA's rules) and RULES keyword rules with priorities, so
each message is tried against every rule before the last one matches (the worst case). Each message is
`channels.service.receive` in its own transaction, committed, as the callback route does: dedupe, contact
upsert, archive, event, then the keyword hook (match, hit, `keyword.matched`, passive reply). The raw side
is the same receive with the messaging hooks unregistered, alternating in blocks of 50 messages.

    uv run python bench/bench_keywords.py              # 20 rules, 1,000 messages per side and engine
    SCALE=full uv run python bench/bench_keywords.py   # 200 rules, 10,000 messages per side and engine

Writes docs/benchmarks_keywords.md.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from _support import scratch_postgres
from bench_events import ROOT, machine
from sqlalchemy.orm import Session

from siyu.channels import base, service
from siyu.channels.base import Inbound, PlatformRules, SendResult
from siyu.contacts import resolver
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace
from siyu.messaging import keywords, matcher, welcome  # noqa: F401  (welcome registers its hook)

SCALE = os.environ.get("SCALE", "small")
RULES, MESSAGES = {"small": (20, 1_000), "full": (200, 10_000)}[SCALE]
BLOCK = 50
OUT = ROOT / "docs" / "benchmarks_keywords.md"


class StandIn:
    """The Official Account's kind and rules; sends nothing (passive replies go back in the callback)."""

    kind, label, fields, accepts_idempotency_key = "wechat_oa", "OA", (), False
    rules = PlatformRules(identity_type="wechat_openid", consent_channel="wechat_oa", reply_window_hours=48,
                          window_sends=5, content_types=("text", "link", "image"))

    def validate_config(self, config: Any, secrets: Any) -> None:
        return None

    async def check_connection(self, account: Any) -> str:
        return "ok"

    async def send(self, account: Any, address: str, content: Any, *, idempotency_key: str) -> SendResult:
        return SendResult()


@contextmanager
def database(engine_name: str) -> Iterator[str]:
    """A migrated database of the bench's own."""
    if engine_name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="siyu-bench-") as folder:
            url = f"sqlite:///{folder}/bench.db"
            upgrade(url)
            yield url
        return
    with scratch_postgres("siyu_bench_kw") as url:
        yield url


def seed(session: Session) -> tuple[int, int]:
    from siyu.core import workspaces

    actor = Actor.cli("bench")
    ws = workspaces.create_workspace(session, actor, name="Bench keywords", timezone="Asia/Shanghai")
    session.flush()
    bind_workspace(session, ws.id)
    account = service.create_account(session, kind="wechat_oa", name="Bench OA", config={}, secrets={}, actor=actor)
    for i in range(RULES):
        # Rule 0 has the highest priority number, so it is tried last and is the one that matches.
        keywords.create_rule(session, values={
            "name": f"rule {i}", "match_type": ("contains", "exact", "regex")[i % 3],
            "keywords": ["价格"] if i == 0 else [f"词{i}", f"word{i}"] if i % 3 != 2 else [rf"^订单{i}\d+$"],
            "priority": RULES - i, "reply": {"text": "{{ nickname | default('朋友', true) }}，价格见菜单"},
        }, actor=actor)
    session.commit()
    return ws.id, account.id


def one(url_engine: Any, ws: int, account_id: int, n: int, side: str) -> float:
    """Receive one text message in its own transaction; seconds taken."""
    item = Inbound(dedupe_key=f"{side}-{n}", sender=f"o-{side}-{n % 200}", kind="text", text="请问价格多少",
                   external_id=f"{side}-{n}", nickname="小明")
    started = time.perf_counter()
    with Session(url_engine) as session:
        bind_workspace(session, ws)
        received = service.receive(session, service.get_account(session, account_id), item)
        session.commit()
    took = time.perf_counter() - started
    if side == "hooks" and received.reply is None:
        raise RuntimeError("the keyword rule did not answer")
    return took


@contextmanager
def hooks_off() -> Iterator[None]:
    saved = {name: service._hooks[name] for name in ("welcome", "keywords")}
    for name in saved:
        service.remove_receive_hook(name)
    try:
        yield
    finally:
        for name, (order, fn) in saved.items():
            service.on_receive(name, order=order)(fn)


@dataclass
class Result:
    engine: str
    hooks: list[float]
    raw: list[float]


def run(engine_name: str) -> Result:
    with database(engine_name) as url:
        engine = make_engine(url)
        with Session(engine) as session:
            ws, account_id = seed(session)
        times: dict[str, list[float]] = {"hooks": [], "raw": []}
        for start in range(0, MESSAGES, BLOCK):
            for n in range(start, start + BLOCK):
                times["hooks"].append(one(engine, ws, account_id, n, "hooks"))
            with hooks_off():
                for n in range(start, start + BLOCK):
                    times["raw"].append(one(engine, ws, account_id, n, "raw"))
        engine.dispose()
    return Result(engine_name, times["hooks"], times["raw"])


def matcher_only() -> float:
    """Microseconds per message of matcher.choose alone over RULES rules (the last one matching)."""
    rules = [matcher.Rule(i, ("contains", "exact", "regex")[i % 3],
                          ("价格",) if i == 0 else (f"词{i}", f"word{i}") if i % 3 != 2 else (rf"^订单{i}\d+$",),
                          RULES - i) for i in range(RULES)]
    at = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        matcher.choose(rules, "请问价格多少", at)
    return (time.perf_counter() - started) / rounds * 1e6


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def report(results: list[Result], micro: float) -> str:
    lines = [
        "# Benchmark: keyword auto-replies on the inbound path",
        "",
        f"`{'SCALE=full ' if SCALE == 'full' else ''}uv run python bench/bench_keywords.py` — {RULES} keyword "
        f"rules, {MESSAGES:,} text messages per side and engine, each received in its own committed "
        "transaction (dedupe, contact, archive, event, then the hooks). *With replies*: the welcome and "
        "keyword hooks registered, every message tried against every rule before the last one matches, "
        "a hit and `keyword.matched` recorded and the passive reply rendered. *Raw*: the same pipeline "
        f"with those hooks unregistered, alternating in blocks of {BLOCK} in the same run.",
        "",
        "| engine | with replies p50 | p99 | msgs/s | raw p50 | p99 | msgs/s | ratio (msgs/s with / raw) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        with_rate, raw_rate = len(r.hooks) / sum(r.hooks), len(r.raw) / sum(r.raw)
        lines.append(
            f"| {r.engine} | {pct(r.hooks, .5):.2f} ms | {pct(r.hooks, .99):.2f} ms | {with_rate:,.0f} | "
            f"{pct(r.raw, .5):.2f} ms | {pct(r.raw, .99):.2f} ms | {raw_rate:,.0f} | {with_rate / raw_rate:.2f} |")
    lines += [
        "",
        f"The matcher alone (`siyu.messaging.matcher.choose`, {RULES} rules, the last matching): "
        f"{micro:.1f} µs per message.",
        "",
        "Machine:",
        *machine(),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    resolver.install()
    base.load_adapters()  # the real channels first, so none replaces the stand-in later
    base.register_adapter(StandIn())
    assert {"welcome", "keywords"} <= set(service._hooks), "the messaging hooks register on import"
    results = [run("sqlite"), run("postgresql")]
    micro = matcher_only()
    doc = report(results, micro)
    OUT.write_text(doc, encoding="utf-8")
    print(doc)
    medians = [round(statistics.median(r.hooks) / statistics.median(r.raw), 2) for r in results]
    print(f"median latency with/raw per engine: {medians}")


if __name__ == "__main__":
    main()
