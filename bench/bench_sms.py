"""SMS out and back on PostgreSQL: sends through the outbox and receipts through the push hook, each
against the bare loop doing the same platform work in the same run.

    uv run python bench/bench_sms.py              # SCALE=small: 1,000 messages
    SCALE=full uv run python bench/bench_sms.py   # 20,000 messages

Creates a database of its own next to SIYU_BENCH_PG_URL's (dropped at the end) and a local Aliyun
(tests/servers/aliyun_sms.py, which verifies every signature) in this process.
- *send*: `queue_send` for every contact (one transaction), then one in-process worker delivering them
  (claim, external-start mark, signed SendSms, archive update and `message.sent` event per message);
  compared with the adapter's raw rate: the same signed SendSms calls in a loop, no database.
- *receipts*: SmsReport pushes of 100 receipts POSTed to siyu (uvicorn in this process) at
  `/hooks/sms/{account}/report`; compared with `update_delivery` for the same receipts in a bare loop.
Prints markdown and writes docs/benchmarks_sms.md. Never run in CI.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert, select

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
TOKEN = "bench-push-token-0123"
PUSH = 100


def setup(url: str, n: int) -> tuple[int, int, list[int]]:
    """Migrate; a workspace with an SMS account and n contacts with phones."""
    from siyu.channels import service as channels
    from siyu.contacts.models import Contact, Identity
    from siyu.core import workspaces
    from siyu.core.audit import Actor
    from siyu.core.db import session_scope
    from siyu.core.migrate import upgrade
    from siyu.core.tenancy import bind_workspace

    upgrade(url)
    actor = Actor.cli("bench")
    with session_scope() as session:
        ws = workspaces.create_workspace(session, actor, name="Bench SMS")
        session.flush()
        bind_workspace(session, ws.id)
        account = channels.create_account(
            session, kind="sms", name="Aliyun", actor=actor,
            config={"access_key_id": "LTAI-test", "sign_name": "思域", "endpoint": os.environ["BENCH_ALIYUN"]},
            secrets={"access_key_secret": "test-secret", "push_token": TOKEN})
        phones = [f"+86139{i:08d}" for i in range(n)]
        conn = session.connection()
        conn.execute(insert(Contact), [{"workspace_id": ws.id, "phone": p, "attributes": {}} for p in phones])
        ids = list(conn.execute(select(Contact.id).where(Contact.workspace_id == ws.id).order_by(Contact.id))
                   .scalars())
        conn.execute(insert(Identity), [{"workspace_id": ws.id, "contact_id": c, "type": "phone", "value": p}
                                        for c, p in zip(ids, phones, strict=True)])
        return ws.id, account.id, ids


def bench_send(workspace_id: int, account_id: int, ids: list[int]) -> tuple[float, float]:
    """(queued/s, delivered/s through the worker)."""
    from siyu.channels import service as channels
    from siyu.core import worker
    from siyu.core.db import session_scope
    from siyu.core.tenancy import bind_workspace

    content = {"type": "sms", "template_code": "SMS_1", "params": {"code": "1234"}, "text": "验证码1234"}
    started = time.perf_counter()
    with session_scope() as session:
        bind_workspace(session, workspace_id)
        account = channels.get_account(session, account_id)
        for cid in ids:
            channels.queue_send(session, account=account, contact_id=cid, content=content, origin="bench",
                                idempotency_key=f"bench:{cid}")
    queued = time.perf_counter() - started
    started = time.perf_counter()
    while worker.run_batch(worker_id="bench", batch_size=50, lease_seconds=120):
        pass
    delivered = time.perf_counter() - started
    return len(ids) / queued, len(ids) / delivered


def bench_raw_send(n: int) -> float:
    """The adapter's raw rate: the same signed SendSms calls, one after the other, no database."""
    from siyu.channels.service import run_async
    from siyu.channels.sms.aliyun import AliyunSms

    provider = AliyunSms(access_key_id="LTAI-test", access_key_secret="test-secret",
                         endpoint=os.environ["BENCH_ALIYUN"])

    async def loop() -> None:
        for i in range(n):
            await provider.send(f"+86139{i:08d}", "思域", "SMS_1", {"code": "1234"}, f"raw:{i}")

    started = time.perf_counter()
    run_async(loop())
    return n / (time.perf_counter() - started)


