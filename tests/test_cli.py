"""The `siyu` command against a real database: each write audited as the OS user, failures write nothing."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from siyu import __version__
from siyu.cli import app
from siyu.core import security
from siyu.core.models import AuditEntry, Membership, User, Workspace
from tests.cli_support import configured_database

# Wide enough that Rich tables keep each value on one line.
runner = CliRunner(env={"COLUMNS": "220"})
PASSWORD = "a long enough secret"


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with configured_database(monkeypatch) as url:
        yield url


@pytest.fixture
def read(database: str) -> Iterator[Session]:
    """A session on the CLI's database to look at what the commands committed."""
    engine = create_engine(database)
    with Session(engine) as session:
        yield session
    engine.dispose()


def siyu(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_version_prints_the_package_version():
    result = siyu("version")

    assert result.exit_code == 0
    assert result.output.strip() == f"siyu {__version__}"


def test_migrate_creates_a_new_sqlite_database_and_is_idempotent(tmp_path, monkeypatch):
    db_file = tmp_path / "nested" / "var" / "siyu.db"
    monkeypatch.setenv("SIYU_DATABASE_URL", f"sqlite:///{db_file}")
    from siyu.settings import get_settings

    get_settings.cache_clear()
    try:
        first = siyu("migrate")
        second = siyu("migrate")
    finally:
        get_settings.cache_clear()

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "up to date" in second.output
    engine = create_engine(f"sqlite:///{db_file}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM workspaces")).scalar_one() == 0
    engine.dispose()


def test_workspace_create_with_owner_is_audited_and_listed(read):
    made = siyu("user", "create", "--email", "Li.Na@Example.com", "--name", "李娜", "--password-stdin",
                input=PASSWORD + "\n")
    created = siyu("workspace", "create", "Acme Tea 茶", "--owner", "li.na@example.com",
                   "--timezone", "Europe/Madrid", "--currency", "EUR", "--locale", "es")
    listed = siyu("workspace", "list")

    assert made.exit_code == 0, made.output
    assert created.exit_code == 0, created.output
    ws = read.execute(select(Workspace)).scalar_one()
    assert (ws.name, ws.timezone, ws.currency, ws.locale) == ("Acme Tea 茶", "Europe/Madrid", "EUR", "es")
    owner = read.execute(select(Membership)).scalar_one()
    assert owner.role == "owner"
    entries = read.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    assert [e.action for e in entries] == ["workspace.create", "member.add"]
    assert {(e.actor_type, e.via, e.actor_label) for e in entries} == {("cli", "cli", getpass.getuser())}
    assert listed.exit_code == 0
    assert "Acme Tea 茶" in listed.output
    assert "Europe/Madrid" in listed.output


def test_user_create_in_a_workspace_adds_a_member_and_an_audit_entry(read):
    siyu("workspace", "create", "Acme")
    ws_id = read.execute(select(Workspace.id)).scalar_one()

    result = siyu("user", "create", "--email", "ops@example.com", "--name", "Wang Fang",
                  "--workspace", str(ws_id), "--role", "analyst", input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    user = read.execute(select(User)).scalar_one()
    assert security.verify_password(user.password_hash, PASSWORD)
    role = read.execute(select(Membership.role).where(Membership.user_id == user.id)).scalar_one()
    assert role == "analyst"
    entry = read.execute(select(AuditEntry).where(AuditEntry.action == "member.add")).scalar_one()
    assert (entry.workspace_id, entry.actor_type, entry.via) == (ws_id, "cli", "cli")
    assert entry.after == {"email": "ops@example.com", "role": "analyst"}
    listed = siyu("user", "list")
    assert "ops@example.com" in listed.output
    assert "analyst" in listed.output


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--email", "not-an-email", "--name", "X"], "email"),
        (["--email", "a@example.com", "--name", "X", "--workspace", "1", "--role", "boss"], "role"),
        (["--email", "a@example.com", "--name", "X", "--workspace", "999"], "workspace"),
        (["--email", "a@example.com", "--name", "   "], "name"),
    ],
)
def test_bad_user_input_exits_2_naming_the_field_and_writes_nothing(read, args, field):
    siyu("workspace", "create", "Acme")
    before = count(read, AuditEntry)

    result = siyu("user", "create", *args, "--password-stdin", input=PASSWORD + "\n")

    assert result.exit_code == 2
    assert f"error: {field}:" in result.output
    assert count(read, User) == 0
    assert count(read, Membership) == 0
    assert count(read, AuditEntry) == before


