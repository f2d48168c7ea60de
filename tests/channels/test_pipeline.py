"""The one inbound pipeline (`receive`) and the one outbound path (`queue_send` → deliver), through an
adapter the test registers: dedupe, contacts, consent, archive, events, hooks, consent refusal, retries."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from siyu.channels import base, service
from siyu.channels.base import ChannelError, Inbound, PlatformRules, SendResult
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core import clock, jobs
from siyu.core.audit import Actor
from siyu.core.models import Event, Job
from siyu.core.tenancy import bind_workspace, bound_workspace

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


class Recording:
    """An adapter that records its sends and fails as told (the pipeline's contract, not a channel)."""

    kind = "recording"
    rules = PlatformRules(identity_type="wechat_openid", consent_channel="wechat_oa", content_types=("text",))
    accepts_idempotency_key = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str]] = []
        self.fail_with: list[ChannelError] = []
        self.on_send: Any = None

    def validate_config(self, config, secrets) -> None:
        return None

    async def check_connection(self, account) -> str:
        return "ok"

    async def send(self, account, address, content, *, idempotency_key) -> SendResult:
        if self.on_send is not None:
            self.on_send()
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append((address, dict(content), idempotency_key))
        return SendResult(external_id=f"ext-{len(self.sent)}")


@pytest.fixture
def adapter():
    a = Recording()
    base.register_adapter(a)
    yield a
    base._ADAPTERS.pop("recording", None)


@pytest.fixture
def account(db, ws, adapter):
    return service.create_account(db, kind="recording", name="Shop OA", config={}, secrets={"token": "t"},
                                  actor=ACTOR)


def joined(openid: str = "o-1", key: str = "k1") -> Inbound:
    return Inbound(dedupe_key=key, sender=openid, kind="event", event="joined", details={"scene": "poster"},
                   nickname="小明", extra_identities=(("wechat_unionid", "u-1"),))


def test_a_follow_makes_a_contact_grants_consent_and_is_processed_once(db, account):
    first = service.receive(db, account, joined())
    again = service.receive(db, account, joined())

    assert not first.duplicate
    assert again.duplicate
    contact = contacts.get_contact(db, first.contact_id)
    assert contact.nickname == "小明"
    assert contacts.may_contact(db, contact, "wechat_oa")
    assert service.address_of(db, account, contact.id) == "o-1"
    events = db.execute(select(Event.type, Event.properties).where(Event.type.like("channel.%"))).all()
    assert [(t, p["scene"]) for t, p in events] == [("channel.joined", "poster")]


def test_received_says_whether_the_item_made_the_contact(db, account):
    first = service.receive(db, account, joined())
    later = service.receive(db, account, Inbound(dedupe_key="m-later", sender="o-1", kind="text", text="hi"))

    assert (first.created, later.created) == (True, False)
    assert later.contact_id == first.contact_id


def test_a_message_is_archived_and_hooks_choose_the_passive_reply(db, account):
    seen: list[str] = []

    @service.on_receive("test-echo")
    def echo(session, acc, item, received):
        seen.append(item.text)
        return {"type": "text", "text": "you said " + item.text} if item.kind == "text" else None

    try:
        service.receive(db, account, joined())
        got = service.receive(db, account, Inbound(dedupe_key="m1", sender="o-1", kind="text", text="价格"))
    finally:
        service.remove_receive_hook("test-echo")
    message = service.get_message(db, got.message_id)
    assert (message.direction, message.text, message.contact_id) == ("in", "价格", got.contact_id)
    assert got.reply == {"type": "text", "text": "you said 价格"}
    assert seen == ["", "价格"]


def test_queue_send_sends_once_through_the_worker(db, account, adapter, run_jobs):
    got = service.receive(db, account, joined())
    content = {"type": "text", "text": "欢迎"}
    first = service.queue_send(db, account=account, contact_id=got.contact_id, content=content, origin="test",
                               idempotency_key="welcome:1")
    second = service.queue_send(db, account=account, contact_id=got.contact_id, content=content, origin="test",
                                idempotency_key="welcome:1")
    assert first.id == second.id
    assert first.status == "queued"
    run_jobs()
    run_jobs()
    assert [(a, c["text"]) for a, c, _ in adapter.sent] == [("o-1", "欢迎")]
    message = service.get_message(db, first.id)
    assert (message.status, message.external_id) == ("sent", "ext-1")
    assert db.execute(select(Event).where(Event.type == "message.sent")).scalar_one().contact_id == got.contact_id


