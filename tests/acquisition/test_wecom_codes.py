"""WeCom channel codes end to end: the contact way made on the local WeCom server, an add through the real
callback route landing with its owner, tags and the code's own welcome, rotation rewriting the member list
only when the eligible set changes, and members WeCom refuses shown per staff member."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from siyu.acquisition import service
from siyu.acquisition.models import Arrival, Attribution
from siyu.channels import service as channels
from siyu.contacts import service as contacts
from siyu.contacts import tags as tag_service
from siyu.core.models import Event
from tests.acquisition.conftest import ACTOR
from tests.servers.wecom import add_external_contact_xml, callback_body

UPDATE = "/cgi-bin/externalcontact/update_contact_way"


def post_add(client, account, external: str, *, userid: str, state: str, welcome_code: str = "",
             later: int = 0, now: int | None = None):
    xml = add_external_contact_xml(external, userid=userid, state=state, welcome_code=welcome_code,
                                   create_time=(now or int(time.time())) + later)
    query, body = callback_body(xml)
    return client.post(f"/hooks/wecom/{account.id}", params=query, content=body)


def make_code(db, account, source, staff, **kwargs):
    values = {"name": "Parcel card June", "source_id": source.id, "kind": "wecom", "account_id": account.id,
              "members": [{"staff_id": staff[0].id, "daily_cap": 1}, {"staff_id": staff[1].id}]}
    return service.create_code(db, **{**values, **kwargs}, actor=ACTOR)


def test_a_code_is_a_multi_member_contact_way_whose_qr_is_read_back(db, account, source, staff, fake):
    code = make_code(db, account, source, staff, state="parcel-june")

    way = fake.contact_ways[code.config_id]
    assert (way["type"], way["state"], sorted(way["user"])) == (2, "parcel-june", ["lisi", "zhangsan"])
    assert code.qr_url == way["qr_code"]
    assert code.qr_content == fake.qr_target(code.config_id)
    assert code.synced_userids == ["lisi", "zhangsan"]


def test_an_add_through_the_callback_lands_owned_tagged_and_welcomed_by_the_code(
        db, account, source, staff, fake, hooks_app, client, run_jobs):
    group = tag_service.create_tag_group(db, name="Source", actor=ACTOR)
    tag = tag_service.create_tag(db, group_id=group.id, name="parcel card", actor=ACTOR)
    code = make_code(db, account, source, staff, tag_ids=[tag.id], welcome={"text": "Thanks for scanning the card!"})
    db.commit()

    now = int(time.time())
    first = post_add(client, account, "wmA", userid="zhangsan", state=code.state, welcome_code="WC-A", now=now)
    again = post_add(client, account, "wmA", userid="zhangsan", state=code.state, welcome_code="WC-A", now=now)

    assert (first.text, again.text) == ("success", "success")
    db.expire_all()
    arrivals = db.execute(select(Arrival)).scalars().all()
    assert [(a.code_id, a.staff_id, a.kind, a.new_contact, a.note) for a in arrivals] == [
        (code.id, staff[0].id, "add", True, None)]
    contact = contacts.get_contact(db, arrivals[0].contact_id)
    assert contact.owner_id == staff[0].id
    assert tag_service.contact_has_tags(db, contact.id, [tag.id]) == {tag.id}
    touch = db.execute(select(Attribution)).scalar_one()
    assert (touch.first_code_id, touch.latest_source_id, touch.first_staff_id) == (code.id, source.id, staff[0].id)
    assert [w["welcome_code"] for w in fake.welcomes] == ["WC-A"]
    assert fake.welcomes[0]["text"]["content"] == "Thanks for scanning the card!"
    event = db.execute(select(Event).where(Event.type == "acquisition.arrived")).scalar_one()
    assert event.properties["code_id"] == code.id
    assert event.properties["staff_id"] == staff[0].id

    # Zhang San reached his cap of 1: the member list becomes Li Si alone, once.
    run_jobs()
    assert [sorted(c["user"]) for c in fake.calls(UPDATE)] == [["lisi"]]
    post_add(client, account, "wmB", userid="lisi", state=code.state, later=1)
    post_add(client, account, "wmC", userid="lisi", state=code.state, later=2)
    run_jobs()
    assert len(fake.calls(UPDATE)) == 1  # the eligible set did not change again: no more calls
    db.expire_all()
    assert service.get_code(db, code.id).synced_userids == ["lisi"]
    assert db.execute(select(func.count()).select_from(Arrival)).scalar_one() == 3


def test_a_paused_code_still_lands_the_contact_says_so_and_skips_its_own_welcome(
        db, account, source, staff, fake, hooks_app, client):
    code = make_code(db, account, source, staff, welcome={"text": "Code welcome"})
    service.set_status(db, code, "paused", actor=ACTOR)
    db.commit()

    post_add(client, account, "wmP", userid="lisi", state=code.state, welcome_code="WC-P")

    db.expire_all()
    arrival = db.execute(select(Arrival)).scalar_one()
    assert (arrival.note, arrival.staff_id) == ("code_paused", staff[1].id)
    assert fake.welcomes == []  # no default welcome on the account either


def test_an_add_with_an_unknown_state_is_no_arrival(db, account, source, staff, hooks_app, client):
    make_code(db, account, source, staff)
    db.commit()
    post_add(client, account, "wmX", userid="lisi", state="someone-elses")
    db.expire_all()
    assert db.execute(select(func.count()).select_from(Arrival)).scalar_one() == 0
    assert channels.address_row(db, account, "wmX") is not None


def test_members_wecom_refuses_are_dropped_and_shown_per_staff_member(db, account, source, staff, fake):
    fake.no_permission.add("lisi")
    code = make_code(db, account, source, staff, members=[{"staff_id": s.id} for s in staff])

    rows = {r.staff_id: r.platform_error for r in service.members_of(db, code)}
    assert rows[staff[1].id].startswith("84074")
    assert rows[staff[0].id] is None
    assert rows[staff[2].id] is None
    assert sorted(fake.contact_ways[code.config_id]["user"]) == ["wangwu", "zhangsan"]
    assert code.synced_userids == ["wangwu", "zhangsan"]


def test_a_single_member_not_verified_is_refused_with_the_reason(db, account, source, staff, fake):
    fake.unverified.add("zhangsan")
    import pytest

    from siyu.core.errors import Invalid

    with pytest.raises(Invalid) as refused:
        make_code(db, account, source, staff, members=[{"staff_id": staff[0].id}])
    assert refused.value.field == "members"
    assert "40098" in refused.value.message


def test_repointing_updates_the_same_contact_way(db, account, source, staff, fake):
    code = make_code(db, account, source, staff)
    config_id = code.config_id

    service.update_code(db, code, changes={"members": [{"staff_id": staff[2].id}, {"staff_id": staff[1].id}]},
                        actor=ACTOR)

    assert code.config_id == config_id
    assert len(fake.contact_ways) == 1
    assert sorted(fake.contact_ways[config_id]["user"]) == ["lisi", "wangwu"]