def test_short_password_and_taken_email_are_refused(read):
    create = ("user", "create", "--password-stdin", "--email")
    short = siyu(*create, "a@example.com", "--name", "A", input="short\n")
    siyu(*create, "a@example.com", "--name", "A", input=PASSWORD + "\n")
    again = siyu(*create, "A@example.com", "--name", "B", input=PASSWORD + "\n")

    assert short.exit_code == 2
    assert "error: password:" in short.output
    assert again.exit_code == 2
    assert "error: email: a user with email a@example.com already exists" in again.output
    assert read.execute(select(User.name)).scalars().all() == ["A"]


def test_workspace_create_refuses_an_unknown_owner_and_a_bad_currency(read):
    no_owner = siyu("workspace", "create", "Acme", "--owner", "ghost@example.com")
    bad_owner = siyu("workspace", "create", "Acme", "--owner", "ghost")
    bad_currency = siyu("workspace", "create", "Acme", "--currency", "XYZ")

    assert no_owner.exit_code == 2
    assert "error: owner: no user has the email ghost@example.com" in no_owner.output
    assert bad_owner.exit_code == 2
    assert "error: owner: 'ghost' is not an email address" in bad_owner.output
    assert bad_currency.exit_code == 2
    assert "error: currency:" in bad_currency.output
    assert count(read, Workspace) == 0
    assert count(read, AuditEntry) == 0


def test_reset_password_changes_it_and_is_audited_in_each_workspace(read):
    siyu("workspace", "create", "One")
    siyu("workspace", "create", "Two")
    siyu("user", "create", "--email", "u@example.com", "--name", "U", "--workspace", "1", "--password-stdin",
         input=PASSWORD + "\n")
    ws_two = read.execute(select(Workspace.id).where(Workspace.name == "Two")).scalar_one()
    siyu("user", "create", "--email", "other@example.com", "--name", "O", "--workspace", str(ws_two),
         "--password-stdin", input=PASSWORD + "\n")

    result = siyu("user", "reset-password", "U@example.com", input="a brand new password\n" * 2)
    unknown = siyu("user", "reset-password", "nobody@example.com", "--password-stdin", input=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    user = read.execute(select(User).where(User.email == "u@example.com")).scalar_one()
    assert security.verify_password(user.password_hash, "a brand new password")
    entries = read.scalars(select(AuditEntry).where(AuditEntry.action == "user.reset_password")).all()
    assert [(e.entity_id, e.actor_type) for e in entries] == [(str(user.id), "cli")]
    assert unknown.exit_code == 2
    assert "error: email: no user has the email nobody@example.com" in unknown.output


def test_demo_makes_a_user_per_role_and_staff_once(read):
    from siyu.demo import DEMO_OWNER_EMAIL, DEMO_PASSWORD, DEMO_WORKSPACE_NAME, STAFF_COUNT

    first = siyu("demo", "--contacts", "0")
    second = siyu("demo", "--contacts", "0")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert DEMO_OWNER_EMAIL in first.output
    assert DEMO_PASSWORD in first.output
    ws = read.execute(select(Workspace)).scalar_one()
    assert ws.name == DEMO_WORKSPACE_NAME
    assert (ws.timezone, ws.currency) == ("Asia/Shanghai", "CNY")
    roles = read.execute(select(Membership.role)).scalars().all()
    assert sorted(set(roles)) == ["admin", "analyst", "operator", "owner", "staff"]
    assert roles.count("staff") == STAFF_COUNT
    owner = read.execute(select(User).where(User.email == DEMO_OWNER_EMAIL)).scalar_one()
    assert security.verify_password(owner.password_hash, DEMO_PASSWORD)
    assert count(read, User) == 4 + STAFF_COUNT
    actors = set(read.execute(select(AuditEntry.actor_type, AuditEntry.via)).all())
    assert actors == {("cli", "cli")}


def test_demo_into_a_missing_workspace_exits_2(read):
    result = siyu("demo", "--workspace", "42", "--contacts", "0")

    assert result.exit_code == 2
    assert "error: workspace:" in result.output
    assert count(read, User) == 0


def test_demo_events_are_written_once_however_often_it_runs(read):
    from siyu.core.models import Event

    def shop_events() -> int:
        # The demo's shoppers' events; modules' demo data records events of its own (tags, stages).
        read.expire_all()
        return read.execute(select(func.count()).where(Event.source == "demo")).scalar_one()

    first = siyu("demo", "--contacts", "50", "--seed", "7")
    events = shop_events()
    second = siyu("demo", "--contacts", "50", "--seed", "7")
    more = siyu("demo", "--contacts", "60", "--seed", "7")

    assert first.exit_code == 0, first.output
    assert events > 50
    assert second.exit_code == 0, second.output
    assert f"0 events added, {events} already there, 0 refused" in second.output
    assert more.exit_code == 0, more.output
    grown = shop_events()
    assert grown > events
    assert f"{grown - events} events added, {events} already there" in more.output
    shop_types = ("page.viewed", "product.viewed", "cart.item_added", "order.paid", "order.refunded")
    assert set(read.execute(select(Event.source).where(Event.type.in_(shop_types))).scalars()) == {"demo"}
    paid = read.execute(select(Event).where(Event.type == "order.paid")).scalars().all()
    assert paid
    assert all(e.identity_type in ("phone", "email") for e in paid)


def test_serve_migrates_and_prints_the_console_url_then_runs_uvicorn(database, monkeypatch):
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append({"target": target, **kw}))
    monkeypatch.setenv("SIYU_SERVE_WORKER", "")  # restored (removed) after the test
    monkeypatch.delenv("SIYU_SERVE_WORKER")

    result = siyu("serve", "--port", "8123", "--no-worker")

    assert result.exit_code == 0, result.output
    assert "http://localhost:8123/console" in result.output
    assert calls == [{"target": "siyu.cli:served_app", "factory": True, "host": "127.0.0.1", "port": 8123,
                      "reload": False, "proxy_headers": True, "log_level": "info"}]
    from siyu.cli import served_app

    with TestClient(served_app()) as client:
        assert client.get("/healthz").json()["status"] == "ok"


