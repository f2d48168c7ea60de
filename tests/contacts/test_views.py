"""Console pages of contacts: list, search, bulk actions, profile editing, consent, timeline, staff scope."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from siyu.contacts import service
from siyu.contacts.models import Contact, StaffMember
from siyu.core.events import record_event
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import page_token, sign_in
from tests.contacts.conftest import ACTOR


@pytest.fixture
def signed_in(client, db, make_workspace, make_user):
    ws = make_workspace(locale="en")
    user = make_user(ws, "operator")
    assert sign_in(client, user.email).status_code == 303
    return ws


def _contact(db, ws, **fields) -> int:
    bind_workspace(db, ws.id)
    contact = service.create_contact(db, fields=fields, actor=ACTOR)
    db.commit()
    bind_workspace(db, None)
    return contact.id


def test_empty_list_says_how_contacts_arrive(client, signed_in):
    r = client.get("/console/contacts")

    assert r.status_code == 200
    assert "No contacts yet" in r.text


def test_list_searches_and_pages_with_htmx(client, db, signed_in):
    for i in range(55):
        _contact(db, signed_in, name=f"Tea {i}")
    _contact(db, signed_in, name="Coffee person")

    first = client.get("/console/contacts", params={"q": "tea"})
    assert first.text.count('name="contact_ids"') == 50
    assert "Coffee person" not in first.text
    cursor = re.search(r'hx-get="/console/contacts\?cursor=([^&"]+)', first.text).group(1)
    more = client.get(f"/console/contacts?cursor={cursor}&q=tea", headers={"HX-Request": "true"})
    assert more.text.count('name="contact_ids"') == 5
    assert "<html" not in more.text


def test_bulk_do_not_contact_and_delete(client, db, signed_in):
    a, b, c = (_contact(db, signed_in, name=n) for n in ("A", "B", "C"))
    token = page_token(client, "/console/contacts")

    r = client.post("/console/contacts/bulk/do-not-contact", data={"csrf_token": token, "contact_ids": [a, b],
                                                                     "value": "on"}, follow_redirects=False)
    assert r.status_code == 303
    client.post("/console/contacts/bulk/delete", data={"csrf_token": token, "contact_ids": [c]})

    bind_workspace(db, signed_in.id)
    db.expire_all()
    assert {x.name: x.do_not_contact for x in db.execute(select(Contact)).scalars()} == {"A": True, "B": True}


def test_profile_edit_shows_field_errors_and_saves(client, db, signed_in):
    cid = _contact(db, signed_in, name="Wang")
    token = page_token(client, f"/console/contacts/{cid}")

    bad = client.post(f"/console/contacts/{cid}", data={"csrf_token": token, "name": "Wang", "phone": "12"})
    assert bad.status_code == 422
    assert "Enter a valid phone number" in bad.text
    assert 'aria-invalid="true"' in bad.text
    good = client.post(f"/console/contacts/{cid}", data={"csrf_token": token, "name": "Wang Fang",
                                                         "phone": "13800000060"}, follow_redirects=False)
    assert good.status_code == 303
    page = client.get(f"/console/contacts/{cid}").text
    assert "Wang Fang" in page
    assert "+8613800000060" in page


def test_profile_shows_timeline_consent_and_notes(client, db, signed_in):
    cid = _contact(db, signed_in, name="Li")
    bind_workspace(db, signed_in.id)
    for i in range(25):
        record_event(db, type="page.viewed", contact_id=cid, properties={"path": f"/p{i}"})
    db.commit()
    bind_workspace(db, None)
    token = page_token(client, f"/console/contacts/{cid}")

    client.post(f"/console/contacts/{cid}/consent", data={"csrf_token": token, "channel": "sms",
                                                          "status": "granted", "source": "paper form"})
    client.post(f"/console/contacts/{cid}/notes", data={"csrf_token": token, "body": "prefers green tea"})
    page = client.get(f"/console/contacts/{cid}").text

    assert "paper form" in page
    assert "prefers green tea" in page
    assert page.count('class="timeline-item"') == 20
    more = re.search(r'hx-get="(/console/contacts/\d+/timeline\?cursor=[^"]+)"', page).group(1)
    rest = client.get(more, headers={"HX-Request": "true"}).text
    assert rest.count('class="timeline-item"') == 8  # 25 views + created + consent + note - 20


def test_staff_see_only_their_own_contacts(client, db, make_workspace, make_user):
    ws = make_workspace(locale="en")
    staff_user = make_user(ws, "staff")
    bind_workspace(db, ws.id)
    me, colleague = StaffMember(name="Me", user_id=staff_user.id), StaffMember(name="Colleague")
    db.add_all([me, colleague])
    db.flush()
    mine = service.create_contact(db, fields={"name": "Mine"}, owner_id=me.id, actor=ACTOR)
    other = service.create_contact(db, fields={"name": "Someone else"}, owner_id=colleague.id, actor=ACTOR)
    db.commit()
    bind_workspace(db, None)
    sign_in(client, staff_user.email)

    listing = client.get("/console/contacts").text
    assert "Mine" in listing
    assert "Someone else" not in listing
    assert client.get(f"/console/contacts/{mine.id}").status_code == 200
    assert client.get(f"/console/contacts/{other.id}").status_code == 404
