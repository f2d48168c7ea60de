"""The one migration tree builds exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from siyu.core.db import Base, make_engine
from siyu.core.migrate import upgrade
from siyu.models_registry import import_all_models, include_name
from tests.support import fresh_database


def test_migrations_match_the_models_and_run_twice():
    import_all_models()
    with fresh_database() as url:
        upgrade(url)  # a second run is a no-op
        engine = make_engine(url)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
            diff = compare_metadata(ctx, Base.metadata)
            tables = set(inspect(conn).get_table_names())
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {"workspaces", "users", "memberships", "api_keys", "audit_log", "events", "jobs"} <= tables


def test_every_workspace_owned_table_carries_workspace_id():
    import_all_models()
    # channel_shared_state: a platform's limits and tokens belong to the corp, whichever workspaces use it.
    platform_tables = {"workspaces", "users", "console_sessions", "login_attempts", "channel_shared_state"}
    for table in Base.metadata.sorted_tables:
        if table.name in platform_tables:
            continue
        assert "workspace_id" in table.c, f"{table.name} has no workspace_id"
