"""Fixtures of the contacts tests: a workspace bound to the test session, an actor, the resolver installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from siyu.contacts import resolver
from siyu.core import events
from siyu.core.audit import Actor
from siyu.core.tenancy import bind_workspace

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


@pytest.fixture(autouse=True)
def _person_resolver() -> Iterator[None]:
    """The contacts resolver, whatever another test module installed before."""
    previous = events._resolver
    resolver.install()
    yield
    events.register_person_resolver(previous)


@pytest.fixture
def ws(db, make_workspace):
    workspace = make_workspace()
    bind_workspace(db, workspace.id)
    return workspace
