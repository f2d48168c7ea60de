"""Fixtures of the broadcast tests: a bound workspace, a scripted adapter, contacts in a segment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from siyu.channels import base
from siyu.channels import service as channels
from siyu.channels.base import ChannelError, PlatformRules, SendResult
from siyu.contacts import segments
from siyu.contacts import service as contacts
from siyu.core.audit import Actor
from tests.channels.conftest import _person_resolver, frozen_now, run_jobs, ws  # noqa: F401

ACTOR = Actor(type="user", id="1", label="marketer@example.com", via="console")


class Scripted:
    """A channel that addresses contacts by id, needs SMS consent, records its sends and fails as told."""

    kind = "bcast"
    label = "Scripted"
    fields = ()
    accepts_idempotency_key = False

    def __init__(self) -> None:
        self.rules = PlatformRules(identity_type="contact_id", consent_channel="sms",
                                   content_types=("text", "link"))
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: list[ChannelError] = []

    def validate_config(self, config, secrets) -> None:
        return None

    async def check_connection(self, account) -> str:
        return "ok"

    async def send(self, account, address, content, *, idempotency_key) -> SendResult:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append((address, dict(content)))
        return SendResult(external_id=f"x-{len(self.sent)}")

    def sent_to(self) -> list[int]:
        return sorted(int(a) for a, _ in self.sent)


@pytest.fixture
def adapter():
    a = Scripted()
    base.register_adapter(a)
    yield a
    base._ADAPTERS.pop("bcast", None)


@pytest.fixture
def account(db, ws, adapter):  # noqa: F811
    return channels.create_account(db, kind="bcast", name="Shop SMS", config={}, secrets={}, actor=ACTOR)


@pytest.fixture
def audience(db: Session, ws) -> Callable[..., tuple[Any, list[int]]]:  # noqa: F811
    """`audience(n, consent=True)`: n contacts (SMS consent granted) in a static segment."""

    def make(n: int, *, consent: bool = True, name: str = "Tea lovers") -> tuple[Any, list[int]]:
        ids = []
        for i in range(n):
            c = contacts.create_contact(db, fields={"name": f"C{i}", "nickname": f"N{i}"}, actor=ACTOR)
            if consent:
                contacts.set_consent(db, c, channel="sms", status="granted", source="test", actor=None)
            ids.append(c.id)
        segment = segments.create_segment(db, name=name, kind="static", actor=ACTOR)
        segments.add_members(db, segment, contact_ids=ids, actor=ACTOR)
        return segment, ids

    return make


def webhook_world(db: Session, workspace_id: int) -> tuple[Any, Any, list[Any]]:
    """In a workspace: a webhook account (to a closed port: nothing is delivered) and a segment of two."""
    from siyu.core.tenancy import bind_workspace

    bind_workspace(db, workspace_id)
    account = channels.create_account(db, kind="webhook", name="App", config={"url": "http://127.0.0.1:9/in"},
                                      secrets={"secret": "s" * 20}, actor=ACTOR)
    people = [contacts.create_contact(db, fields={"name": n, "nickname": n}, actor=ACTOR) for n in ("Li", "Wang")]
    segment = segments.create_segment(db, name="Tea lovers", kind="static", actor=ACTOR)
    segments.add_members(db, segment, contact_ids=[p.id for p in people], actor=ACTOR)
    db.commit()
    return account, segment, people
