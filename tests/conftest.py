"""Fixtures: one migrated database per run, each test inside a transaction rolled back at its end."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

_TMP = Path(tempfile.mkdtemp(prefix="siyu-test-"))
os.environ.setdefault("SIYU_VAR_DIR", str(_TMP / "var"))
os.environ["SIYU_SECRET_KEY"] = "test-secret-key-not-for-production"
# Each test builds an app; freezing the heap every time would keep every test's garbage alive.
os.environ["SIYU_GC_FREEZE"] = "0"

from siyu.core import clock  # noqa: E402
from siyu.core.audit import Actor  # noqa: E402
from siyu.core.db import make_engine  # noqa: E402
from siyu.core.migrate import upgrade  # noqa: E402
from siyu.core.models import User, Workspace  # noqa: E402
from siyu.core.tenancy import bind_workspace  # noqa: E402
from tests.support import PG_URL, reset_postgres  # noqa: E402

TEST_URL = PG_URL or f"sqlite:///{_TMP / 'siyu-test.db'}"
CLI_ACTOR = Actor.cli("pytest")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (SIYU_TEST_DATABASE_URL)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The test database, migrated once from empty by the real migrations."""
    if PG_URL:
        reset_postgres(PG_URL)
    upgrade(TEST_URL)
    eng = make_engine(TEST_URL)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose outer transaction is rolled back after the test."""
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


def _session(conn: Connection) -> Session:
    return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session inside the test's transaction; commits only release a savepoint."""
    session = _session(connection)
    yield session
    session.close()


@pytest.fixture
def scope(connection: Connection) -> Callable[[], AbstractContextManager[Session]]:
    """The worker's unit of work inside the test's transaction: a session per job, committed to a savepoint."""

    @contextmanager
    def make() -> Iterator[Session]:
        s = _session(connection)
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    return make


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture
def app(connection: Connection) -> Any:
    """The application with every request's unit of work inside the test's transaction."""
    from siyu.app import create_app
    from siyu.core.auth import get_db

    application = create_app()

    def request_session() -> Iterator[Session]:
        session = _session(connection)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    application.dependency_overrides[get_db] = request_session
    return application


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """An HTTPS test client (session cookies are Secure)."""
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=True) as c:
        yield c


@pytest.fixture
def make_workspace(db: Session) -> Callable[..., Workspace]:
    """Create a workspace (committed to the test's savepoint)."""
    from siyu.core import workspaces

    def make(name: str = "Acme", **kwargs: Any) -> Workspace:
        bind_workspace(db, None)
        ws = workspaces.create_workspace(db, CLI_ACTOR, name=name, **kwargs)
        db.commit()
        return ws

    return make


@pytest.fixture
def make_user(db: Session) -> Callable[..., User]:
    """Create a user, optionally a member of a workspace with a role."""
    from siyu.core import workspaces

    counter = iter(range(1, 10_000))

    def make(
        workspace: Workspace | None = None, role: str = "owner", *, email: str | None = None,
        password: str = "correct horse battery", name: str = "Test User",
    ) -> User:
        bind_workspace(db, None)
        email = email or f"user{next(counter)}@example.com"
        user = workspaces.create_user(db, email=email, name=name, password=password)
        if workspace is not None:
            workspaces._add_membership(db, CLI_ACTOR, workspace.id, user, workspaces.Role(role))
        db.commit()
        return user

    return make


@pytest.fixture
def make_key(db: Session) -> Callable[..., str]:
    """Create an API key for a workspace and return its secret."""
    from siyu.core import workspaces

    def make(workspace: Workspace, scopes: list[str] | None = None, name: str = "test key") -> str:
        bind_workspace(db, workspace.id)
        new = workspaces.create_api_key(db, CLI_ACTOR, name=name, scopes=scopes or ["all:write"])
        db.commit()
        bind_workspace(db, None)
        return new.secret

    return make


def bearer(secret: str) -> dict[str, str]:
    """Authorization header for an API key."""
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def without_person_resolver() -> Iterator[None]:
    """The kernel's events alone: no module's person resolver (the contacts module installs one on import)."""
    from siyu.core import events

    previous = events._resolver
    events.register_person_resolver(None)
    yield
    events.register_person_resolver(previous)
