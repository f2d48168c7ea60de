"""Two arrivals through one code at the same moment on PostgreSQL: the second waits for the first's
commit, so a member's daily cap holds and the rotation's turn is not lost."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from siyu.acquisition import arrivals, service
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.core import workspaces
from siyu.core.audit import Actor
from siyu.core.db import session_scope
from siyu.core.tenancy import bind_workspace
from tests.cli_support import configured_database

ACTOR = Actor.cli("t")


def _setup() -> tuple[int, int, list[int], list[int]]:
    with session_scope() as s:
        ws = workspaces.create_workspace(s, ACTOR, name="Race")
        bind_workspace(s, ws.id)
        staff = [staff_service.create_staff(s, name=n, actor=ACTOR).id for n in ("Zhang", "Li")]
        source = service.create_source(s, name="Posters", type="store_poster", currency="CNY", cost_model={},
                                       actor=ACTOR)
        code = service.create_code(s, name="Poster", source_id=source.id, kind="link", actor=ACTOR,
                                   target_url="https://shop.example.com/",
                                   members=[{"staff_id": staff[0], "daily_cap": 1}, {"staff_id": staff[1]}])
        people = [contacts.create_contact(s, fields={"name": f"p{i}"}, actor=ACTOR).id for i in range(2)]
        return ws.id, code.id, staff, people


def _waiting_on_a_lock(url_db: str) -> bool:
    with session_scope() as s:
        return bool(s.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                                   "AND wait_event_type = 'Lock'"), {"d": url_db}).scalar_one())


@pytest.mark.postgres_only
def test_an_arrival_waits_for_the_one_before_it_so_a_cap_holds(monkeypatch):
    with configured_database(monkeypatch) as url:
        ws_id, code_id, staff, people = _setup()
        first_counted, go = threading.Event(), threading.Event()
        real_counts = arrivals.day_counts

        def counts(session, code, day):
            found = real_counts(session, code, day)
            if threading.current_thread().name == "first":
                first_counted.set()  # it holds its turn until the test lets it commit
                assert go.wait(30)
            return found

        monkeypatch.setattr(arrivals, "day_counts", counts)
        owners: dict[str, int | None] = {}

        def arrive(name: str, contact_id: int) -> None:
            with session_scope() as s:
                bind_workspace(s, ws_id)
                landed = service.record_arrival(s, service.get_code(s, code_id), kind="click",
                                                dedupe_key=name, contact_id=contact_id, new_contact=True)
                owners[name] = landed.staff_id

        first = threading.Thread(target=arrive, args=("first", people[0]), name="first")
        first.start()
        assert first_counted.wait(30)
        second = threading.Thread(target=arrive, args=("second", people[1]), name="second")
        second.start()
        # The second arrival either waits for the first's lock (right) or runs to its end (the race).
        database = url.rsplit("/", 1)[1]
        deadline = time.monotonic() + 30
        while second.is_alive() and not _waiting_on_a_lock(database) and time.monotonic() < deadline:
            second.join(0.05)
        go.set()
        first.join(30)
        second.join(30)

        assert owners == {"first": staff[0], "second": staff[1]}
