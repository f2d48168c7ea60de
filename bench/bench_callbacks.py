"""Official Account callbacks through the HTTP app against a bare verify + decrypt + parse + insert loop.

One client posts safe-mode (encrypted) callbacks one after another over a keep-alive connection to one
uvicorn process: one follow (`subscribe` from a new follower: a contact, consent, the profile job) for
every nine text messages from followers, each text answered with an encrypted passive reply by a receive
hook. The server does it all: size cap, timestamp, msg_signature, AES, defusedxml, dedupe, contact,
archive, event, hook, reply XML, encryption, commit. After each request the raw side does the bare
minimum for the same body: check the signature, decrypt, parse with defusedxml and insert one archive
row with its own commit (SQLite through sqlite3, PostgreSQL through psycopg), in another workspace of
the same table.

    uv run python bench/bench_callbacks.py              # 1,000 callbacks per engine
    SCALE=full uv run python bench/bench_callbacks.py   # 10,000 callbacks per engine

Writes docs/benchmarks_callbacks.md.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from bench_events import ROOT, machine, scratch_postgres, served
from sqlalchemy.orm import Session

from siyu.channels import wxcrypto
from siyu.channels.wechat_oa.xml import cdata
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace

SCALE = os.environ.get("SCALE", "small")
CALLBACKS = {"small": 1_000, "full": 10_000}[SCALE]
# Bodies are signed shortly before they are sent: the server refuses timestamps older than 5 minutes.
CHUNK = 500
OUT = ROOT / "docs" / "benchmarks_callbacks.md"
APP_ID, TOKEN, AES_KEY = "wxb11529c136998cb6", "pamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

RawHandle = Callable[[dict[str, str], bytes], None]


def create_app_with_reply() -> Any:
    """The app, with a receive hook that answers every text (as the keyword replies would)."""
    from siyu.app import create_app
    from siyu.channels import service

    @service.on_receive("bench-reply")
    def reply(session: Any, account: Any, item: Any, received: Any) -> dict[str, Any] | None:
        return {"type": "text", "text": "收到：" + item.text} if item.kind == "text" else None

    return create_app()


def push(n: int) -> str:
    """The n-th callback's XML: a follow from a new follower every 10th, else a text from a follower."""
    follower = f"oBench{n // 10:07d}"
    head = (f"<ToUserName>{cdata('gh_bench')}</ToUserName><FromUserName>{cdata(follower)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>")
    if n % 10 == 0:
        body = f"<MsgType>{cdata('event')}</MsgType><Event>{cdata('subscribe')}</Event>"
    else:
        body = (f"<MsgType>{cdata('text')}</MsgType><Content>{cdata(f'第{n}条消息：价格多少？')}</Content>"
                f"<MsgId>{6_000_000_000_000_000_000 + n}</MsgId>")
    return f"<xml>{head}{body}</xml>"


def sealed(n: int) -> tuple[dict[str, str], bytes]:
    """(query, body) of the n-th callback, encrypted and signed as the platform does."""
    ts, nonce = str(int(time.time())), secrets.token_hex(5)
    ciphertext = wxcrypto.encrypt(push(n), AES_KEY, APP_ID)
    query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes", "signature": wxcrypto.signature(TOKEN, ts, nonce),
             "msg_signature": wxcrypto.signature(TOKEN, ts, nonce, ciphertext)}
    body = f"<xml><ToUserName>{cdata('gh_bench')}</ToUserName><Encrypt>{cdata(ciphertext)}</Encrypt></xml>"
    return query, body.encode()


def prepare(url: str) -> tuple[int, int, int]:
    """Migrate; the Official Account (its workspace), and the raw side's workspace: (account, raw ws, raw account)."""
    from siyu.channels import service
    from siyu.core import workspaces

    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        session = Session(bind=conn)
        actor = Actor.cli("bench")
        ws = workspaces.create_workspace(session, actor, name="Bench OA")
        raw = workspaces.create_workspace(session, actor, name="Bench raw")
        session.flush()
        ids = []
        for workspace in (ws, raw):
            bind_workspace(session, workspace.id)
            account = service.create_account(
                session, kind="wechat_oa", name="Bench OA", actor=actor,
                config={"app_id": APP_ID, "mode": "safe", "api_base": "http://127.0.0.1:9"},
                secrets={"app_secret": "bench", "token": TOKEN, "encoding_aes_key": AES_KEY})
            session.flush()
            ids.append(account.id)
        raw_id = raw.id
    engine.dispose()
    return ids[0], raw_id, ids[1]


def bare(insert: Callable[[dict[str, str]], None]) -> RawHandle:
    """The minimum a callback needs: signature, AES, safe parse, one archive row."""
    from siyu.channels.wechat_oa import xml

    def handle(query: dict[str, str], body: bytes) -> None:
        envelope = xml.parse(body)["Encrypt"]
        wxcrypto.check_signature(query["msg_signature"], TOKEN, query["timestamp"], query["nonce"], envelope)
        insert(xml.parse(wxcrypto.decrypt(envelope, AES_KEY, APP_ID).encode()))

    return handle


@dataclass
class Result:
    engine: str
    latencies: list[float]
    raw_seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / sum(self.latencies)

    @property
    def raw_rate(self) -> float:
        return len(self.latencies) / self.raw_seconds

    def quantile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(q * 100) - 1] * 1000


