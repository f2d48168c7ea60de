"""WeCom callback handling through siyu: p50/p99 latency and requests/s, and the ratio to the bare loop.

One client POSTs encrypted `add_external_contact` callbacks, one at a time over a keep-alive connection,
to one uvicorn process serving `/hooks/wecom/<account>`: verify the signature, decrypt, parse with
defusedxml, then the whole inbound pipeline (dedupe receipt, contact and identity, address on the
account, consent granted, `channel.joined` event, the profile job) in one commit, answered "success".
The bare loop does, for the same number of other callbacks, what no handler can skip: verify + decrypt +
parse + insert the dedupe receipt and commit, straight through the driver.

    uv run python bench/bench_wecom_callbacks.py              # 1,000 callbacks per engine
    SCALE=full uv run python bench/bench_wecom_callbacks.py   # 10,000 callbacks per engine

Writes docs/benchmarks_wecom.md.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from _support import scratch_postgres
from bench_events import ROOT, machine, served
from defusedxml.ElementTree import fromstring
from sqlalchemy.orm import Session

sys.path.insert(0, str(ROOT))

from tests.servers.wecom import AES_KEY, CORP_ID, SECRET, TOKEN, add_external_contact_xml, callback_body

from siyu.channels import service as channels
from siyu.channels import wxcrypto
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.migrate import upgrade
from siyu.core.tenancy import bind_workspace

SCALE = os.environ.get("SCALE", "small")
CALLBACKS = {"small": 1_000, "full": 10_000}[SCALE]
OUT = ROOT / "docs" / "benchmarks_wecom.md"
RawInsert = Callable[[int, str], None]
NOTE = ("Where the difference goes (cProfile of the handler in-process): about 3 ms per callback is WeCom's "
        "own work (verify, decrypt, parse twice, the follow row); the rest is the shared inbound pipeline "
        "`channels.service.receive`: the contact upsert with its identity and `contact.created` event, the "
        "consent grant with its event, the `channel.joined` event and the subscribers' jobs each event queues.")


def prepare(url: str) -> tuple[int, int]:
    """Migrate; a workspace with a WeCom account; (workspace id, account id)."""
    from siyu.core import workspaces

    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        session = Session(bind=conn)
        ws = workspaces.create_workspace(session, Actor.cli("bench"), name="Bench WeCom")
        session.flush()
        bind_workspace(session, ws.id)
        account = channels.create_account(
            session, kind="wecom", name="Bench app", actor=Actor.cli("bench"),
            config={"corp_id": CORP_ID, "agent_id": "1000002", "api_base": "http://127.0.0.1:9"},
            secrets={"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY})
        session.flush()
        ids = (ws.id, account.id)
    engine.dispose()
    return ids


def callbacks(prefix: str) -> list[tuple[dict[str, str], bytes]]:
    """Encrypted, signed callbacks made before the clock starts (WeCom's work, not ours)."""
    return [callback_body(add_external_contact_xml(f"wm{prefix}{n:08d}", state="bench", welcome_code=f"WC{n}"))
            for n in range(CALLBACKS + 1)]


def open_callback(query: dict[str, str], body: bytes) -> str:
    """What the bare loop must do: parse, verify, decrypt, parse the event; the dedupe key."""
    encrypted = fromstring(body, forbid_dtd=True).findtext("Encrypt") or ""
    wxcrypto.check_signature(query["msg_signature"], TOKEN, query["timestamp"], query["nonce"], encrypted)
    event = fromstring(wxcrypto.decrypt(encrypted, AES_KEY, CORP_ID), forbid_dtd=True)
    return ":".join(event.findtext(k) or "" for k in ("ExternalUserID", "CreateTime", "Event", "ChangeType", "UserID"))


@dataclass
class Result:
    engine: str
    siyu: list[float]
    raw: list[float]

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self, name: str, values: list[float]) -> str:
        return (f"| {self.engine} | {name} | {len(values):,} | {self.pct(values, 0.5):.2f} | "
                f"{self.pct(values, 0.99):.2f} | {len(values) / sum(values):,.0f} |")


def run(engine_name: str, url: str, make_raw: Callable[[int, int], RawInsert]) -> Result:
    ws_id, account_id = prepare(url)
    raw_insert = make_raw(ws_id, account_id)
    ours, bare = callbacks("a"), callbacks("b")
    siyu_s: list[float] = []
    raw_s: list[float] = []
    with served(url) as client:
        for n, ((query, body), (raw_query, raw_body)) in enumerate(zip(ours, bare, strict=True)):
            t0 = time.perf_counter()
            client.request("POST", f"/hooks/wecom/{account_id}?{urlencode(query)}", body=body,
                           headers={"Content-Type": "text/xml"})
            response = client.getresponse()
            answer = response.read()
            t1 = time.perf_counter()
            if answer != b"success":
                raise SystemExit(f"{engine_name}: callback {n}: {response.status} {answer[:300]!r}")
            raw_insert(n, open_callback(raw_query, raw_body))
            t2 = time.perf_counter()
            if n:  # the first of each warms caches and imports up
                siyu_s.append(t1 - t0)
                raw_s.append(t2 - t1)
    return Result(engine_name, siyu_s, raw_s)


@contextmanager
def sqlite_database() -> Iterator[tuple[str, sqlite3.Connection]]:
    """A new SQLite file (its URL) and a raw connection to it in siyu's settings (WAL, autocommit)."""
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        try:
            yield f"sqlite:///{path}", conn
        finally:
            conn.close()


def bench_sqlite() -> Result:
    with sqlite_database() as (url, conn):

        def make_raw(ws: int, account: int) -> RawInsert:
            def insert(n: int, key: str) -> None:
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO channel_callback_receipts (workspace_id, account_id, dedupe_key, "
                             "received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (ws, account, key, now))
                conn.execute("COMMIT")

            return insert

        return run("SQLite", url, make_raw)


def bench_postgres() -> Result:
    with (scratch_postgres("siyu_bench_wecom") as url,
          psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn):

        def make_raw(ws: int, account: int) -> RawInsert:
            def insert(n: int, key: str) -> None:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO channel_callback_receipts (workspace_id, account_id, dedupe_key, "
                                "received_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                (ws, account, key, datetime.now(UTC)))
                conn.commit()

            return insert

        return run("PostgreSQL", url, make_raw)


def main() -> None:
    results = [bench_sqlite(), bench_postgres()]
    lines = [
        "# Benchmark: WeCom callbacks", "",
        f"`uv run python bench/bench_wecom_callbacks.py` (SCALE={SCALE}: {CALLBACKS:,} callbacks per engine), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", "",
        "siyu: one `add_external_contact` callback POSTed to `/hooks/wecom/<account>` over a keep-alive "
        "connection to one uvicorn process (verify, decrypt, parse, receipt, contact, identity, address, "
        "consent, `channel.joined` event, profile job, one commit, answer). Bare: verify + decrypt + parse "
        "+ insert the receipt and commit through the driver, no HTTP.", "",
        "| engine | path | callbacks | p50 ms | p99 ms | per second |", "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines += [r.row("siyu (HTTP, whole pipeline)", r.siyu), r.row("bare verify+decrypt+parse+insert", r.raw)]
    lines += ["", "| engine | siyu / bare (requests per second) |", "|---|---|"]
    for r in results:
        slower = statistics.median(r.siyu) / statistics.median(r.raw)
        lines.append(f"| {r.engine} | {sum(r.raw) / sum(r.siyu):.2f} ({slower:.1f}× the bare p50 latency) |")
    lines += ["", NOTE]
    lines += ["", "Machine:", "", *machine(), ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