def receipts(fake) -> list[dict]:
    return [fake.report(s) for s in fake.sent if s["OutId"].startswith("msg:")]


def bench_receipts(siyu_url: str, account_id: int, items: list[dict]) -> float:
    """Receipts/s POSTed to the hook in pushes of 100."""
    bodies = [json.dumps(items[i:i + PUSH], ensure_ascii=False).encode() for i in range(0, len(items), PUSH)]
    with httpx.Client(base_url=siyu_url, timeout=60) as client:
        started = time.perf_counter()
        for body in bodies:
            r = client.post(f"/hooks/sms/{account_id}/report?token={TOKEN}", content=body)
            r.raise_for_status()
        return len(items) / (time.perf_counter() - started)


def bench_raw_receipts(workspace_id: int, account_id: int, items: list[dict]) -> float:
    """`update_delivery` for the same receipts (back to `sent` first), 100 per transaction."""
    from sqlalchemy import update

    from siyu.channels import service as channels
    from siyu.conversations.models import Message
    from siyu.core.db import session_scope
    from siyu.core.tenancy import bind_workspace

    with session_scope() as session:
        session.execute(update(Message).values(status="sent", delivered_at=None))
    started = time.perf_counter()
    for i in range(0, len(items), PUSH):
        with session_scope() as session:
            bind_workspace(session, workspace_id)
            account = channels.get_account(session, account_id)
            for item in items[i:i + PUSH]:
                channels.update_delivery(session, account, item["biz_id"], "delivered")
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    from bench_events import machine, scratch_postgres
    from tests.servers import serve
    from tests.servers.aliyun_sms import FakeAliyunSms

    from siyu.core import db
    from siyu.settings import get_settings

    scale = os.environ.get("SCALE", "small")
    n = 20_000 if scale == "full" else 1_000
    fake = FakeAliyunSms()
    with scratch_postgres() as url:
        os.environ["SIYU_DATABASE_URL"] = url
        for cached in (get_settings, db.get_engine, db.get_sessionmaker):
            cached.cache_clear()
        from siyu.app import create_app

        with serve(fake.app()) as aliyun_url, serve(create_app()) as siyu_url:
            os.environ["BENCH_ALIYUN"] = aliyun_url
            workspace_id, account_id, ids = setup(url, n)
            queued, delivered = bench_send(workspace_id, account_id, ids)
            raw_send = bench_raw_send(n)
            items = receipts(fake)
            assert len(items) == n, f"{len(items)} of {n} messages reached the local Aliyun"
            hook = bench_receipts(siyu_url, account_id, items)
            raw_hook = bench_raw_receipts(workspace_id, account_id, items)
        db.get_engine().dispose()
    lines = [
        "## SMS",
        "",
        f"SCALE={scale}: {n:,} messages on PostgreSQL, {datetime.now(UTC):%Y-%m-%d}. "
        "`uv run python bench/bench_sms.py`.",
        "",
        *machine(),
        "",
        "The local Aliyun (which checks every signature) and siyu's HTTP server run in the benchmark's own "
        "process, so they share its interpreter with the worker: absolute figures are a floor.",
        "",
        "| measure | per second | raw, same run | ratio |",
        "|---|---:|---:|---:|",
        f"| queue_send (archive row + outbox job, one transaction) | {queued:,.0f} | | |",
        f"| delivered by one worker vs signed SendSms in a loop | {delivered:,.0f} | {raw_send:,.0f} | "
        f"{delivered / raw_send:.2f} |",
        f"| receipts through `/hooks/sms/{{account}}/report` vs `update_delivery` loop | {hook:,.0f} | "
        f"{raw_hook:,.0f} | {hook / raw_hook:.2f} |",
        "",
    ]
    text_out = "\n".join(lines)
    print(text_out)
    (ROOT / "docs" / "benchmarks_sms.md").write_text(text_out)


if __name__ == "__main__":
    main()
