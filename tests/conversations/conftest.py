"""Fixtures of the conversations tests: the channels fixtures (a recording adapter and its account among
them), a helper that receives a message from a person, and staff members with console users."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

import siyu.conversations.tasks  # noqa: F401  (the receive hook and the sweep job register)
from siyu.channels import service as channels
from siyu.channels.base import Inbound
from siyu.channels.models import ChannelAccount
from siyu.core.audit import Actor
from tests.channels.conftest import _person_resolver, frozen_now, run_jobs, ws  # noqa: F401
from tests.channels.test_pipeline import account, adapter  # noqa: F401  (the recording adapter, an account)

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


@pytest.fixture
def say(db: Session, account: ChannelAccount) -> Callable[..., channels.Received]:  # noqa: F811
    """`say(text, openid=...)`: a person sends a text message to the account (following it first)."""
    counter = iter(range(1, 100_000))
    joined: set[str] = set()

    def send(text: str, openid: str = "o-1", staff_userid: str | None = None) -> channels.Received:
        if openid not in joined:
            channels.receive(db, account, Inbound(dedupe_key=f"join-{openid}", sender=openid, kind="event",
                                                  event="joined"))
            joined.add(openid)
        return channels.receive(db, account, Inbound(dedupe_key=f"m{next(counter)}", sender=openid, kind="text",
                                                     text=text, staff_userid=staff_userid))

    return send


@pytest.fixture
def make_staff(db: Session, ws, make_user):  # noqa: F811
    """`make_staff(role, wecom_userid=...)`: a console user of the workspace and their staff member."""
    from siyu.contacts import staff
    from siyu.core.tenancy import bind_workspace

    def make(role: str = "admin", name: str = "Li", wecom_userid: str | None = None):
        user = make_user(ws, role, name=name)
        bind_workspace(db, ws.id)
        return user, staff.create_staff(db, name=name, user_id=user.id, wecom_userid=wecom_userid, actor=ACTOR)

    return make
