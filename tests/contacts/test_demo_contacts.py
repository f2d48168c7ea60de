"""The contacts demo: staff, tags, rules, a contact per shopper with an owner, tags and a stage; twice is once."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from siyu import demo
from siyu.contacts import demo as demo_contacts
from siyu.contacts.models import (
    Contact,
    ContactTag,
    Identity,
    Segment,
    SegmentMember,
    StaffMember,
    TagGroup,
    TagRule,
)
from siyu.core.audit import Actor
from siyu.core.db import session_scope
from siyu.core.models import Event
from siyu.core.tenancy import bind_workspace
from tests.cli_support import configured_database


def _snapshot(workspace_id: int) -> dict[str, object]:
    with session_scope() as s:
        bind_workspace(s, workspace_id)
        named = s.execute(select(func.count()).where(Event.identity_type.is_not(None))).scalar()
        unresolved = s.execute(
            select(func.count()).where(Event.identity_type.is_not(None), Event.contact_id.is_(None))
        ).scalar()
        contacts = s.execute(select(Contact)).scalars().all()
        return {
            "named": named,
            "unresolved": unresolved,
            "contacts": len(contacts),
            # The shop's own keys; the channels' demo adds an openid to those who follow its account.
            "identities": s.execute(select(func.count()).select_from(Identity).where(
                Identity.type.in_(("phone", "email")))).scalar(),
            "without_owner": sum(1 for c in contacts if c.owner_id is None),
            "without_name": sum(1 for c in contacts if not c.name),
            "stages": Counter(c.stage for c in contacts),
            "buyers_scored": all(c.rfm_recency for c in contacts if c.order_count),
            "staff": s.execute(select(func.count()).select_from(StaffMember)).scalar(),
            "groups": sorted(s.execute(select(TagGroup.name)).scalars()),
            "rules": s.execute(select(func.count()).select_from(TagRule)).scalar(),
            "tagged": s.execute(select(func.count(ContactTag.contact_id.distinct()))).scalar(),
            "tag_pairs": s.execute(select(func.count()).select_from(ContactTag)).scalar(),
            "segments": dict(s.execute(select(Segment.name, Segment.member_count).order_by(Segment.name)).all()),
            "members": s.execute(select(func.count()).select_from(SegmentMember)).scalar(),
        }


def test_the_demo_gives_every_shopper_a_contact_owner_tags_and_stage_and_repeats_nothing(monkeypatch):
    with configured_database(monkeypatch):
        first = demo.run_demo(Actor.cli("pytest"), contacts=40, seed=7, days=120)
        once = _snapshot(first.workspace.id)
        demo.run_demo(Actor.cli("pytest"), contacts=40, seed=7, days=120)
        twice = _snapshot(first.workspace.id)

    assert once["unresolved"] == 0
    assert once["contacts"] == once["identities"] == 40
    assert once["without_owner"] == once["without_name"] == 0
    assert once["staff"] == demo.STAFF_COUNT
    assert once["groups"] == ["兴趣 Interest", "来源 Source", "阶段 Stage"]
    assert once["rules"] == 3
    assert once["tagged"] == 40
    assert once["buyers_scored"]
    assert {"customer", "repeat"} & set(once["stages"])
    assert len(once["stages"]) >= 3
    # The rule reference's examples, refreshed: counts match the membership table and someone is in one.
    assert set(once["segments"]) == {name for name, _ in demo_contacts.SEGMENTS}
    assert sum(once["segments"].values()) == once["members"] > 0
    assert twice == once