def test_no_consent_means_skipped_with_the_reason_and_nothing_queued(db, account, run_jobs, adapter):
    got = service.receive(db, account, joined())
    service.receive(db, account, Inbound(dedupe_key="k2", sender="o-1", kind="event", event="left"))
    message = service.queue_send(db, account=account, contact_id=got.contact_id, content={"text": "hi"},
                                 origin="test", idempotency_key="b:1", purpose="marketing")
    assert (message.status, message.error) == ("skipped", "consent:withdrawn")
    assert run_jobs() == 0
    assert adapter.sent == []


def test_a_retryable_error_retries_and_a_final_one_fails_the_message(db, account, adapter, run_jobs, frozen_now):
    got = service.receive(db, account, joined())
    adapter.fail_with = [ChannelError("45009", "frequency limit", retryable=True)]
    m1 = service.queue_send(db, account=account, contact_id=got.contact_id, content={"text": "a"}, origin="t",
                            idempotency_key="a")
    run_jobs()
    assert service.get_message(db, m1.id).status == "queued"
    assert service.get_account(db, account.id).last_error == "45009: frequency limit"
    frozen_now.advance(seconds=3600)
    run_jobs()
    assert service.get_message(db, m1.id).status == "sent"

    adapter.fail_with = [ChannelError("40003", "invalid openid")]
    m2 = service.queue_send(db, account=account, contact_id=got.contact_id, content={"text": "b"}, origin="t",
                            idempotency_key="b")
    run_jobs()
    failed = service.get_message(db, m2.id)
    assert (failed.status, failed.error) == ("failed", "40003: invalid openid")
    assert service.get_account(db, account.id).last_error == "40003: invalid openid"
    assert db.execute(select(Job.status).where(Job.id == failed.job_id)).scalar_one() == "done"


def test_a_claimed_batch_sends_per_workspace_and_a_failure_retries_alone(db, account, adapter, run_jobs,
                                                                           frozen_now, make_workspace):
    """The worker hands a claimed batch of deliver jobs to the batch handler, one workspace at a time."""
    assert jobs.handler_for(service.DELIVER).many is not None
    got = service.receive(db, account, joined())
    here = [service.queue_send(db, account=account, contact_id=got.contact_id, content={"text": f"a{i}"},
                               origin="t", idempotency_key=f"a{i}") for i in range(3)]
    home = bound_workspace(db)
    other = make_workspace()
    bind_workspace(db, other.id)
    account_b = service.create_account(db, kind="recording", name="Other OA", config={}, secrets={"token": "t"},
                                       actor=ACTOR)
    got_b = service.receive(db, account_b, joined("o-2", "kb"))
    there = [service.queue_send(db, account=account_b, contact_id=got_b.contact_id, content={"text": f"b{i}"},
                                origin="t", idempotency_key=f"b{i}") for i in range(2)]
    adapter.fail_with = [ChannelError("45009", "frequency limit", retryable=True)]

    run_jobs()

    assert [(a, c["text"]) for a, c, _ in adapter.sent] == [("o-1", "a1"), ("o-1", "a2"), ("o-2", "b0"),
                                                            ("o-2", "b1")]
    assert [service.get_message(db, m.id).status for m in there] == ["sent", "sent"]
    bind_workspace(db, home)
    assert [service.get_message(db, m.id).status for m in here] == ["queued", "sent", "sent"]
    assert service.get_account(db, account.id).last_error == "45009: frequency limit"
    frozen_now.advance(seconds=3600)
    run_jobs()
    assert [service.get_message(db, m.id).status for m in here] == ["sent"] * 3
    assert len(adapter.sent) == 5
    for workspace, contact_id, messages in ((home, got.contact_id, here), (other.id, got_b.contact_id, there)):
        bind_workspace(db, workspace)
        sent = db.execute(select(Event.contact_id, Event.properties).where(Event.type == "message.sent")).all()
        assert sorted(p["message_id"] for _, p in sent) == sorted(m.id for m in messages)
        assert {c for c, _ in sent} == {contact_id}


