"""The tenancy helper: a session bound to workspace A neither reads nor writes workspace B's rows."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from siyu.core.errors import NotFound, TenancyViolation
from siyu.core.models import ApiKey, AuditEntry
from siyu.core.tenancy import bind_workspace, get_scoped


def test_bound_session_reads_only_its_workspace(db, make_workspace, make_key):
    a, b = make_workspace("A"), make_workspace("B")
    make_key(a, name="a-key")
    make_key(b, name="b-key")

    bind_workspace(db, a.id)

    assert [k.name for k in db.execute(select(ApiKey)).scalars()] == ["a-key"]
    assert db.execute(select(func.count()).select_from(AuditEntry)).scalar_one() >= 1
    assert all(e.workspace_id == a.id for e in db.execute(select(AuditEntry)).scalars())


def test_bound_session_cannot_update_or_delete_another_workspace(db, make_workspace, make_key):
    a, b = make_workspace("A"), make_workspace("B")
    make_key(b, name="b-key")

    bind_workspace(db, a.id)
    db.execute(update(ApiKey).values(name="hijacked"))
    db.execute(delete(ApiKey))
    bind_workspace(db, None)

    assert [k.name for k in db.execute(select(ApiKey)).scalars()] == ["b-key"]


def test_writing_a_row_of_another_workspace_is_refused(db, make_workspace):
    a, b = make_workspace("A"), make_workspace("B")

    bind_workspace(db, a.id)
    db.add(ApiKey(workspace_id=b.id, name="x", prefix="sy_x", secret_hash="0" * 64, scopes=[], created_by="t"))

    with pytest.raises(TenancyViolation):
        db.flush()
    db.rollback()


def test_new_rows_take_the_bound_workspace(db, make_workspace):
    a = make_workspace("A")
    bind_workspace(db, a.id)
    key = ApiKey(name="x", prefix="sy_y", secret_hash="0" * 64, scopes=[], created_by="t")
    db.add(key)
    db.flush()
    assert key.workspace_id == a.id


def test_get_scoped_hides_other_workspaces_ids(db, make_workspace, make_key):
    a, b = make_workspace("A"), make_workspace("B")
    make_key(b)
    bind_workspace(db, None)
    b_key_id = db.execute(select(ApiKey.id)).scalar_one()

    bind_workspace(db, a.id)
    with pytest.raises(NotFound):
        get_scoped(db, ApiKey, b_key_id)
    with pytest.raises(NotFound):
        get_scoped(db, ApiKey, "not-a-number")
