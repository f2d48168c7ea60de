"""Demo data: a workspace with a user per role, staff, and months of realistic shop events.

Everything is drawn from `seed`, one random stream per person, so the same seed always yields the
same people and events and their idempotency keys: running the demo again adds nothing twice, and a
larger `--contacts` adds only the new people. Later modules add their own demo data by naming a
function in `DEMO_EXTENSIONS`.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from faker import Faker
from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock, workspaces
from siyu.core.audit import Actor
from siyu.core.db import session_scope
from siyu.core.errors import Invalid
from siyu.core.models import Workspace
from siyu.core.permissions import Role
from siyu.core.tenancy import bind_workspace

DEMO_WORKSPACE_NAME = "Demo Brand 示例品牌"
DEMO_OWNER_EMAIL = "demo@siyu.local"
# Documented in the README: a demo install is for looking around, never for real data.
DEMO_PASSWORD = "siyu-demo-2026"
DEMO_TIMEZONE = "Asia/Shanghai"
DEMO_CURRENCY = "CNY"
STAFF_COUNT = 6
CHUNK_SIZE = 1_000

# (module, attribute) of a function `(session, workspace, rng, progress) -> None` that adds a later
# module's demo data; it runs in its own transaction with the session bound to the demo workspace.
DEMO_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("siyu.contacts.demo", "add_demo_contacts"),
    # Sensitive-word rules before the demo conversations, which they check; the conversations before the
    # welcome and keyword replies, so none of those fire while the history is written.
    ("siyu.conversations.demo", "add_demo_rules"),
    ("siyu.channels.demo", "add_demo_channels"),
    ("siyu.messaging.demo", "add_demo_messaging"),
    # After the contacts demo's segments: the broadcast goes to its potential customers.
    ("siyu.messaging.broadcast_demo", "add_demo_broadcast"),
    # After the channels demo: its followers' scenes are the acquisition codes' states.
    ("siyu.acquisition.demo", "add_demo_acquisition"),
)

DemoExtension = Callable[[Session, Workspace, random.Random, Progress], None]

# A small tea and cosmetics shop; prices in fen.
CATALOGUE: tuple[tuple[str, str, int], ...] = (
    ("TEA-LJ-250", "西湖龙井 250g", 16800),
    ("TEA-PE-357", "普洱熟茶饼 357g", 12800),
    ("TEA-TG-500", "安溪铁观音 500g", 9900),
    ("TEA-BC-100", "白毫银针 100g", 26800),
    ("TEA-SAMPLER", "Tea sampler box (6 teas)", 5900),
    ("CUP-GLASS-2", "Double-wall glass cups, pair", 6900),
    ("SKN-SERUM-30", "玻尿酸精华 30ml", 19900),
    ("SKN-MASK-10", "补水面膜 10片", 8900),
    ("SKN-CREAM-50", "Green tea night cream 50ml", 15900),
    ("SKN-LIP-01", "润唇膏", 3900),
)
PAGES: tuple[tuple[str, str], ...] = (
    ("/", "首页 Home"),
    ("/new", "新品 New arrivals"),
    ("/tea", "茶叶 Tea"),
    ("/skincare", "护肤 Skincare"),
    ("/live", "直播 Live"),
    ("/member", "会员中心 Members"),
)
FREE_SHIPPING_FROM = 9900
SHIPPING_FEE = 1000
# Local hours people shop at: mornings and evenings beat the afternoon (seed 000).
HOUR_WEIGHTS = (1, 1, 0, 0, 0, 0, 1, 3, 5, 6, 5, 4, 4, 3, 2, 2, 2, 3, 4, 6, 8, 9, 7, 3)


@dataclass(frozen=True)
class DemoPerson:
    """One shopper of the demo: how the shop knows them."""

    index: int
    identity_type: str  # "phone" | "email"
    identity_value: str


@dataclass
class DemoResult:
    """What a demo run did."""

    workspace: Workspace
    owner_email: str
    password: str
    users_created: list[str] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    errors: int = 0


def demo_person(seed: int, index: int, fakers: tuple[Faker, Faker] | None = None) -> DemoPerson:
    """The `index`-th shopper of a seed: reached by a mainland mobile number or by email."""
    zh, en = fakers or (Faker("zh_CN"), Faker("en_US"))
    rng = random.Random(f"siyu-demo-person:{seed}:{index}")
    draw = rng.getrandbits(32)
    zh.seed_instance(draw)
    en.seed_instance(draw)
    if rng.random() < 0.7:
        return DemoPerson(index, "phone", "+86" + zh.phone_number()[-11:])
    fake = zh if rng.random() < 0.6 else en
    user, _, domain = fake.email().lower().partition("@")
    # The index keeps addresses apart when Faker repeats a user name.
    return DemoPerson(index, "email", f"{user}.{index}@{domain}")


def _local_time(rng: random.Random, day: datetime, tz: ZoneInfo) -> datetime:
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    local = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=tz)
    return local.astimezone(day.tzinfo)


def _item(
    person: DemoPerson, key: str, type_: str, at: datetime, properties: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": type_,
        "idempotency_key": key,
        "occurred_at": at.isoformat(),
        "identity": {"type": person.identity_type, "value": person.identity_value},
        "properties": properties,
    }


def person_events(
    person: DemoPerson, *, seed: int, days: int, now: datetime, tz: ZoneInfo | None = None
) -> list[dict[str, Any]]:
    """One shopper's events over the last `days`: visits, product views, cart adds, orders, refunds.

    Most people only browse, fewer buy once, some come back and buy again.
    """
    tz = tz or ZoneInfo(DEMO_TIMEZONE)
    # Seeded by a string per person, so each one's story stays the same whatever --contacts says.
    rng = random.Random(f"siyu-demo-events:{seed}:{person.index}")
    kind = rng.choices(("browser", "buyer", "repeat"), weights=(60, 28, 12))[0]
    visits = {"browser": rng.randint(1, 3), "buyer": rng.randint(1, 4), "repeat": rng.randint(3, 8)}[kind]
    orders_left = {"browser": 0, "buyer": 1, "repeat": rng.randint(2, 5)}[kind]
    first_day = rng.randrange(max(days, 1))
    later_days = {rng.randrange(first_day + 1) for _ in range(visits - 1)}
    day_offsets = sorted({first_day} | later_days, reverse=True)

    events: list[dict[str, Any]] = []
    order_no = 0

    def add(type_: str, at: datetime, properties: dict[str, Any]) -> None:
        key = f"demo-{seed}-{person.index}-{len(events)}"
        events.append(_item(person, key, type_, min(at, now), properties))

    for visit_no, back in enumerate(day_offsets):
        at = _local_time(rng, now - timedelta(days=back), tz)
        for _ in range(rng.randint(1, 4)):
            path, title = rng.choice(PAGES)
            add("page.viewed", at, {"path": path, "title": title})
            at += timedelta(seconds=rng.randint(5, 120))
        viewed = rng.sample(CATALOGUE, rng.randint(1, 3))
        for sku, name, price in viewed:
            add("product.viewed", at, {"sku": sku, "name": name, "price": price, "currency": DEMO_CURRENCY})
            at += timedelta(seconds=rng.randint(10, 240))
        visits_left = len(day_offsets) - visit_no
        buys = orders_left > 0 and (visits_left <= orders_left or rng.random() < 0.6)
        if not buys and rng.random() > 0.25:
            continue
        cart: list[dict[str, Any]] = []
        for sku, _name, price in viewed[: rng.randint(1, len(viewed))]:
            qty = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
            cart.append({"sku": sku, "qty": qty, "price": price})
            add("cart.item_added", at, {"sku": sku, "qty": qty, "price": price, "currency": DEMO_CURRENCY})
            at += timedelta(seconds=rng.randint(10, 90))
        if not buys:
            continue  # an abandoned cart
        orders_left -= 1
        order_no += 1
        order_id = f"D{seed}-{person.index}-{order_no}"
        subtotal = sum(line["qty"] * line["price"] for line in cart)
        shipping = 0 if subtotal >= FREE_SHIPPING_FROM else SHIPPING_FEE
        discount = rng.choice((0, 0, 0, 500, 1000, 2000)) if subtotal > 5000 else 0
        amount = subtotal + shipping - discount
        at += timedelta(minutes=rng.randint(1, 20))
        paid = {"order_id": order_id, "amount": amount, "currency": DEMO_CURRENCY, "items": cart}
        add("order.paid", at, paid)
        if rng.random() < 0.07:
            refund = amount if rng.random() < 0.7 else cart[0]["price"]
            add("order.refunded", at + timedelta(days=rng.randint(1, 10)),
                {"order_id": order_id, "amount": min(refund, amount), "currency": DEMO_CURRENCY})
    return events


def demo_events(
    *, seed: int, contacts: int, days: int, now: datetime, tz: ZoneInfo | None = None
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(person index, their events) for each of `contacts` people, in index order."""
    fakers = (Faker("zh_CN"), Faker("en_US"))
    for index in range(contacts):
        person = demo_person(seed, index, fakers)
        yield index, person_events(person, seed=seed, days=days, now=now, tz=tz)


