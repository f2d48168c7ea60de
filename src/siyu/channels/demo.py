"""Demo data of the channels: a demo Official Account and a few weeks of its conversations.

The account is a stand-in, left paused (its API base is a closed local port, so it never reaches WeChat;
put a real account's settings in and resume it to connect). Demo contacts follow it and write to it through the real
inbound pipeline (`service.receive`): their messages are archived, threaded, indexed and checked for
sensitive words like any other; staff answers are archived as sent (`service.archive_sent`), so nothing
goes through the outbox to a platform. It runs before the messaging demo, so no welcome or keyword
reply fires while the history is written. A second run adds nothing.
"""

from __future__ import annotations

import random
import secrets
import string
from datetime import datetime, timedelta
from typing import Any

from rich.progress import Progress
from sqlalchemy.orm import Session

from siyu.channels import service
from siyu.channels.base import Inbound
from siyu.channels.models import ChannelAccount
from siyu.contacts import demo as demo_contacts
from siyu.contacts import service as contacts
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.models import Workspace

ACTOR = Actor.cli("demo")
ACCOUNT_NAME = "演示服务号 Demo OA"
PEOPLE = 40
# (what a customer writes, what staff answers); None: nobody answered yet.
EXCHANGES: tuple[tuple[str, str | None], ...] = (
    ("请问这款明前龙井还有货吗？", "有的，今天下单明天发货。"),
    ("订单 20261128 什么时候发货？", "已经打包好了，今天下午顺丰发出。"),
    ("有没有新人优惠券？", "关注即送满 99 减 20 的优惠券，在「我的券」里可以看到。"),
    ("退款怎么操作？收到的茶叶罐子压坏了", "非常抱歉！拍张照片发给我，马上为您办理退款。"),
    ("普洱茶饼怎么保存比较好", "放在通风、避光、无异味的地方，温度 20–30 度最好。"),
    ("你们是骗子吧，一周了还没发货", "非常抱歉让您久等，已经加急处理，今天一定发出。"),
    ("Do you ship to Hong Kong?", "Yes, delivery to Hong Kong takes 3–5 days."),
    ("Can I use two coupons on one order?", "One coupon per order, but it stacks with the member discount."),
    ("门店周末几点开门？", "周末 10:00–21:00 营业，欢迎来试茶。"),
    ("直播间的秒杀价还能买吗", None),
    ("发票怎么开", None),
)


def _openid(rng: random.Random) -> str:
    return "oDemo" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(23))


def _account(session: Session) -> ChannelAccount:
    for account in service.list_accounts(session, kind="wechat_oa"):
        if account.name == ACCOUNT_NAME:
            return account
    return service.create_account(
        session, kind="wechat_oa", name=ACCOUNT_NAME, actor=ACTOR,
        config={"app_id": "wx" + secrets.token_hex(8), "mode": "safe", "api_base": "http://127.0.0.1:9"},
        secrets={"app_secret": secrets.token_hex(16), "token": secrets.token_hex(8),
                 "encoding_aes_key": "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))},
    )


def add_demo_channels(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """The demo Official Account, followed by demo contacts who wrote to it over the last three weeks."""
    account = _account(session)
    if service.address_count(session, account) > 0:
        return
    people = [c for c in contacts.list_contacts(session, limit=PEOPLE * 3)[0] if c.phone][:PEOPLE]
    task = progress.add_task("Conversations", total=len(people))
    now = clock.now()
    frozen = clock.FrozenClock(now)
    clock.set_clock(frozen)  # each message is written at its own moment of the history
    try:
        for n, contact in enumerate(people):
            _converse(session, account, contact, rng, now, frozen, n)
            progress.advance(task)
    finally:
        clock.reset()
    # The followers wrote recently: their stages (and the demo's stage tags) follow from it now.
    demo_contacts.settle(session)
    # Paused: whatever the demo queues for it later (satisfaction surveys when the sweep closes these
    # conversations, welcomes) is archived as skipped instead of being sent to a platform that isn't there.
    service.update_account(session, account, status="paused", actor=ACTOR)


def _converse(session: Session, account: ChannelAccount, contact: Any, rng: random.Random, now: datetime,
              frozen: clock.FrozenClock, n: int) -> None:
    openid = _openid(rng)
    at = now - timedelta(days=rng.uniform(1, 21), hours=rng.uniform(0, 10))
    frozen.current = at
    phone = (("phone", contact.phone),) if contact.phone else ()
    service.receive(session, account, Inbound(
        dedupe_key=f"demo:{openid}:follow", sender=openid, kind="event", event="joined",
        details={"scene": rng.choice(["parcel_card", "store_poster", "live_stream"])}, occurred_at=at,
        extra_identities=phone))
    for i, (question, answer) in enumerate(rng.sample(EXCHANGES, rng.randint(1, 3))):
        at = at + timedelta(hours=rng.uniform(1, 30))
        if at >= now:
            break
        frozen.current = at
        got = service.receive(session, account, Inbound(
            dedupe_key=f"demo:{openid}:{i}", sender=openid, kind="text", text=question, occurred_at=at,
            external_id=str(7_000_000_000_000_000_000 + n * 10 + i)))
        if answer is None or got.contact_id is None:
            continue
        replied = at + timedelta(minutes=rng.choice([2, 3, 5, 8, 15, 30, 90]))
        frozen.current = replied
        service.archive_sent(session, account=account, contact_id=got.contact_id, address=openid,
                             content={"type": "text", "text": answer}, origin="reply:demo",
                             idempotency_key=f"demo:{openid}:{i}:reply", staff_id=contact.owner_id)
