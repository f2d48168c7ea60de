"""Tag groups and tags, and tagging contacts in bulk: each real change one event, the act audited once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.contacts import tags
from siyu.contacts.models import ContactTag
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.tenancy import bind_workspace
from tests.contacts.tag_support import ACTOR, add_contacts, audit_actions, events_of


@pytest.fixture
def ws(make_workspace, db):
    workspace = make_workspace("Tea Shop")
    bind_workspace(db, workspace.id)
    return workspace


def test_groups_and_tags_have_unique_names_where_they_live(db, ws):
    interest = tags.create_tag_group(db, name=" Interest ", actor=ACTOR)
    source = tags.create_tag_group(db, name="Source", actor=ACTOR)
    tea = tags.create_tag(db, group_id=interest.id, name="Tea", color="#1F8A70", actor=ACTOR)
    # The same tag name in another group is another tag.
    tags.create_tag(db, group_id=source.id, name="Tea", actor=ACTOR)

    with pytest.raises(Conflict) as group_clash:
        tags.create_tag_group(db, name="Interest", actor=ACTOR)
    with pytest.raises(Conflict) as tag_clash:
        tags.create_tag(db, group_id=interest.id, name="Tea", actor=ACTOR)

    assert interest.name == "Interest"
    assert tea.color == "#1f8a70"
    assert group_clash.value.field == "name"
    assert tag_clash.value.field == "name"
    assert [t.name for t in tags.list_tags(db, group_id=interest.id)] == ["Tea"]
    assert audit_actions(db) == ["tag_group.create", "tag_group.create", "tag.create", "tag.create"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"name": "  "}, "name"), ({"name": "x" * 81}, "name"), ({"name": "ok", "color": "red"}, "color")],
)
def test_bad_tag_input_names_its_field(db, ws, kwargs, field):
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    with pytest.raises(Invalid) as refused:
        tags.create_tag(db, group_id=group.id, actor=ACTOR, **kwargs)
    assert refused.value.field == field


def test_a_tag_of_another_workspace_is_not_found(db, ws, make_workspace):
    other = make_workspace("Other")
    bind_workspace(db, other.id)
    foreign_group = tags.create_tag_group(db, name="Theirs", actor=ACTOR)
    foreign_tag = tags.create_tag(db, group_id=foreign_group.id, name="Secret", actor=ACTOR)
    mine = add_contacts(db, ws.id, 1)

    with pytest.raises(NotFound):
        tags.get_tag(db, foreign_tag.id)
    with pytest.raises(NotFound) as in_group:
        tags.create_tag(db, group_id=foreign_group.id, name="x", actor=ACTOR)
    with pytest.raises(NotFound) as bulk:
        tags.add_tags(db, mine, [foreign_tag.id], actor=ACTOR)
    assert in_group.value.field == "group_id"
    assert bulk.value.field == "tag_ids"


def test_bulk_tagging_changes_only_what_is_new_and_says_so_once_per_change(db, ws):
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    tea = tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)
    skin = tags.create_tag(db, group_id=group.id, name="Skincare", actor=ACTOR)
    ids = add_contacts(db, ws.id, 5)

    first = tags.add_tags(db, ids[:3], [tea.id], source="manual", actor=ACTOR)
    second = tags.add_tags(db, ids, [tea.id, skin.id], source="import", actor=ACTOR)

    assert (first.changed, first.unchanged) == (3, 0)
    assert (second.changed, second.unchanged) == (7, 3)
    added = events_of(db, "tag.added")
    assert len(added) == 10
    assert {(e.contact_id, e.properties["tag_id"]) for e in added} == {(c, t) for c in ids for t in (tea.id, skin.id)}
    assert added[0].properties == {"tag_id": tea.id, "tag": "Tea", "source": "manual"}
    assert tags.tag_counts(db) == {tea.id: 5, skin.id: 5}
    assert audit_actions(db).count("tag.bulk_add") == 2


def test_bulk_untagging_removes_only_what_is_there(db, ws):
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    tea = tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)
    ids = add_contacts(db, ws.id, 4)
    tags.add_tags(db, ids[:2], [tea.id], actor=ACTOR)

    change = tags.remove_tags(db, ids, [tea.id], actor=ACTOR)
    again = tags.remove_tags(db, ids, [tea.id], actor=ACTOR)

    assert (change.changed, change.unchanged) == (2, 2)
    assert again.changed == 0
    assert sorted(e.contact_id for e in events_of(db, "tag.removed")) == ids[:2]
    assert db.execute(select(ContactTag)).first() is None


def test_bulk_input_is_checked_before_anything_is_written(db, ws):
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    tea = tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)
    ids = add_contacts(db, ws.id, 2)

    with pytest.raises(NotFound) as unknown_contact:
        tags.add_tags(db, [*ids, 10**12], [tea.id], actor=ACTOR)
    with pytest.raises(Invalid) as no_contacts:
        tags.add_tags(db, [], [tea.id], actor=ACTOR)
    with pytest.raises(Invalid) as bad_id:
        tags.add_tags(db, ["1"], [tea.id], actor=ACTOR)
    with pytest.raises(Invalid) as bad_source:
        tags.add_tags(db, ids, [tea.id], source="Robert'); DROP", actor=ACTOR)

    assert unknown_contact.value.field == "contact_ids"
    assert no_contacts.value.field == "contact_ids"
    assert bad_id.value.field == "contact_ids"
    assert bad_source.value.field == "source"
    assert db.execute(select(ContactTag)).first() is None
    assert events_of(db, "tag.added") == []


def test_deleting_a_tag_takes_it_off_everyone_with_events(db, ws):
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    tea = tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)
    ids = add_contacts(db, ws.id, 3)
    tags.add_tags(db, ids, [tea.id], actor=ACTOR)

    tags.delete_tag_group(db, group, actor=ACTOR)

    removed = events_of(db, "tag.removed")
    assert sorted(e.contact_id for e in removed) == ids
    assert removed[0].properties["source"] == "tag_deleted"
    assert tags.list_tag_groups(db) == []


def test_update_moves_renames_and_recolours(db, ws):
    a = tags.create_tag_group(db, name="A", actor=ACTOR)
    b = tags.create_tag_group(db, name="B", actor=ACTOR)
    tag = tags.create_tag(db, group_id=a.id, name="One", actor=ACTOR)
    tags.create_tag(db, group_id=b.id, name="Two", actor=ACTOR)

    tags.update_tag(db, tag, changes={"group_id": b.id, "name": "Uno", "color": "#000000"}, actor=ACTOR)
    with pytest.raises(Conflict):
        tags.update_tag(db, tag, changes={"name": "Two"}, actor=ACTOR)

    assert (tag.group_id, tag.name, tag.color) == (b.id, "Uno", "#000000")
