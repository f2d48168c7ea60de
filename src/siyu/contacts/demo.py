"""Demo data of the contacts module: staff, tag groups and rules, a contact per shopper, owners, tags, stages.

Runs after the foundation demo wrote its shoppers' events. The person resolver usually created their
contacts at ingestion; any identity still without one gets a contact here, set-based, so `--contacts
10000` stays fast. Everything is found or made by name and every write skips what exists, so a second
run adds nothing twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from faker import Faker
from rich.progress import Progress
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from siyu.contacts import lifecycle, segments, tag_rules, tags
from siyu.contacts import staff as staff_service
from siyu.contacts.models import Contact, ContactTag, Identity, Segment, StaffMember, Tag, TagGroup, TagRule
from siyu.core.audit import Actor
from siyu.core.models import Event, User, Workspace

ACTOR = Actor.cli("demo")
CHUNK = 5000
# (group, [(tag, colour)]): names in Chinese and English, as a bilingual shop writes them.
TAG_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("兴趣 Interest", (("茶叶 Tea", "#1f8a70"), ("护肤 Skincare", "#db2777"), ("茶具 Teaware", "#a16207"))),
    ("来源 Source", (("包裹卡 Parcel card", "#2563eb"), ("门店海报 Store poster", "#7c3aed"),
                     ("直播 Live stream", "#dc2626"), ("公众号 Official account", "#059669"))),
    ("阶段 Stage", (("新客 New customer", "#0891b2"), ("复购 Repeat buyer", "#ca8a04"),
                    ("高价值 VIP", "#b91c1c"))),
)
SOURCE_WEIGHTS = (40, 25, 20, 15)
CITIES = ("上海", "杭州", "北京", "深圳", "广州", "成都", "苏州", "南京", "Madrid", "Singapore")


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _group(session: Session, name: str) -> TagGroup:
    found = session.execute(select(TagGroup).where(TagGroup.name == name)).scalar_one_or_none()
    return found or tags.create_tag_group(session, name=name, actor=ACTOR)


def _tag(session: Session, group: TagGroup, name: str, color: str) -> Tag:
    found = session.execute(select(Tag).where(Tag.group_id == group.id, Tag.name == name)).scalar_one_or_none()
    return found or tags.create_tag(session, group_id=group.id, name=name, color=color, actor=ACTOR)


def _staff(session: Session) -> list[StaffMember]:
    """A staff member per demo user with the staff role, linked to their console login."""
    users = session.execute(
        select(User).where(User.email.like("staff%@siyu.local")).order_by(User.email)
    ).scalars().all()
    linked = set(session.execute(select(StaffMember.user_id)).scalars())
    for n, user in enumerate(users, start=1):
        if user.id not in linked:
            staff_service.create_staff(session, name=user.name, user_id=user.id, wecom_userid=f"demo-staff-{n:02d}",
                                       actor=ACTOR)
    return staff_service.list_staff(session, active=True)


def _rules(session: Session, by_name: dict[str, Tag]) -> None:
    existing = set(session.execute(select(TagRule.name)).scalars())
    wanted = (
        ("Tea lovers 爱茶", "product.viewed", [{"property": "sku", "op": "contains", "value": "TEA"}], "茶叶 Tea"),
        ("Skincare fans 护肤", "product.viewed", [{"property": "sku", "op": "contains", "value": "SKN"}],
         "护肤 Skincare"),
        ("Big orders 大单", "order.paid", [{"property": "amount", "op": "gte", "value": 30000}], "高价值 VIP"),
    )
    for name, event_type, conditions, tag_name in wanted:
        if name not in existing:
            tag_rules.create_rule(session, values={
                "name": name, "trigger": "event", "config": {"event_type": event_type, "conditions": conditions},
                "add_tag_ids": [by_name[tag_name].id],
            }, actor=ACTOR)


# The segments the rule reference teaches (docs/segment-rules.md), ready in the demo's builder.
SEGMENTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("沉默客户 Silent customers", {"all": [
        {"event": "*", "op": "at_least", "count": 1},
        {"event": "*", "op": "none", "within_days": 30},
    ]}),
    ("潜在客户 Potential customers", {"all": [
        {"any": [{"field": "stage", "op": "eq", "value": "engaged"},
                 {"event": "*", "op": "at_least", "count": 1, "within_days": 90}]},
        {"event": "order.paid", "op": "none"},
    ]}),
    ("高价值复购 High-value repeat buyers", {"all": [
        {"field": "stage", "op": "eq", "value": "repeat"},
        {"event": "order.paid", "aggregate": "sum", "property": "amount", "op": "gte", "value": 30000,
         "within_days": 90},
    ]}),
)


def _segments(session: Session) -> None:
    existing = set(session.execute(select(Segment.name)).scalars())
    for name, rule in SEGMENTS:
        if name not in existing:
            segment = segments.create_segment(session, name=name, kind="dynamic", rule=rule, actor=ACTOR)
            segments.refresh_segment(session, segment)


def _contacts_for_unresolved_identities(session: Session, workspace: Workspace) -> int:
    """A contact (and identity) for every identity the events name that no contact has yet."""
    known = select(Identity.id).where(Identity.type == Event.identity_type, Identity.value == Event.identity_value)
    pairs = session.execute(
        select(Event.identity_type, Event.identity_value, func.min(Event.occurred_at))
        .where(Event.contact_id.is_(None), Event.identity_type.is_not(None), ~known.exists())
        .group_by(Event.identity_type, Event.identity_value)
        .order_by(func.min(Event.occurred_at))
    ).all()
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        rows = [{"workspace_id": workspace.id, "created_at": first, "updated_at": first,
                 "phone": value if kind == "phone" else None, "email": value if kind == "email" else None}
                for kind, value, first in chunk]
        ids = session.execute(
            _table(Contact).insert().returning(Contact.id, sort_by_parameter_order=True), rows
        ).scalars().all()
        session.execute(_table(Identity).insert(), [
            {"workspace_id": workspace.id, "contact_id": cid, "type": kind, "value": value, "created_at": first}
            for cid, (kind, value, first) in zip(ids, chunk, strict=True)
        ])
    # Events that named these people by identity now name their contact.
    contact_of = (
        select(Identity.contact_id)
        .where(Identity.workspace_id == Event.workspace_id, Identity.type == Event.identity_type,
               Identity.value == Event.identity_value)
        .scalar_subquery()
    )
    session.execute(
        update(Event).where(Event.contact_id.is_(None), Event.identity_type.is_not(None))
        .values(contact_id=contact_of).execution_options(synchronize_session=False)
    )
    return len(pairs)


def _fill_profiles(session: Session, rng: random.Random) -> None:
    """Names, genders and cities for contacts without a name; created_at at their first event."""
    first_seen = (
        select(func.min(Event.occurred_at)).where(Event.contact_id == Contact.id).scalar_subquery()
    )
    session.execute(
        update(Contact).where(first_seen < Contact.created_at).values(created_at=first_seen)
        .execution_options(synchronize_session=False)
    )
    nameless = session.execute(select(Contact.id).where(Contact.name.is_(None)).order_by(Contact.id)).scalars().all()
    zh, en = Faker("zh_CN"), Faker("en_US")
    seed = rng.getrandbits(32)
    rows: list[dict[str, Any]] = []
    table = _table(Contact)
    for cid in nameless:
        person = random.Random(f"{seed}:{cid}")
        fake = zh if person.random() < 0.8 else en
        fake.seed_instance(person.getrandbits(32))
        gender = person.choice(("female", "female", "male", "other"))
        name = fake.name_female() if gender == "female" else fake.name_male() if gender == "male" else fake.name()
        rows.append({"b_id": cid, "b_name": name, "b_gender": gender, "b_city": person.choice(CITIES)})
    for start in range(0, len(rows), CHUNK):
        stmt = table.update().where(table.c.id == bindparam("b_id")).values(
            name=bindparam("b_name"), gender=bindparam("b_gender"), city=bindparam("b_city"))
        session.connection().execute(stmt, rows[start : start + CHUNK])


def _assign_owners(session: Session, staff: Sequence[StaffMember], rng: random.Random) -> None:
    if not staff:
        return
    orphans = session.execute(select(Contact.id).where(Contact.owner_id.is_(None)).order_by(Contact.id)).scalars().all()
    by_owner: dict[int, list[int]] = {}
    for cid in orphans:
        by_owner.setdefault(staff[cid % len(staff)].id, []).append(cid)
    for owner, ids in by_owner.items():
        for start in range(0, len(ids), CHUNK):
            session.execute(
                update(Contact).where(Contact.id.in_(ids[start : start + CHUNK])).values(owner_id=owner)
                .execution_options(synchronize_session=False)
            )


def _tag_all(session: Session, tag: Tag, contact_ids: Sequence[int]) -> None:
    for start in range(0, len(contact_ids), CHUNK):
        tags.add_tags(session, contact_ids[start : start + CHUNK], [tag.id], source="demo", actor=None)


def _put_tags(session: Session, by_name: dict[str, Tag], rng: random.Random) -> None:
    contact_ids = session.execute(select(Contact.id).order_by(Contact.id)).scalars().all()
    sourced = set(session.execute(
        select(ContactTag.contact_id).where(ContactTag.tag_id.in_([by_name[n].id for n, _ in TAG_GROUPS[1][1]]))
    ).scalars())
    seed = rng.getrandbits(32)
    by_source: dict[str, list[int]] = {}
    for cid in contact_ids:
        if cid not in sourced:
            pick = random.Random(f"{seed}:source:{cid}").choices(TAG_GROUPS[1][1], weights=SOURCE_WEIGHTS)[0][0]
            by_source.setdefault(pick, []).append(cid)
    for name, ids in by_source.items():
        _tag_all(session, by_name[name], ids)
    # Interests from what people looked at (the rules do this for new events from now on).
    for prefix, name in (("TEA", "茶叶 Tea"), ("SKN", "护肤 Skincare"), ("CUP", "茶具 Teaware")):
        viewers = session.execute(
            select(Event.contact_id).distinct()
            .where(Event.type == "product.viewed", Event.contact_id.is_not(None),
                   Event.properties["sku"].as_string().startswith(prefix))
            .order_by(Event.contact_id)
        ).scalars().all()
        _tag_all(session, by_name[name], [int(c) for c in viewers if c is not None])


def _stage_tags(session: Session, by_name: dict[str, Tag]) -> None:
    for stage, name in (("customer", "新客 New customer"), ("repeat", "复购 Repeat buyer")):
        ids = session.execute(select(Contact.id).where(Contact.stage == stage).order_by(Contact.id)).scalars().all()
        _tag_all(session, by_name[name], list(ids))
    vip = session.execute(select(Contact.id).where(Contact.rfm_monetary == 5).order_by(Contact.id)).scalars().all()
    _tag_all(session, by_name["高价值 VIP"], list(vip))


def _tags(session: Session) -> dict[str, Tag]:
    by_name: dict[str, Tag] = {}
    for group_name, group_tags in TAG_GROUPS:
        group = _group(session, group_name)
        for tag_name, color in group_tags:
            by_name[tag_name] = _tag(session, group, tag_name, color)
    return by_name


def settle(session: Session) -> None:
    """Stages, RFM and the stage tags from every event so far: a later module's demo that adds events
    about these contacts calls it, so a second demo run finds nothing left to change."""
    lifecycle.refresh_lifecycle(session, None)
    _stage_tags(session, _tags(session))


def add_demo_contacts(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """Staff, tags and rules, a contact per shopper with an owner and tags, stages and RFM, example segments."""
    task = progress.add_task("contacts", total=6)
    staff = _staff(session)
    by_name = _tags(session)
    _rules(session, by_name)
    progress.advance(task)
    _contacts_for_unresolved_identities(session, workspace)
    progress.advance(task)
    _fill_profiles(session, rng)
    _assign_owners(session, staff, rng)
    progress.advance(task)
    _put_tags(session, by_name, rng)
    progress.advance(task)
    lifecycle.refresh_lifecycle(session, None)
    lifecycle.ensure_daily_refresh(session)
    progress.advance(task)
    _stage_tags(session, by_name)
    _segments(session)
    progress.advance(task)
