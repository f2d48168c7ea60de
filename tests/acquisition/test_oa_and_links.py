"""Official Account codes (a permanent scene_str QR; a follow or a scan with the scene is an arrival, the
owner chosen by rotation) and link codes (`/c/<state>` records a click and redirects, paused or not)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.acquisition import service
from siyu.acquisition.models import Arrival
from siyu.contacts import service as contacts
from tests.acquisition.conftest import ACTOR
from tests.channels.wechat_oa.conftest import (  # noqa: F401
    _fresh_tokens,
    fake,
    oa,
    post,
    sample_clock,
)
from tests.channels.wechat_oa.test_callbacks import push_xml, signed
from tests.servers import wechat_oa as fake_oa


@pytest.fixture
def oa_code(db, oa, source, staff):  # noqa: F811
    return service.create_code(db, name="Store poster", source_id=source.id, kind="wechat_oa", account_id=oa.id,
                               state="store-poster", members=[{"staff_id": staff[1].id}, {"staff_id": staff[2].id}],
                               actor=ACTOR)


def test_an_oa_code_is_a_permanent_scene_qr(oa_code, fake):  # noqa: F811
    running, _ = fake
    body = running.calls("/cgi-bin/qrcode/create")[0][2]
    assert body["action_name"] == "QR_LIMIT_STR_SCENE"
    assert body["action_info"]["scene"]["scene_str"] == "store-poster"
    assert oa_code.qr_content
    assert oa_code.qr_content.startswith("http")


def test_a_follow_and_a_scan_through_the_scene_are_arrivals_and_rotation_picks_the_owner(
        client, db, oa, oa_code, staff, sample_clock):  # noqa: F811
    db.commit()
    follow = push_xml(sender="oNew1", MsgType="event", Event="subscribe", EventKey="qrscene_store-poster",
                      Ticket="T")
    body, query = signed(follow, timestamp=fake_oa_ts(sample_clock), encrypt=True)
    assert post(client, oa.id, body, query).status_code == 200
    scan = push_xml(sender="oNew1", created=1409304349, MsgType="event", Event="SCAN", EventKey="store-poster",
                    Ticket="T")
    body, query = signed(scan, timestamp=fake_oa_ts(sample_clock), encrypt=True)
    post(client, oa.id, body, query)

    db.expire_all()
    rows = db.execute(select(Arrival).order_by(Arrival.id)).scalars().all()
    assert [a.kind for a in rows] == ["add", "scan"]
    # The follow made the contact: the member rotation chose owns them; the scan of a known contact
    # chooses nobody and keeps the owner.
    assert rows[0].staff_id == staff[1].id  # a fresh round robin starts at the first member
    assert rows[1].staff_id is None
    assert contacts.get_contact(db, rows[0].contact_id).owner_id == rows[0].staff_id


def test_a_fresh_round_robin_code_hands_out_in_member_order_from_the_first(db, oa_code, staff):
    assert [m.position for m in service.members_of(db, oa_code)] == [1, 2]
    owners = []
    for i in range(3):
        contact, _ = contacts.upsert_contact(db, identities=[{"type": "phone", "value": f"1380013800{i}"}],
                                             actor=None)
        landed = service.record_arrival(db, oa_code, kind="add", dedupe_key=f"rr{i}", contact_id=contact.id,
                                        new_contact=True)
        owners.append(landed.staff_id)
    assert owners == [staff[1].id, staff[2].id, staff[1].id]


def test_a_known_contact_arriving_keeps_their_owner(db, oa_code, staff):
    contact, _ = contacts.upsert_contact(db, identities=[{"type": "phone", "value": "13800138009"}], actor=None)
    from siyu.contacts import staff as staff_service

    staff_service.assign_owner(db, [contact.id], staff[0].id, actor=None)
    landed = service.record_arrival(db, oa_code, kind="scan", dedupe_key="known", contact_id=contact.id)
    assert (landed.staff_id, landed.arrival.new_contact) == (None, False)
    assert contacts.get_contact(db, contact.id).owner_id == staff[0].id


def fake_oa_ts(c) -> int:
    return int(c().timestamp())


def test_a_link_code_redirects_and_counts_clicks_even_when_paused(client, db, ws, source):
    code = service.create_code(db, name="SMS June", source_id=source.id, kind="link",
                               target_url="https://shop.example.com/june", actor=ACTOR)
    assert code.qr_content.endswith(f"/c/{code.state}")
    assert len(code.state) <= 30
    db.commit()

    first = client.get(f"/c/{code.state}", follow_redirects=False)
    service.set_status(db, code, "paused", actor=ACTOR)
    db.commit()
    second = client.get(f"/c/{code.state}", follow_redirects=False)
    unknown = client.get("/c/nope", follow_redirects=False)

    assert (first.status_code, first.headers["location"]) == (302, "https://shop.example.com/june")
    assert second.status_code == 302
    assert unknown.status_code == 404
    db.expire_all()
    notes = [a.note for a in db.execute(select(Arrival).order_by(Arrival.id)).scalars()]
    assert notes == [None, "code_paused"]
    assert service.daily_series(db, code, days=1).scans == [2]


def test_an_expired_code_is_flipped_by_the_job_and_its_arrivals_say_so(db, ws, source, frozen_now):
    from datetime import timedelta

    code = service.create_code(db, name="Event", source_id=source.id, kind="link", target_url="https://e.example",
                               expires_at=frozen_now() + timedelta(hours=1), actor=ACTOR)
    frozen_now.advance(seconds=7200)
    assert service.live_status(code) == "expired"
    service.record_arrival(db, code, kind="click", dedupe_key="k1", contact_id=None)
    assert db.execute(select(Arrival.note)).scalar_one() == "code_expired"
    assert service.expire_due(db) == 0
    assert code.status == "expired"


__all__ = ["fake_oa"]
