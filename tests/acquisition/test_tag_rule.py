"""The "on arrival through a channel code" tag rule: config checked, fires on acquisition.arrived."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.acquisition import service
from siyu.contacts import service as contacts
from siyu.contacts import tag_rules
from siyu.contacts import tags as tag_service
from siyu.core.errors import Invalid
from siyu.core.models import Event
from tests.acquisition.conftest import ACTOR


def test_a_channel_code_rule_tags_whoever_arrives_through_its_source(db, ws, source, staff):
    group = tag_service.create_tag_group(db, name="Came from", actor=ACTOR)
    tag = tag_service.create_tag(db, group_id=group.id, name="parcel", actor=ACTOR)
    code = service.create_code(db, name="Card", source_id=source.id, kind="link", target_url="https://e.example",
                               members=[{"staff_id": staff[0].id}], actor=ACTOR)
    with pytest.raises(Invalid):
        tag_rules.create_rule(db, values={"name": "bad", "trigger": "channel_code", "config": {},
                                          "add_tag_ids": [tag.id]}, actor=ACTOR)
    rule = tag_rules.create_rule(db, values={"name": "Parcel", "trigger": "channel_code",
                                             "config": {"source_ids": [source.id]}, "add_tag_ids": [tag.id]},
                                 actor=ACTOR)
    contact, _ = contacts.upsert_contact(db, identities=[{"type": "phone", "value": "13800138000"}], actor=None)

    service.record_arrival(db, code, kind="add", dedupe_key="k", contact_id=contact.id)
    event = db.execute(select(Event).where(Event.type == "acquisition.arrived")).scalar_one()

    assert tag_rules.apply_rules(db, event) == [rule.id]
    assert tag_service.contact_has_tags(db, contact.id, [tag.id]) == {tag.id}
