"""The import's engine-specific inserts: what they store and when PostgreSQL's statistics are refreshed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.contacts import import_sql, service
from siyu.contacts.models import Contact, ContactTag, Identity, Tag, TagGroup
from siyu.core import clock
from siyu.core.tenancy import bound_workspace

POWERS = [2_000 * 2**k for k in range(12)]


@given(before=st.integers(0, 5_000_000), step=st.integers(0, 100_000))
def test_statistics_are_refreshed_exactly_when_an_import_passes_a_doubling(before, step):
    after = before + step

    assert import_sql.doubled(before, after) == any(before < p <= after for p in POWERS if p <= 5_100_000)


def test_new_contacts_identities_and_tags_are_stored_as_the_orm_reads_them(db, ws):
    workspace_id = bound_workspace(db)
    group = TagGroup(name="g")
    db.add(group)
    db.flush()
    tag = Tag(group_id=group.id, name="t")
    db.add(tag)
    db.flush()
    now = clock.now()

    ids = import_sql.insert_contacts(db, workspace_id, [
        {"name": "甲", "phone": "+8613800138000", "attributes": {"vip": "是"}},
        {"email": "b@example.com", "attributes": {}},
    ], owner_id=None, now=now)
    stored = import_sql.insert_identities(db, workspace_id, [(ids[0], "phone", "+8613800138000"),
                                                             (ids[1], "email", "b@example.com")], now=now)
    again = import_sql.insert_identities(db, workspace_id, [(ids[1], "phone", "+8613800138000")], now=now)
    added = import_sql.insert_contact_tags(db, workspace_id, [(ids[0], tag.id), (ids[1], tag.id)], source="import",
                                           now=now)
    repeated = import_sql.insert_contact_tags(db, workspace_id, [(ids[0], tag.id)], source="import", now=now)

    assert ids == sorted(ids)
    assert len(set(ids)) == 2
    assert (stored, again) == (2, 0)
    assert sorted(added) == [(ids[0], tag.id), (ids[1], tag.id)]
    assert repeated == []
    first = db.execute(select(Contact).where(Contact.id == ids[0])).scalar_one()
    assert (first.name, first.phone, first.attributes, first.stage, first.created_at) == (
        "甲", "+8613800138000", {"vip": "是"}, "new", now)
    assert service.lookup_identities(db, [("phone", "+8613800138000"), ("email", "b@example.com")]) == {
        ("phone", "+8613800138000"): ids[0], ("email", "b@example.com"): ids[1]}
    assert db.execute(select(Identity.contact_id).where(Identity.type == "phone")).scalar_one() == ids[0]
    assert len(db.execute(select(ContactTag)).scalars().all()) == 2


@pytest.mark.postgres_only
def test_statistics_refresh_runs_inside_the_chunks_transaction(db, ws):
    import_sql.keep_statistics(db, 1_999, 2_000)

    assert db.execute(select(Contact.id)).first() is None