def test_a_batch_starts_no_send_once_its_lease_runs_short(db, account, adapter, frozen_now):
    got = service.receive(db, account, joined())
    made = [service.queue_send(db, account=account, contact_id=got.contact_id, content={"text": f"m{i}"},
                               origin="t", idempotency_key=f"m{i}") for i in range(3)]
    # Each send takes the platform 25 s: with a 60 s lease, the third would start inside the last 15.
    adapter.on_send = lambda: frozen_now.advance(seconds=25)
    lease_until = clock.now() + timedelta(seconds=60)
    ctxs = [jobs.JobContext(m.job_id, bound_workspace(db), service.DELIVER, f"msg:{m.id}", 1, {"message_id": m.id},
                            lease_until) for m in made]

    answers = service._deliver_many(db, ctxs)

    assert [c["text"] for _, c, _ in adapter.sent] == ["m0", "m1"]
    assert [type(a).__name__ for a in answers] == ["dict", "dict", "NotStarted"]
    assert [m.status for m in made] == ["sent", "sent", "queued"]


def test_receipts_move_status_forward_only(db, account, run_jobs):
    got = service.receive(db, account, joined())
    m = service.queue_send(db, account=account, contact_id=got.contact_id, content={"text": "a"}, origin="t",
                           idempotency_key="r")
    run_jobs()
    assert service.update_delivery(db, account, "ext-1", "clicked") is not None
    service.update_delivery(db, account, "ext-1", "delivered")
    message = db.execute(select(Message).where(Message.id == m.id)).scalar_one()
    assert message.status == "clicked"
    assert message.delivered_at is None


def test_a_webhook_account_posts_signed_messages_to_a_local_endpoint(db, ws, run_jobs, frozen_now):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from siyu.channels import webhook
    from tests.servers import serve

    got: list[tuple[dict[str, Any], bool]] = []
    answers = [503, 200]

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()
        ok = webhook.verify("s" * 20, request.headers["X-Siyu-Timestamp"], body, request.headers["X-Siyu-Signature"],
                            now=clock.now().timestamp())
        got.append((await request.json(), ok))
        status = answers.pop(0)
        return JSONResponse({"id": "remote-1"} if status == 200 else {}, status_code=status)

    with serve(Starlette(routes=[Route("/in", endpoint, methods=["POST"])])) as base_url:
        account = service.create_account(db, kind="webhook", name="App", config={"url": base_url + "/in"},
                                         secrets={"secret": "s" * 20}, actor=ACTOR)
        contact = contacts.create_contact(db, fields={"name": "A"}, actor=ACTOR)
        message = service.queue_send(db, account=account, contact_id=contact.id, content={"text": "hi"},
                                     origin="test", idempotency_key="w1")
        run_jobs()  # 503: retried later
        assert service.get_message(db, message.id).status == "queued"
        frozen_now.advance(seconds=60)  # the first backoff is under a minute
        run_jobs()
    assert [(p["contact_id"], p["content"]["text"], ok) for p, ok in got] == [(contact.id, "hi", True)] * 2
    assert got[0][0]["idempotency_key"] == got[1][0]["idempotency_key"]
    sent = service.get_message(db, message.id)
    assert (sent.status, sent.external_id) == ("sent", "remote-1")


def test_hooks_run_by_their_order_then_as_registered(db, account):
    ran: list[str] = []
    for name, order in (("answer", 100), ("thread", 10), ("later", 100)):
        service.on_receive(f"test-{name}", order=order)(
            lambda session, acc, item, received, name=name: ran.append(name))
    try:
        service.receive(db, account, joined())
    finally:
        for name in ("answer", "thread", "later"):
            service.remove_receive_hook(f"test-{name}")
    assert [n for n in ran if n in ("answer", "thread", "later")] == ["thread", "answer", "later"]


