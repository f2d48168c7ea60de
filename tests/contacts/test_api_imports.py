"""The imports API: upload a file, follow it, list imports; export contacts as CSV or XLSX."""

from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from siyu.contacts import imports, service
from siyu.contacts.models import Segment, SegmentMember
from siyu.core.models import Job
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer
from tests.contacts.test_imports import GOOD


def _drain(db, ws_id):
    """Run the workspace's pending import jobs the way the worker would."""
    from siyu.core import jobs

    bind_workspace(db, ws_id)
    while (job := db.execute(select(Job).where(Job.kind == imports.IMPORT_JOB, Job.status == "pending")
                             .order_by(Job.id)).scalars().first()) is not None:
        job.status = "done"
        imports.run_import_job(db, jobs.JobContext(job.id, job.workspace_id, job.kind, job.idempotency_key, 1,
                                                   dict(job.payload)))
        db.commit()
    bind_workspace(db, None)


@pytest.fixture
def key(make_workspace, make_key):
    ws = make_workspace()
    return ws, bearer(make_key(ws, ["contacts:write"]))


def test_multipart_upload_is_queued_then_followed_to_its_counts_and_errors(client, db, key):
    ws, headers = key
    content = GOOD + "王五,12345,,广州,\n"

    r = client.post("/api/v1/contacts/imports", headers=headers,
                    files={"file": ("people.csv", content.encode("gbk"), "text/csv")},
                    data={"mapping": json.dumps({"标签": "ignore"}), "dry_run": "false"})

    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending"
    assert body["mapping"]["手机号"] == "phone"
    assert body["mapping"]["标签"] == "ignore"
    _drain(db, ws.id)
    done = client.get(f"/api/v1/contacts/imports/{body['id']}", headers=headers).json()
    assert (done["status"], done["created_count"], done["error_count"]) == ("done", 2, 1)
    assert done["errors"] == [{"row": 4, "column": "手机号", "message": done["errors"][0]["message"]}]
    listed = client.get("/api/v1/contacts/imports", headers=headers).json()
    assert [i["id"] for i in listed["items"]] == [body["id"]]


def test_raw_body_upload_needs_a_filename_and_a_usable_mapping(client, key):
    _, headers = key

    nameless = client.post("/api/v1/contacts/imports", headers=headers, content=GOOD.encode())
    no_identity = client.post("/api/v1/contacts/imports?filename=x.csv", headers=headers,
                              content=b"name,city\nAna,Lima\n")
    bad_json = client.post("/api/v1/contacts/imports?filename=x.csv&mapping={", headers=headers,
                           content=GOOD.encode())
    dry = client.post("/api/v1/contacts/imports?filename=x.csv&dry_run=true", headers=headers, content=GOOD.encode())

    assert (nameless.status_code, nameless.json()["error"]["field"]) == (422, "filename")
    assert (no_identity.status_code, no_identity.json()["error"]["field"]) == (422, "mapping")
    assert bad_json.json()["error"]["field"] == "mapping"
    assert dry.status_code == 202
    assert dry.json()["dry_run"] is True


def test_uploads_larger_than_the_default_body_limit_are_taken_up_to_the_import_limit(client, key, monkeypatch):
    from siyu.settings import get_settings

    _, headers = key
    rows = "".join(f"Person {i},+86138{i:08d}\n" for i in range(110_000))
    content = ("name,phone\n" + rows).encode()
    assert len(content) > get_settings().max_body_bytes

    r = client.post("/api/v1/contacts/imports?filename=big.csv&dry_run=true", headers=headers, content=content)

    assert r.status_code == 202, r.text


def test_export_csv_and_xlsx_of_everyone_and_of_a_segment(client, db, key):
    ws, headers = key
    bind_workspace(db, ws.id)
    ana, _ = service.upsert_contact(db, identities=[("phone", "13800138000")], fields={"name": "=cmd|' /C calc'!A0"},
                                    actor=None)
    service.upsert_contact(db, identities=[("email", "ben@example.com")], fields={"name": "Ben"}, actor=None)
    segment = Segment(name="VIP", kind="static")
    db.add(segment)
    db.flush()
    db.add(SegmentMember(segment_id=segment.id, contact_id=ana.id))
    db.commit()
    bind_workspace(db, None)

    everyone = client.get("/api/v1/contacts/export?format=csv", headers=headers)
    members = client.get(f"/api/v1/contacts/export?format=xlsx&segment_id={segment.id}", headers=headers)
    other = client.get("/api/v1/contacts/export?segment_id=999999", headers=headers)

    assert everyone.status_code == 200
    assert everyone.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(everyone.content.decode("utf-8-sig"))))
    assert [r["name"] for r in rows] == ["'=cmd|' /C calc'!A0", "Ben"]
    assert rows[0]["phone"] == "'+8613800138000"
    sheet = load_workbook(io.BytesIO(members.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert len(values) == 2
    assert values[1][1] == "=cmd|' /C calc'!A0"
    assert values[1][3] == "+8613800138000"
    assert all(c.data_type == "s" for row in sheet.iter_rows() for c in row if c.value)
    assert other.status_code == 404
