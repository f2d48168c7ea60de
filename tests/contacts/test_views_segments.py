"""Console pages of segments: the list, the live count, saving from the builder, a static list upload."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from siyu.contacts.models import Contact, Identity, Segment, StaffMember
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import page_token, post, sign_in

SHANGHAI = {"all": [{"field": "city", "op": "eq", "value": "Shanghai"}]}


def _world(db, make_workspace, make_user, role="owner"):
    ws = make_workspace("Acme Tea", locale="en")
    user = make_user(ws, role, email=f"{role}@example.com")
    bind_workspace(db, ws.id)
    rows = [Contact(name=n, city=c) for n, c in (("Li", "Shanghai"), ("Wang", "Beijing"), ("Zhao", "Shanghai"))]
    db.add_all(rows)
    db.flush()
    db.add(Identity(contact_id=rows[1].id, type="phone", value="+8613800000002"))
    db.commit()
    return ws, user, rows


def test_the_live_count_follows_the_rule_and_names_mistakes(client, db, make_workspace, make_user):
    _world(db, make_workspace, make_user)
    sign_in(client, "owner@example.com")
    page = client.get("/console/segments/new")
    assert page.status_code == 200
    assert 'id="segment-builder"' in page.text
    assert 'hx-trigger="change delay:300ms' in page.text

    r = post(client, "/console/segments/count", {"rule": json.dumps(SHANGHAI)})
    assert r.status_code == 200
    assert re.search(r'id="segment-count-value"[^>]*>2<', r.text)
    assert "Zhao" in r.text
    assert "Wang" not in r.text
    r = post(client, "/console/segments/count", {"rule": json.dumps({"all": [{"field": "colour", "op": "is_set"}]})})
    assert "rule.all[0].field" in r.text


def test_saving_a_segment_then_seeing_its_members(client, db, make_workspace, make_user):
    ws, _, rows = _world(db, make_workspace, make_user)
    sign_in(client, "owner@example.com")
    r = post(client, "/console/segments", {"name": "Shanghai", "kind": "static", "rule": json.dumps(SHANGHAI)})
    assert r.status_code == 303, r.text
    bind_workspace(db, ws.id)
    segment = db.execute(select(Segment)).scalar_one()
    detail = client.get(r.headers["location"]).text
    assert "Zhao" in detail
    assert "Wang" not in detail
    listing = client.get("/console/segments").text
    assert "Shanghai" in listing

    upload = client.post(f"/console/segments/{segment.id}/members",
                         data={"csrf_token": page_token(client)},
                         files={"file": ("list.csv", b"phone\n13800000002\n13900000000\n", "text/csv")})
    assert upload.status_code == 200
    assert "1 contact added." in upload.text
    assert "phone:13900000000" in upload.text
    r = post(client, f"/console/segments/{segment.id}/members/remove", {"contact_id": str(rows[0].id)})
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Segment, segment.id).member_count == 2

    again = post(client, "/console/segments", {"name": "Shanghai", "kind": "dynamic", "rule": json.dumps(SHANGHAI)})
    assert again.status_code == 409
    assert "Another segment already has this name." in again.text


def test_a_staff_member_counts_only_their_own_contacts(client, db, make_workspace, make_user):
    ws, user, rows = _world(db, make_workspace, make_user, role="staff")
    bind_workspace(db, ws.id)
    me = StaffMember(name="Mei", user_id=user.id)
    db.add(me)
    db.flush()
    rows[0].owner_id = me.id
    db.commit()
    sign_in(client, "staff@example.com")
    r = post(client, "/console/segments/count", {"rule": json.dumps(SHANGHAI)})
    assert re.search(r'id="segment-count-value"[^>]*>1<', r.text)
    assert "Zhao" not in r.text