def find_demo_workspace(session: Session) -> Workspace | None:
    """The demo workspace, if one was made before."""
    return session.execute(
        select(Workspace).where(Workspace.name == DEMO_WORKSPACE_NAME).order_by(Workspace.id).limit(1)
    ).scalar_one_or_none()


def demo_users(seed: int) -> list[tuple[str, str, Role]]:
    """(email, name, role) of the demo's console users: one per role, then more staff."""
    zh, en = Faker("zh_CN"), Faker("en_US")
    zh.seed_instance(seed)
    en.seed_instance(seed)
    users = [
        (DEMO_OWNER_EMAIL, "Demo Owner 演示老板", Role.OWNER),
        ("admin@siyu.local", zh.name(), Role.ADMIN),
        ("operator@siyu.local", en.name(), Role.OPERATOR),
        ("analyst@siyu.local", zh.name(), Role.ANALYST),
    ]
    for n in range(1, STAFF_COUNT + 1):
        users.append((f"staff{n:02d}@siyu.local", (zh if n % 2 else en).name(), Role.STAFF))
    return users


def prepare_workspace(
    session: Session, actor: Actor, *, seed: int, password: str, workspace_id: int | None = None
) -> DemoResult:
    """The demo workspace (made if needed) with its users and memberships; writes are audited."""
    if workspace_id is not None:
        ws = workspaces.get_workspace(session, workspace_id)
    else:
        found = find_demo_workspace(session)
        ws = found or workspaces.create_workspace(
            session, actor, name=DEMO_WORKSPACE_NAME, timezone=DEMO_TIMEZONE, currency=DEMO_CURRENCY,
            locale="zh_Hans",
        )
    bind_workspace(session, ws.id)
    result = DemoResult(workspace=ws, owner_email=DEMO_OWNER_EMAIL, password=password)
    for email, name, role in demo_users(seed):
        user = workspaces.find_user(session, email)
        if user is not None and workspaces.membership(session, ws.id, user.id) is not None:
            continue
        if user is None:
            result.users_created.append(email)
        workspaces.add_member(session, actor, workspace_id=ws.id, email=email, role=role.value, name=name,
                              password=password)
    return result