def test_serve_runs_one_worker_in_process_unless_told_not_to(database, monkeypatch):
    import uvicorn

    from siyu.cli import served_app

    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: None)
    monkeypatch.setenv("SIYU_SERVE_WORKER", "")  # restored (removed) after the test
    monkeypatch.delenv("SIYU_SERVE_WORKER")

    assert siyu("serve", "--port", "8124").exit_code == 0
    with TestClient(served_app()) as client:
        assert client.app.state.worker_thread.is_alive()
    assert not client.app.state.worker_thread.is_alive()

    assert siyu("serve", "--port", "8124", "--no-worker").exit_code == 0
    with TestClient(served_app()) as client:
        assert not hasattr(client.app.state, "worker_thread")


def test_serve_demo_fills_the_demo_workspace_once_and_prints_the_login(read, monkeypatch):
    import uvicorn

    from siyu.demo import DEMO_OWNER_EMAIL, DEMO_PASSWORD

    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: None)
    monkeypatch.setenv("SIYU_SERVE_WORKER", "")  # restored (removed) after the test
    monkeypatch.delenv("SIYU_SERVE_WORKER")

    first = siyu("serve", "--demo", "--no-worker")
    users = count(read, User)
    second = siyu("serve", "--demo", "--no-worker")

    assert first.exit_code == 0, first.output
    assert DEMO_OWNER_EMAIL in first.output
    assert DEMO_PASSWORD in first.output
    assert second.exit_code == 0, second.output
    assert "filling the demo workspace" not in second.output
    assert DEMO_PASSWORD in second.output
    assert count(read, Workspace) == 1
    assert count(read, User) == users


def test_worker_burst_does_due_jobs_and_stops(read):
    from siyu.core import jobs
    from siyu.core.db import session_scope
    from siyu.core.models import Job

    @jobs.handler("test.cli_noop")
    def _noop(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
        return {"seen": ctx.payload["n"]}

    with session_scope() as session:
        jobs.enqueue(session, "test.cli_noop", "one", {"n": 1})

    result = siyu("worker", "--burst")

    assert result.exit_code == 0, result.output
    read.expire_all()
    job = read.execute(select(Job)).scalar_one()
    assert (job.status, job.result) == ("done", {"seen": 1})
