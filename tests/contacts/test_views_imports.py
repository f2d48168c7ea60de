"""The console's import wizard: upload, map, dry run, start, follow; export from the console."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.contacts.models import Contact, ContactImport
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import page_token, sign_in
from tests.contacts.test_api_imports import _drain


@pytest.fixture
def owner(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com")
    assert sign_in(client, "owner@example.com").status_code == 303
    return ws


def test_upload_map_check_start_and_see_the_bad_row(client, db, owner):
    token = page_token(client, "/console/imports")
    content = b"Name,Mobile,Notes\nAna,13800138000,x\nBad,12345,y\nBen,13900139000,z\n"

    uploaded = client.post("/console/imports", data={"csrf_token": token},
                           files={"file": ("people.csv", content, "text/csv")}, follow_redirects=False)
    assert uploaded.status_code == 303, uploaded.text
    mapping_url = uploaded.headers["location"]
    form = client.get(mapping_url).text
    assert 'value="phone" selected' in form
    assert 'value="ignore" selected' in form

    mapping = {"csrf_token": token, "map-0": "name", "map-1": "phone", "map-2": "ignore"}
    import_id = int(mapping_url.split("/")[3])
    checked = client.post(f"/console/imports/{import_id}/check", data=mapping)
    assert checked.status_code == 200
    assert "Dry run" in checked.text
    assert "12345" in checked.text
    assert 'id="start"' in checked.text
    bind_workspace(db, owner.id)
    assert db.execute(select(Contact)).first() is None
    bind_workspace(db, None)

    started = client.post(f"/console/imports/{import_id}/start", data=mapping, follow_redirects=False)
    assert started.headers["location"] == f"/console/imports/{import_id}"
    assert 'hx-trigger="every 1s"' in client.get(f"/console/imports/{import_id}").text
    _drain(db, owner.id)
    done = client.get(f"/console/imports/{import_id}/progress").text
    assert "hx-trigger" not in done
    assert "2 new contacts, 0 updated, 1 rows refused" in done
    errors = client.get(f"/console/imports/{import_id}/errors.csv")
    assert errors.text.splitlines()[1].startswith("3,Mobile,")
    assert "people.csv" in client.get("/console/imports").text


def test_a_mapping_without_identity_is_explained_and_nothing_starts(client, db, owner):
    token = page_token(client, "/console/imports")
    uploaded = client.post("/console/imports", data={"csrf_token": token},
                           files={"file": ("people.csv", b"Name,Mobile\nAna,13800138000\n", "text/csv")},
                           follow_redirects=False)
    import_id = int(uploaded.headers["location"].split("/")[3])

    refused = client.post(f"/console/imports/{import_id}/start",
                          data={"csrf_token": token, "map-0": "name", "map-1": "ignore"})

    assert refused.status_code == 422
    assert 'id="mapping-error"' in refused.text
    bind_workspace(db, owner.id)
    assert db.get(ContactImport, import_id).status == "draft"


def test_an_unreadable_upload_is_refused_on_the_form(client, owner):
    token = page_token(client, "/console/imports")

    r = client.post("/console/imports", data={"csrf_token": token},
                    files={"file": ("old.xls", b"\xd0\xcf\x11\xe0....", "application/vnd.ms-excel")})

    assert r.status_code == 422
    assert "xlsx" in r.text


def test_console_export_downloads_a_file(client, owner):
    r = client.get("/console/contacts/export?format=xlsx")

    assert r.status_code == 200
    assert r.content.startswith(b"PK")
