"""Concurrent upserts and event batches naming the same new person create one contact, never two."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from siyu.contacts.models import Contact, Identity
from siyu.core import workspaces
from siyu.core.audit import Actor
from siyu.core.db import session_scope
from siyu.core.tenancy import bind_workspace
from tests.cli_support import configured_database
from tests.conftest import bearer

THREADS = 8


def _setup() -> tuple[int, str]:
    with session_scope() as s:
        ws = workspaces.create_workspace(s, Actor.cli("t"), name="Race")
        bind_workspace(s, ws.id)
        secret = workspaces.create_api_key(s, Actor.cli("t"), name="k", scopes=["all:write"]).secret
        return ws.id, secret


def _counts(workspace_id: int) -> tuple[int, int]:
    with session_scope() as s:
        bind_workspace(s, workspace_id)
        contacts = s.execute(select(func.count()).select_from(Contact)).scalar_one()
        identities = s.execute(select(func.count()).select_from(Identity)).scalar_one()
        return contacts, identities


def _race(call) -> list:
    barrier = threading.Barrier(THREADS)

    def one(i: int):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(THREADS)))


@pytest.mark.postgres_only
def test_parallel_upserts_of_one_new_identity_create_one_contact(monkeypatch):
    with configured_database(monkeypatch):
        from siyu.app import create_app

        workspace_id, secret = _setup()
        app = create_app()
        body = {"identities": [{"type": "phone", "value": "13800000050"}, {"type": "email", "value": "r@example.com"}],
                "fields": {"name": "Racer"}}

        def upsert(i: int):
            with TestClient(app, base_url="https://testserver") as client:
                return client.put("/api/v1/contacts/upsert", json=body, headers=bearer(secret))

        answers = _race(upsert)

        assert [r.status_code for r in answers if r.status_code >= 300] == []
        assert len({r.json()["contact"]["id"] for r in answers}) == 1
        assert sum(r.json()["created"] for r in answers) == 1
        assert _counts(workspace_id) == (1, 2)


@pytest.mark.postgres_only
def test_parallel_event_batches_naming_one_new_person_create_one_contact(monkeypatch):
    with configured_database(monkeypatch):
        from siyu.app import create_app

        workspace_id, secret = _setup()
        app = create_app()

        def post(i: int):
            events = [{"type": "page.viewed", "identity": {"type": "phone", "value": "+86 138 0000 0051"}},
                      {"type": "page.viewed", "identity": {"type": "wechat_openid", "value": f"o-{i}"}}]
            with TestClient(app, base_url="https://testserver") as client:
                return client.post("/api/v1/events", json={"events": events}, headers=bearer(secret))

        answers = _race(post)

        assert [r.json() for r in answers] == [{"accepted": 2, "duplicates": 0, "errors": []}] * THREADS
        assert _counts(workspace_id) == (1 + THREADS, 1 + THREADS)
