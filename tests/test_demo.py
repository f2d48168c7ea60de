"""Demo data: deterministic, well-formed shop events with a believable mix, and the hook for later modules."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.progress import Progress
from sqlalchemy.orm import Session

from siyu import demo
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.core.tenancy import bound_workspace
from tests.cli_support import configured_database

NOW = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
SKUS = {sku: price for sku, _name, price in demo.CATALOGUE}
PHONE = re.compile(r"^\+861[3-9]\d{9}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$")


def events_of(seed: int = 1, contacts: int = 200, days: int = 90) -> list[dict]:
    return [e for _i, evs in demo.demo_events(seed=seed, contacts=contacts, days=days, now=NOW) for e in evs]


def test_same_seed_same_events_and_keys_other_seed_other_events():
    assert events_of(seed=3, contacts=30) == events_of(seed=3, contacts=30)
    assert events_of(seed=3, contacts=30) != events_of(seed=4, contacts=30)


def test_a_person_keeps_their_events_whatever_the_number_of_contacts():
    few = events_of(contacts=20)
    many = events_of(contacts=40)

    assert many[: len(few)] == few
    assert {e["idempotency_key"] for e in few} <= {e["idempotency_key"] for e in many}


def test_idempotency_keys_are_unique_and_name_the_seed():
    events = events_of(seed=11, contacts=300)
    keys = [e["idempotency_key"] for e in events]

    assert len(keys) == len(set(keys))
    assert all(k.startswith("demo-11-") and len(k) <= 200 for k in keys)


def test_people_are_reached_by_a_mainland_mobile_or_an_email_consistently():
    by_person: dict[str, set[tuple[str, str]]] = {}
    for event in events_of(contacts=300):
        person = event["idempotency_key"].rsplit("-", 1)[0]
        by_person.setdefault(person, set()).add((event["identity"]["type"], event["identity"]["value"]))

    assert all(len(ids) == 1 for ids in by_person.values())
    identities = [next(iter(ids)) for ids in by_person.values()]
    kinds = Counter(kind for kind, _ in identities)
    assert kinds["phone"] > kinds["email"] > 0
    assert all(PHONE.match(v) for kind, v in identities if kind == "phone")
    assert all(EMAIL.match(v) for kind, v in identities if kind == "email")
    assert len({v for _k, v in identities}) == len(identities)


def test_orders_add_up_in_fen_and_refunds_follow_their_order():
    events = events_of(contacts=400)
    paid = {e["properties"]["order_id"]: e for e in events if e["type"] == "order.paid"}
    refunds = [e for e in events if e["type"] == "order.refunded"]

    assert paid
    assert refunds
    for event in paid.values():
        props = event["properties"]
        subtotal = sum(line["qty"] * line["price"] for line in props["items"])
        assert set(props) == {"order_id", "amount", "currency", "items"}
        assert props["currency"] == "CNY"
        assert all(SKUS[line["sku"]] == line["price"] and line["qty"] >= 1 for line in props["items"])
        assert isinstance(props["amount"], int)
        assert subtotal - 2000 <= props["amount"] <= subtotal + demo.SHIPPING_FEE
        assert props["amount"] > 0
    for refund in refunds:
        order = paid[refund["properties"]["order_id"]]
        assert set(refund["properties"]) == {"order_id", "amount", "currency"}
        assert 0 < refund["properties"]["amount"] <= order["properties"]["amount"]
        assert refund["occurred_at"] >= order["occurred_at"]


def test_most_people_browse_fewer_buy_and_some_come_back():
    orders_per_person = Counter()
    people = set()
    for event in events_of(seed=5, contacts=500):
        person = event["idempotency_key"].rsplit("-", 1)[0]
        people.add(person)
        if event["type"] == "order.paid":
            orders_per_person[person] += 1
    types = Counter(e["type"] for e in events_of(seed=5, contacts=500))

    buyers = len(orders_per_person)
    repeaters = sum(1 for n in orders_per_person.values() if n >= 2)
    assert len(people) == 500
    assert 0.2 * 500 < buyers < 0.55 * 500
    assert 0.05 * 500 < repeaters < buyers / 2
    assert types["page.viewed"] > types["product.viewed"] > types["cart.item_added"] > types["order.paid"]
    assert types["order.paid"] > types["order.refunded"] > 0


@given(seed=st.integers(0, 2**31), days=st.integers(1, 400))
def test_every_event_is_well_formed_and_inside_the_window(seed, days):
    for event in events_of(seed=seed, contacts=4, days=days):
        assert set(event) == {"type", "idempotency_key", "occurred_at", "identity", "properties"}
        at = datetime.fromisoformat(event["occurred_at"])
        assert at.tzinfo is not None
        assert NOW - timedelta(days=days + 1) <= at <= NOW
        assert event["type"] in {"page.viewed", "product.viewed", "cart.item_added", "order.paid",
                                 "order.refunded"}


def test_demo_users_have_one_user_per_role_and_bilingual_staff():
    users = demo.demo_users(2026)
    roles = Counter(role.value for _e, _n, role in users)
    staff_names = [name for _e, name, role in users if role.value == "staff"]

    assert roles == {"owner": 1, "admin": 1, "operator": 1, "analyst": 1, "staff": demo.STAFF_COUNT}
    assert any(re.search(r"[\u4e00-\u9fff]", n) for n in staff_names)
    assert any(re.fullmatch(r"[A-Za-z .'-]+", n) for n in staff_names)
    assert len({e for e, _n, _r in users}) == len(users)


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with configured_database(monkeypatch) as url:
        yield url


calls: list[tuple[int | None, int, int]] = []


def fill_marker(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """A stand-in for a later module's demo data."""
    calls.append((bound_workspace(session), workspace.id, rng.randrange(1000)))


def test_registered_extensions_run_bound_to_the_demo_workspace(database, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_EXTENSIONS", (("tests.test_demo", "fill_marker"),))
    calls.clear()

    result = demo.run_demo(Actor.cli("pytest"), contacts=0, seed=9)

    assert calls == [(result.workspace.id, result.workspace.id, random.Random(9).randrange(1000))]