def test_run_async_works_where_a_loop_already_runs():
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def caller() -> int:
        return service.run_async(answer())  # sync code called from async code, as under Playwright

    assert service.run_async(answer()) == 42
    with ThreadPoolExecutor(1) as pool:  # a thread of its own, whatever loop this one runs
        assert pool.submit(asyncio.run, caller()).result() == 42


def test_health_records_a_success_once_a_minute_and_always_after_a_failure(db, account, frozen_now):
    service.record_health(db, account)
    first = account.last_ok_at
    frozen_now.advance(seconds=30)
    service.record_health(db, account)
    assert account.last_ok_at == first  # a busy account doesn't rewrite its row on every send
    service.record_health(db, account, error="45009: limit")
    frozen_now.advance(seconds=1)
    service.record_health(db, account)
    assert account.last_ok_at > account.last_error_at  # recovered: shown at once
    frozen_now.advance(seconds=61)
    service.record_health(db, account)
    assert account.last_ok_at == clock.now()


def test_a_batch_keeps_up_to_the_kinds_sends_in_flight_and_one_addresss_messages_in_order(db, account, adapter,
                                                                                          monkeypatch):
    in_flight, most, order = [0], [0], []

    async def send(account, address, content, *, idempotency_key):
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        for _ in range(40 - 3 * int(content["text"])):  # earlier ones take longer: later ones would overtake
            await asyncio.sleep(0)
        order.append((address, content["text"]))
        in_flight[0] -= 1
        return SendResult(external_id=idempotency_key)

    monkeypatch.setattr(adapter, "send", send)
    messages = [SimpleNamespace(address=f"o-{i % 4}", content={"text": str(i)}) for i in range(12)]
    # 12 at once: still one in flight per address (4 of them).
    for at_once, expected in ((1, 1), (3, 3), (12, 4)):
        monkeypatch.setattr(adapter, "rules", dataclasses.replace(adapter.rules, sends_at_once=at_once))
        in_flight[0] = most[0] = 0
        order.clear()
        results = service.run_async(service._send_each([(account, m, f"k{i}") for i, m in enumerate(messages)],
                                                       None))
        assert [r.external_id for r in results] == [f"k{i}" for i in range(12)]
        assert most[0] == expected
        for person in ("o-0", "o-1", "o-2", "o-3"):
            assert [t for a, t in order if a == person] == [str(i) for i in range(12) if f"o-{i % 4}" == person]


def test_every_http_call_finds_sniffio_instead_of_a_failed_import():
    # httpcore imports sniffio per request; without it each call scans sys.path (~1 ms a send).
    import httpcore._synchronization

    async def library() -> str:
        return httpcore._synchronization.current_async_library()

    assert service.run_async(library()) == "asyncio"
    assert "sniffio" in sys.modules


@pytest.mark.parametrize("cache", ["http", "redis"])
def test_a_closed_event_loop_takes_its_clients_with_it(monkeypatch, cache):
    """Connection pools and Redis clients are bound to the loop they were made on: one per loop, dropped
    with it, never found by a later loop (keyed by id(), a new loop could reuse a dead loop's id)."""
    import gc

    from siyu.channels import webhook
    from siyu.channels.wechat_oa import tokens
    from siyu.settings import get_settings

    monkeypatch.setenv("SIYU_REDIS_URL", "redis://127.0.0.1:6379/15")  # made, never connected
    get_settings.cache_clear()
    caches = {"http": (webhook.http_client, webhook._clients), "redis": (tokens._redis_client, tokens._redis)}
    make, store = caches[cache]

    async def twice() -> bool:
        return make() is make()

    try:
        before = len(store)
        loop = asyncio.new_event_loop()
        assert loop.run_until_complete(twice())  # one per loop
        assert len(store) == before + 1
        loop.close()
        del loop
        gc.collect()
        assert len(store) == before
    finally:
        get_settings.cache_clear()
