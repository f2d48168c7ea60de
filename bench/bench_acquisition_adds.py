"""Adds per second through a WeCom channel code, on PostgreSQL, and the ratio to the bare decrypt loop.

One client POSTs encrypted `add_external_contact` callbacks carrying a channel code's state, one at a time
over a keep-alive connection, to one uvicorn process serving `/hooks/wecom/<account>`: verify the
signature, decrypt, parse, the inbound pipeline (receipt, contact, identity, address, consent,
`channel.joined`), then acquisition's hook (the code found by its state, the arrival, the first and
latest touch, the owner assigned to the member the person added, `acquisition.arrived`, a member-list
check) and the welcome: the code's own welcome looked up and queued on the priority path, answered
"success". The code has 10 staff members (round robin, no caps, so the member list never changes and no
WeCom rewrite is queued); adds name each member in turn. WeCom is the local test server
(`tests/servers/wecom.py`), which receives the contact way and the welcomes.

The bare loop does, for the same number of other callbacks, what no handler can skip: verify + decrypt +
parse + insert the dedupe receipt and commit, straight through the driver.

    uv run python bench/bench_acquisition_adds.py              # 500 adds
    SCALE=full uv run python bench/bench_acquisition_adds.py   # 5,000 adds

Writes docs/benchmarks_acquisition_adds.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import psycopg
from _support import scratch_postgres
from bench_events import ROOT, machine, served
from bench_wecom_callbacks import open_callback
from sqlalchemy import func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(ROOT))

from tests.servers import serve
from tests.servers.wecom import AES_KEY, CORP_ID, SECRET, TOKEN, FakeWeCom, add_external_contact_xml, callback_body

from siyu.acquisition import service as acquisition
from siyu.acquisition.models import Arrival
from siyu.channels import service as channels
from siyu.contacts import staff as staff_service
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace

SCALE = os.environ.get("SCALE", "small")
ADDS = {"small": 500, "full": 5_000}[SCALE]
STAFF = 10
OUT = ROOT / "docs" / "benchmarks_acquisition_adds.md"
ACTOR = Actor.cli("bench")


def prepare(url: str, wecom_url: str) -> tuple[int, int, str, list[str]]:
    """A workspace, a WeCom account on the local server, 10 staff, a source and a code of the 10:
    (workspace id, account id, the code's state, the staff userids)."""
    from siyu.core import workspaces

    engine = make_engine(url)
    with engine.begin() as conn:
        session = Session(bind=conn)
        ws = workspaces.create_workspace(session, ACTOR, name="Bench acquisition")
        session.flush()
        bind_workspace(session, ws.id)
        account = channels.create_account(
            session, kind="wecom", name="Bench app", actor=ACTOR,
            config={"corp_id": CORP_ID, "agent_id": "1000002", "api_base": wecom_url},
            secrets={"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY})
        userids = [f"staff{n:02d}" for n in range(STAFF)]
        members = [{"staff_id": staff_service.create_staff(session, name=f"Staff {u}", wecom_userid=u,
                                                           actor=ACTOR).id} for u in userids]
        source = acquisition.create_source(session, name="Parcel cards", type="parcel_card", currency="CNY",
                                           cost_model={"kind": "per_unit", "unit_cost": 5}, actor=ACTOR)
        code = acquisition.create_code(session, name="Parcel card QR", source_id=source.id, kind="wecom",
                                       account_id=account.id, state="bench-parcel", members=members,
                                       welcome={"text": "Thanks for scanning the parcel card!"}, actor=ACTOR)
        session.flush()
        ids = (ws.id, account.id, code.state, userids)
    engine.dispose()
    return ids


def check(url: str, ws_id: int, fake: FakeWeCom) -> tuple[int, int, dict[str, int], int]:
    """(arrivals, arrivals with an owner, the welcomes by status, welcomes WeCom received) after the run."""
    from siyu.conversations.models import Message

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            bind_workspace(session, ws_id)
            arrivals = session.execute(select(func.count()).select_from(Arrival)).scalar_one()
            owned = session.execute(select(func.count()).select_from(Arrival)
                                    .where(Arrival.staff_id.is_not(None))).scalar_one()
            welcomes = dict(session.execute(select(Message.status, func.count()).where(
                Message.direction == "out").group_by(Message.status)).tuples().all())
    finally:
        engine.dispose()
    return int(arrivals), int(owned), {str(k): int(v) for k, v in welcomes.items()}, len(fake.welcomes)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def row(name: str, values: list[float]) -> str:
    return (f"| {name} | {len(values):,} | {pct(values, 0.5):.2f} | {pct(values, 0.99):.2f} | "
            f"{len(values) / sum(values):,.1f} |")


def main() -> None:
    fake = FakeWeCom()
    with (serve(fake.app()) as wecom_url, scratch_postgres("siyu_bench_acq") as url,
          psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn):
        ws_id, account_id, state, userids = prepare(url, wecom_url)
        siyu_s: list[float] = []
        raw_s: list[float] = []
        with served(url) as client:
            for n in range(ADDS + 1):
                # Made (encrypted) just before the clock starts: a welcome code lives 20 s from the event's
                # CreateTime, so callbacks made all at the start would expire during a long run.
                query, body = callback_body(add_external_contact_xml(
                    f"wmA{n:08d}", userid=userids[n % STAFF], state=state, welcome_code=f"WC{n}"))
                raw_query, raw_body = callback_body(add_external_contact_xml(
                    f"wmB{n:08d}", userid=userids[n % STAFF], state=state))
                t0 = time.perf_counter()
                client.request("POST", f"/hooks/wecom/{account_id}?{urlencode(query)}", body=body,
                               headers={"Content-Type": "text/xml"})
                response = client.getresponse()
                answer = response.read()
                t1 = time.perf_counter()
                if answer != b"success":
                    raise SystemExit(f"add {n}: {response.status} {answer[:300]!r}")
                key = open_callback(raw_query, raw_body)
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO channel_callback_receipts (workspace_id, account_id, dedupe_key, "
                                "received_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                (ws_id, account_id, key, datetime.now(UTC)))
                conn.commit()
                t2 = time.perf_counter()
                if n:  # the first of each warms caches and imports up
                    siyu_s.append(t1 - t0)
                    raw_s.append(t2 - t1)
            time.sleep(2)  # the last welcomes leave after their commit
        arrivals, owned, queued, welcomes = check(url, ws_id, fake)
    if arrivals != ADDS + 1 or owned != arrivals or sum(queued.values()) != arrivals:
        raise SystemExit(f"expected {ADDS + 1} owned arrivals and welcomes, found {arrivals} ({owned} owned), "
                         f"welcomes {queued}")
    ratio = (len(raw_s) / sum(raw_s)) / (len(siyu_s) / sum(siyu_s))
    lines = [
        "# Benchmark: adds through a WeCom channel code", "",
        f"`uv run python bench/bench_acquisition_adds.py` (SCALE={SCALE}: {ADDS:,} adds), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, PostgreSQL.", "",
        f"siyu: one `add_external_contact` callback carrying the code's state POSTed to "
        f"`/hooks/wecom/<account>` over a keep-alive connection to one uvicorn process: verify, decrypt, "
        f"parse, the inbound pipeline (receipt, contact, identity, address, consent, `channel.joined`), the "
        f"arrival (code by state, arrival row, first and latest touch, owner = the member added, "
        f"`acquisition.arrived`, member-list check) and the code's welcome queued on the priority path, one "
        f"commit, answered. The code has {STAFF} staff members; adds name each in turn. Bare: verify + "
        f"decrypt + parse + insert the receipt and commit through the driver, no HTTP.", "",
        "| path | adds | p50 ms | p99 ms | per second |", "|---|---|---|---|---|",
        row("siyu (HTTP, callback to welcome queued)", siyu_s), row("bare verify+decrypt+parse+insert", raw_s), "",
        f"siyu / bare: **{1 / ratio:.2f}** of the bare loop's rate ({ratio:.1f}× slower; "
        f"{statistics.median(siyu_s) / statistics.median(raw_s):.1f}× the bare p50 latency).", "",
        f"Checked after the run: {arrivals:,} arrivals, every one with its owner, and as many welcomes queued "
        f"(by status: {', '.join(f'{k} {v:,}' for k, v in sorted(queued.items()))}); the urgent runner sends "
        f"them after each commit, and the local WeCom server received {welcomes:,}.", "",
        "What the time includes beyond `bench_wecom_callbacks.py` (the same callback with no code behind its "
        "state, see [benchmarks_wecom.md](benchmarks_wecom.md)): the arrival's rows and event, the owner "
        "change with its event, the welcome lookup, and the welcome itself — the urgent runner sends it to "
        "WeCom after the commit, on the same connection, before the next add is read. Not profiled yet.", "",
        "Machine:", "", *machine(), "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