def run(engine_name: str, url: str, make_raw: Callable[[int, int], RawHandle]) -> Result:
    account_id, raw_ws, raw_account = prepare(url)
    raw = make_raw(raw_ws, raw_account)
    latencies: list[float] = []
    raw_s = 0.0
    with served(url, "bench_callbacks:create_app_with_reply") as client:
        # Callback 0 warms both paths up (imports, statement caches) and is not counted.
        for start in range(0, CALLBACKS + 1, CHUNK):
            chunk = [sealed(n) for n in range(start, min(start + CHUNK, CALLBACKS + 1))]
            for i, (query, body) in enumerate(chunk):
                n = start + i
                path = f"/hooks/wechat-oa/{account_id}?{urlencode(query)}"
                t0 = time.perf_counter()
                client.request("POST", path, body=body, headers={"Content-Type": "text/xml"})
                response = client.getresponse()
                payload = response.read()
                t1 = time.perf_counter()
                expected = b"<xml><Encrypt>" if n % 10 else b"success"
                if response.status != 200 or not payload.startswith(expected):
                    raise SystemExit(f"{engine_name}: callback {n}: {response.status} {payload[:300]!r}")
                raw(query, body)
                t2 = time.perf_counter()
                if n:
                    latencies.append(t1 - t0)
                    raw_s += t2 - t1
    return Result(engine_name, latencies, raw_s)


def _row(ws: int, account: int, fields: dict[str, str]) -> tuple[Any, ...]:
    kind = fields.get("MsgType", "")
    content = json.dumps(fields, ensure_ascii=False)
    return (ws, account, "wechat_oa", "in", kind[:16], fields.get("Content", ""), content, fields.get("FromUserName"),
            "service", "received", fields.get("MsgId"))


COLUMNS = ("workspace_id, account_id, channel, direction, msg_type, text, content, address, purpose, status, "
           "external_id, created_at")


def bench_sqlite() -> Result:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")

        def make_raw(ws: int, account: int) -> RawHandle:
            def insert(fields: dict[str, str]) -> None:
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
                conn.execute(f"INSERT INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (*_row(ws, account, fields), now))
                conn.commit()

            return bare(insert)

        try:
            return run("SQLite", f"sqlite:///{path}", make_raw)
        finally:
            conn.close()


def bench_postgres() -> Result:
    with scratch_postgres() as sa_url:
        upgrade(sa_url)
        conn = psycopg.connect(sa_url.replace("postgresql+psycopg://", "postgresql://"))

        def make_raw(ws: int, account: int) -> RawHandle:
            assert conn is not None

            def insert(fields: dict[str, str]) -> None:
                conn.execute(f"INSERT INTO messages ({COLUMNS}) VALUES "
                             "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                             (*_row(ws, account, fields), datetime.now(UTC)))
                conn.commit()

            return bare(insert)

        try:
            return run("PostgreSQL", sa_url, make_raw)
        finally:
            conn.close()


def main() -> None:
    results = [bench_sqlite(), bench_postgres()]
    lines = [
        "# Official Account callbacks: HTTP app vs bare loop",
        "",
        f"`SCALE={SCALE} uv run python bench/bench_callbacks.py` — {CALLBACKS:,} safe-mode callbacks per engine "
        "(one follow for every nine texts, each text answered with an encrypted passive reply), posted one "
        "after another to one uvicorn process. After each, the bare loop checks the same body's signature, "
        "decrypts, parses (defusedxml) and inserts one archive row with its commit. The ratio is the app's "
        "callbacks/s over the bare loop's.",
        "",
        "| engine | callbacks | p50 ms | p99 ms | callbacks/s | bare loop/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.engine} | {len(r.latencies):,} | {r.quantile(0.5):.1f} | {r.quantile(0.99):.1f} | "
                     f"{r.rate:,.0f} | {r.raw_rate:,.0f} | {r.rate / r.raw_rate:.2f} |")
    lines += ["", f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on:", "", *machine(), ""]
    lines += [
        "What the app does beyond the bare loop, per callback: the timestamp and size checks, the account's",
        "lookup, the dedupe receipt, the contact's lookup by openid (and on a follow: a new contact, its",
        "identity, consent, the address row, the profile job), the archive row, the `message.received` or",
        "`channel.joined` event, the receive hooks, the reply's XML, encryption and signature, and the",
        "framework's routing and thread hops. WeChat's deadline is 5 s; p99 is far inside it.",
        "",
        "## Where a callback's time goes",
        "",
        "Timers around the parts of `callbacks.handle`, in process on SQLite (medians of 270 callbacks of",
        "the same mix, 2026-11-30 at a load average of 11 on this shared 2-core machine):",
        "",
        "| ms per callback | SQLite |",
        "|---|---:|",
        "| verify + decrypt + parse (size and timestamp checks, msg_signature, AES, defusedxml twice) | 0.2 |",
        "| `channels.service.receive` (dedupe, contact upsert, address, archive, event, hooks) | 14.3 |",
        "| the passive reply kept in the archive as sent, with its `message.sent` event | 6.6 |",
        "| the rest: account lookup, reply XML, its encryption and signature, window, profile job | 5.0 |",
        "| commit | 0.3 |",
        "| in process, all | 26.4 |",
        "",
        "The protocol work is a rounding error: the time is the pipeline's ORM statements (about fifteen a",
        "callback, two `record_event` calls with their person resolution among them) and, through HTTP, the",
        "thread hops on a loaded machine. That is where a faster callback path would start (one Core insert",
        "of the receipt, message and event each); the bare loop writes one row, so the ratio stays small.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