def write_events(
    workspace_id: int,
    people: Iterator[tuple[int, list[dict[str, Any]]]],
    *,
    result: DemoResult,
    progress: Progress,
    total: int,
) -> None:
    """Record the events in chunks of CHUNK_SIZE, one transaction per chunk, advancing a progress bar."""
    from siyu.core.events import record_events

    task = progress.add_task("events", total=total)
    buffer: list[dict[str, Any]] = []

    def flush(items: list[dict[str, Any]]) -> None:
        with session_scope() as session:
            bind_workspace(session, workspace_id)
            batch = record_events(session, items, source="demo")
        result.accepted += batch.accepted
        result.duplicates += batch.duplicates
        result.errors += len(batch.errors)

    for done, (_index, events) in enumerate(people, start=1):
        buffer.extend(events)
        while len(buffer) >= CHUNK_SIZE:
            flush(buffer[:CHUNK_SIZE])
            del buffer[:CHUNK_SIZE]
        progress.update(task, completed=done)
    if buffer:
        flush(buffer)
    progress.update(task, completed=total)


def extensions() -> list[DemoExtension]:
    """The demo functions later modules registered in DEMO_EXTENSIONS, with every module's subscribers and
    hooks registered as in a worker (demo messages are threaded and indexed like real ones)."""
    from siyu.core.jobs import load_handler_modules

    load_handler_modules()
    return [getattr(importlib.import_module(module), attr) for module, attr in DEMO_EXTENSIONS]


def run_demo(
    actor: Actor,
    *,
    contacts: int = 500,
    seed: int = 2026,
    days: int = 90,
    workspace_id: int | None = None,
    password: str = DEMO_PASSWORD,
    progress: Progress | None = None,
) -> DemoResult:
    """Fill a workspace (the demo one by default) with users, staff, events and every module's demo data."""
    if contacts < 0:
        raise Invalid("--contacts can't be negative", field="contacts")
    if days < 1:
        raise Invalid("--days must be at least 1", field="days")
    progress = progress or Progress(disable=True)
    # Imported before the events are written, so the modules' resolvers and subscribers see them.
    extend_with = extensions()
    with session_scope() as session:
        result = prepare_workspace(session, actor, seed=seed, password=password, workspace_id=workspace_id)
    ws = result.workspace
    if contacts:
        tz = ZoneInfo(ws.timezone)
        people = demo_events(seed=seed, contacts=contacts, days=days, now=clock.now(), tz=tz)
        write_events(ws.id, people, result=result, progress=progress, total=contacts)
    for extend in extend_with:
        with session_scope() as session:
            bind_workspace(session, ws.id)
            extend(session, ws, random.Random(seed), progress)
    return result
