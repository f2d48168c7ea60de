"""The acquisition console: sources and codes made through the forms, errors shown at their field with
nothing written, the code page's chart, members' WeCom refusals and arrivals, pausing and expiring."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import func, select

from siyu.acquisition import service
from siyu.acquisition.models import ChannelCode, Source
from siyu.core.tenancy import bind_workspace
from tests.acquisition.conftest import ACTOR
from tests.console.helpers import post, sign_in


@pytest.fixture
def ws(db, make_workspace):
    """A workspace in English (the other languages have their own test)."""
    workspace = make_workspace(locale="en")
    bind_workspace(db, workspace.id)
    return workspace


@pytest.fixture
def signed_in(client, db, ws, make_user):
    user = make_user(ws, "operator")
    assert sign_in(client, user.email).status_code == 303
    bind_workspace(db, ws.id)
    return ws


def _chart(page: str) -> dict:
    found = re.search(r"data-chart='([^']+)'", page)
    assert found, "the page draws no chart"
    return json.loads(html.unescape(found.group(1)))


def test_empty_pages_say_what_they_will_do(client, signed_in):
    codes = client.get("/console/channel-codes")
    assert codes.status_code == 200
    assert "No channel codes yet" in codes.text
    assert 'href="/console/sources/new"' in codes.text
    assert "No sources yet" in client.get("/console/sources").text
    # the sidebar's acquisition entry leads to the codes
    assert 'href="/console/channel-codes"' in client.get("/console").text


def test_a_source_is_made_with_its_cost_in_major_units_and_errors_stay_at_the_field(client, db, signed_in):
    missing = post(client, "/console/sources", {"name": "Parcel cards", "type": "parcel_card", "currency": "CNY",
                                                "cost_kind": "per_unit", "unit_cost": ""})
    assert missing.status_code == 422
    assert 'aria-describedby="cost_model.unit_cost-error"' in missing.text
    assert db.execute(select(func.count()).select_from(Source)).scalar_one() == 0

    made = post(client, "/console/sources", {"name": "Parcel cards", "type": "parcel_card", "currency": "CNY",
                                             "cost_kind": "per_unit", "unit_cost": "0.05", "units_per_day": "1000"})
    assert made.status_code == 303
    db.expire_all()
    source = db.execute(select(Source)).scalar_one()
    assert source.cost_model == {"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000}
    page = client.get("/console/sources").text
    assert "Parcel cards" in page
    assert "0.05" in page

    taken = post(client, "/console/sources", {"name": "Parcel cards", "type": "store_poster", "currency": "CNY"})
    assert taken.status_code == 409
    assert "This name is taken already." in taken.text

    edited = post(client, f"/console/sources/{source.id}", {"name": "Parcel cards", "type": "parcel_card",
                                                            "currency": "CNY", "cost_kind": "fixed",
                                                            "amount": "3000", "starts_on": "2026-06-01"})
    assert edited.status_code == 303
    db.expire_all()
    assert service.get_source(db, source.id).cost_model == {"kind": "fixed", "amount": 300000,
                                                            "starts_on": "2026-06-01"}
    archived = post(client, f"/console/sources/{source.id}/archive")
    assert archived.status_code == 303
    db.expire_all()
    assert db.execute(select(func.count()).select_from(Source)).scalar_one() == 0  # no codes or spend: deleted


def test_a_source_with_codes_is_archived_and_restored(client, db, signed_in, source):
    service.create_code(db, name="SMS June", source_id=source.id, kind="link", target_url="https://e.example",
                        actor=ACTOR)
    db.commit()
    assert post(client, f"/console/sources/{source.id}/archive").status_code == 303
    db.expire_all()
    assert service.get_source(db, source.id).archived
    assert "Parcel cards" in client.get("/console/sources?archived=true").text
    assert "Parcel cards" not in client.get("/console/sources").text.split('id="source-list"')[1]
    assert post(client, f"/console/sources/{source.id}/restore").status_code == 303
    db.expire_all()
    assert not service.get_source(db, source.id).archived


def _code_form(source, account, staff, **extra):
    form = {"name": "Parcel card June", "source_id": str(source.id), "kind": "wecom", "account_id": str(account.id),
            "rotation": "weighted", "welcome_text": "Thanks for scanning!", "skip_verify": "on",
            "member_row": [str(s.id) for s in staff]}
    form.update({f"m{staff[0].id}_on": "on", f"m{staff[0].id}_weight": "2", f"m{staff[0].id}_cap": "30",
                 f"m{staff[0].id}_hours": "1-7 00:00-24:00",
                 f"m{staff[1].id}_on": "on", f"m{staff[1].id}_weight": "1"})
    form.update(extra)
    return form


def test_a_wecom_code_is_made_with_rotation_and_a_bad_member_is_refused_on_their_row(
        client, db, signed_in, source, account, staff, fake):
    bad = post(client, "/console/channel-codes", _code_form(source, account, staff,
                                                            **{f"m{staff[1].id}_cap": "-1"}))
    assert bad.status_code == 422
    assert f'id="m{staff[1].id}-error"' in bad.text
    assert "daily cap" in bad.text
    assert db.execute(select(func.count()).select_from(ChannelCode)).scalar_one() == 0
    assert fake.contact_ways == {}

    hours = post(client, "/console/channel-codes", _code_form(source, account, staff,
                                                              **{f"m{staff[0].id}_hours": "weekdays"}))
    assert hours.status_code == 422
    assert f'id="m{staff[0].id}-error"' in hours.text

    made = post(client, "/console/channel-codes", _code_form(source, account, staff))
    assert made.status_code == 303, made.text
    db.expire_all()
    code = db.execute(select(ChannelCode)).scalar_one()
    assert made.headers["location"] == f"/console/channel-codes/{code.id}"
    members = service.members_of(db, code)
    assert [(m.staff_id, m.weight, m.daily_cap, m.position) for m in members] == [
        (staff[0].id, 2, 30, 1), (staff[1].id, 1, None, 2)]
    assert members[0].hours == [{"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"}]
    assert sorted(fake.contact_ways[code.config_id]["user"]) == ["lisi", "zhangsan"]
    assert code.welcome == {"type": "text", "text": "Thanks for scanning!"}

    page = client.get(f"/console/channel-codes/{code.id}").text
    assert "Nobody came through this code" in page  # the chart's place says what will appear
    assert "Zhang San" in page
    assert "1-7 00:00-24:00" in page
    assert "Parcel card June" in client.get("/console/channel-codes").text

    # the editor shows the members as saved, and a save that keeps them does not call WeCom
    editor = client.get(f"/console/channel-codes/{code.id}/edit").text
    assert 'value="1-7 00:00-24:00"' in editor
    calls = len(fake.requests)
    again = post(client, f"/console/channel-codes/{code.id}", _code_form(source, account, staff, name="Parcel July"))
    assert again.status_code == 303
    assert not [r for r in fake.requests[calls:] if "contact_way" in r[0]]
    db.expire_all()
    assert service.get_code(db, code.id).name == "Parcel July"


def test_the_code_page_charts_arrivals_and_shows_refused_members(client, db, signed_in, source, account, staff,
                                                                   fake):
    from siyu.contacts import service as contacts

    fake.no_permission.add("lisi")
    code = service.create_code(db, name="Store poster", source_id=source.id, kind="wecom", account_id=account.id,
                               members=[{"staff_id": staff[0].id}, {"staff_id": staff[1].id}], actor=ACTOR)
    contact, _ = contacts.upsert_contact(db, identities=[{"type": "phone", "value": "13800138000"}],
                                         fields={"nickname": "Xiao Ming"}, actor=None)
    service.record_arrival(db, code, kind="add", dedupe_key="a1", contact_id=contact.id, new_contact=True,
                           staff_userid="zhangsan")
    db.commit()

    page = client.get(f"/console/channel-codes/{code.id}").text
    chart = _chart(page)
    assert [s["name"] for s in chart["series"]] == ["Scans", "Adds", "Conversions"]
    assert chart["series"][1]["counts"][-1] == 1
    assert len(chart["days"]) == 30
    assert 'id="stat-adds">1<' in page
    assert "WeCom refused: 84074" in page
    assert "Xiao Ming" in page
    assert "Zhang San" in page
    assert len(_chart(client.get(f"/console/channel-codes/{code.id}?days=7").text)["days"]) == 7
    listed = client.get("/console/channel-codes").text
    assert re.search(r"data-adds-today>1<", listed)


def test_pause_resume_and_expire_from_the_code_page(client, db, signed_in, source):
    code = service.create_code(db, name="SMS June", source_id=source.id, kind="link",
                               target_url="https://shop.example.com/june", actor=ACTOR)
    db.commit()
    assert post(client, f"/console/channel-codes/{code.id}/pause").status_code == 303
    page = client.get(f"/console/channel-codes/{code.id}").text
    assert "This code is paused" in page
    assert f'action="/console/channel-codes/{code.id}/resume"' in page
    assert post(client, f"/console/channel-codes/{code.id}/resume").status_code == 303
    assert post(client, f"/console/channel-codes/{code.id}/expire").status_code == 303
    db.expire_all()
    assert service.get_code(db, code.id).status == "expired"
    assert post(client, f"/console/channel-codes/{code.id}/teleport").status_code == 422


def test_a_link_code_is_made_through_the_form(client, db, signed_in, source):
    bad = post(client, "/console/channel-codes", {"name": "SMS June", "source_id": str(source.id), "kind": "link",
                                                  "target_url": "ftp://nope", "state": "sms-june"})
    assert bad.status_code == 422
    assert 'aria-describedby="target_url-error"' in bad.text
    made = post(client, "/console/channel-codes", {"name": "SMS June", "source_id": str(source.id), "kind": "link",
                                                   "target_url": "https://shop.example.com", "state": "sms-june"})
    assert made.status_code == 303
    db.expire_all()
    code = db.execute(select(ChannelCode)).scalar_one()
    assert (code.kind, code.state, code.account_id) == ("link", "sms-june", None)


def test_a_staff_role_can_not_open_the_pages(client, db, ws, make_user):
    user = make_user(ws, "staff")
    sign_in(client, user.email)
    assert client.get("/console/channel-codes").status_code == 403
    assert client.get("/console/sources").status_code == 403


@pytest.mark.parametrize(("locale", "word"), [("zh_Hans", "渠道活码"), ("es", "Códigos de canal")])
def test_the_pages_render_in_other_languages(client, db, signed_in, source, locale, word):
    post(client, "/console/locale", {"locale": locale, "next": "/console"})
    for path in ("/console/channel-codes", "/console/sources", "/console/sources/new", "/console/channel-codes/new"):
        r = client.get(path)
        assert r.status_code == 200, path
    assert word in client.get("/console/channel-codes").text
