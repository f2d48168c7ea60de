"""Demo data of broadcasts: one sent a week ago through the demo member app, with its report filled.

The app is a webhook account (the shop's own member app, which shows siyu's messages to its members)
whose endpoint is a closed local port, so the demo never reaches anything; like the demo Official
Account it is left paused. The broadcast runs through the real code — created, sent now, its start and
chunk jobs run by the worker's own `run_now` (audience frozen, content rendered per person, links made
tracked, every message archived and queued) — with the clock set a week back. What the app would have
answered is then written as history: the deliver jobs are withdrawn unrun, each message is marked sent
(a few failed, as an app answers for members who left), and some readers click their link over the next
day through the real click path. A second run adds nothing.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.models import ChannelAccount
from siyu.contacts import segments
from siyu.contacts.demo import SEGMENTS
from siyu.conversations.models import Message
from siyu.core import clock, jobs, worker
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.core.tenancy import bind_workspace
from siyu.messaging import broadcast_sending, broadcasts, links  # noqa: F401 (broadcast_sending: its job handlers)
from siyu.messaging.broadcast_models import Broadcast, BroadcastLink, BroadcastRecipient

ACTOR = Actor.cli("demo")
APP_NAME = "演示会员 App · Demo member app"
NAME = "双十二预售 · Double 12 presale"
# Potential customers: engaged, not yet buying; the presale is for them.
SEGMENT = SEGMENTS[1][0]
CONTENT = {"type": "link", "title": "双十二预售开始了",
           "description": "{{ nickname | default('朋友', true) }}，龙井、普洱 8 折，12 月 12 日前下单包邮。",
           "url": "https://shop.example.com/presale"}
FAILED_SHARE, CLICKED_SHARE = 0.04, 0.22
LEFT_THE_APP = "HTTP 404: this member has left the app"


def _app(session: Session) -> ChannelAccount:
    for account in channels.list_accounts(session, kind="webhook"):
        if account.name == APP_NAME:
            return account
    return channels.create_account(session, kind="webhook", name=APP_NAME, actor=ACTOR,
                                   config={"url": "http://127.0.0.1:9/siyu-messages"},
                                   secrets={"secret": secrets.token_hex(16)})


def add_demo_broadcast(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """The presale broadcast to the demo's potential customers, a week ago at 10:00 local time, with sends,
    failures and clicks."""
    if session.execute(select(Broadcast.id).where(Broadcast.name == NAME)).first() is not None:
        return
    segment = next((s for s in segments.list_segments(session, limit=200)[0] if s.name == SEGMENT), None)
    if segment is None:
        return
    app = _app(session)
    tz = ZoneInfo(workspace.timezone)
    started = datetime.combine(clock.now().astimezone(tz).date() - timedelta(days=7), time(10, 0), tz)
    frozen = clock.FrozenClock(started)
    clock.set_clock(frozen)
    try:
        if app.status != "active":
            channels.update_account(session, app, status="active", actor=ACTOR)
        b = broadcasts.create_broadcast(session, name=NAME, account_id=app.id, segment_id=segment.id,
                                        content=CONTENT, actor=ACTOR)
        broadcasts.schedule(session, b, at=None, actor=ACTOR)
        _run_chain(session, workspace, b)
        task = progress.add_task("Broadcast", total=None)
        last = _deliver_as_history(session, b, rng, frozen)
        frozen.current = last + timedelta(seconds=30)
        _run_job(session, workspace, broadcasts.FINISH, f"broadcast:{b.id}:finish:{b.chunk_seq}:0")
        _click_as_history(session, workspace, b, rng, frozen)
        progress.update(task, total=1, completed=1)
    finally:
        clock.reset()
        bind_workspace(session, workspace.id)
    channels.update_account(session, app, status="paused", actor=ACTOR)


def _run_job(session: Session, workspace: Workspace, kind: str, key: str) -> bool:
    """Run one job by the worker's own path, inside the demo's transaction; False when there is none."""
    job = jobs.get_job(session, kind, key)
    if job is None:
        return False

    @contextmanager
    def savepoint() -> Iterator[Session]:
        with session.begin_nested():
            yield session

    worker.run_now([job.id], sessions=savepoint)
    bind_workspace(session, workspace.id)  # the worker unbinds the session after each job
    return True


def _run_chain(session: Session, workspace: Workspace, b: Broadcast) -> None:
    _run_job(session, workspace, broadcasts.START, f"broadcast:{b.id}:start:{b.chunk_seq}")
    n = 0
    while _run_job(session, workspace, broadcasts.CHUNK, f"broadcast:{b.id}:chunk:{b.chunk_seq}:{n}"):
        n += 1


def _deliver_as_history(session: Session, b: Broadcast, rng: random.Random, frozen: clock.FrozenClock) -> datetime:
    """What the app answered: each queued message sent (a few failed), a few per second; the last moment."""
    messages = session.execute(select(Message).join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
                               .where(BroadcastRecipient.broadcast_id == b.id, Message.status == "queued")
                               .order_by(Message.id)).scalars().all()
    jobs.withdraw_pending(session, [m.job_id for m in messages if m.job_id is not None], "demo: sent as history")
    at = frozen.current
    for message in messages:
        at += timedelta(seconds=rng.uniform(0.1, 0.5))
        failed = rng.random() < FAILED_SHARE
        channels.set_status(session, message, "failed" if failed else "sent",
                            error=LEFT_THE_APP if failed else None, at=at)
    return at


def _click_as_history(session: Session, workspace: Workspace, b: Broadcast, rng: random.Random,
                      frozen: clock.FrozenClock) -> None:
    """Some readers open their link: most within hours, a few the next day."""
    rows = session.execute(select(BroadcastLink.code, Message.sent_at)
                           .join(Message, Message.id == BroadcastLink.message_id)
                           .where(BroadcastLink.broadcast_id == b.id, Message.status == "sent")).all()
    clicks: list[tuple[datetime, str]] = []
    for code, sent_at in rows:
        if sent_at is not None and rng.random() < CLICKED_SHARE:
            clicks.append((sent_at + timedelta(minutes=min(rng.expovariate(1 / 180), 40 * 60)), code))
    for at, code in sorted(clicks):
        frozen.current = at
        links.record_click(session, code)
    bind_workspace(session, workspace.id)  # the click path binds the link's workspace, as a visitor has none
