"""Imports: files read in any usual encoding, columns mapped, bad rows reported, people never added twice."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from siyu.contacts import imports, service
from siyu.contacts.import_files import detect_encoding, open_table
from siyu.contacts.import_mapping import suggest_mapping
from siyu.contacts.models import Contact, ContactImport, ContactTag, Identity, Tag, TagGroup
from siyu.core.errors import Invalid
from siyu.core.models import AuditEntry, Event, Job
from tests.contacts.conftest import ACTOR

GOOD = ("姓名,手机号,邮箱,城市,标签\n"
        "张三,13800138000,zhang@example.com,上海,VIP\n"
        "李四,139 0013 9000,,北京,\"VIP,新客\"\n")


def _count(db, model) -> int:
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def _xlsx(rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _run(db, content: bytes, filename: str = "people.csv", mapping=None, *, dry_run=False, chunk_rows=500):
    """Start an import and run its jobs the way the worker would, in the test's transaction."""
    from siyu.core import jobs

    imp = imports.start_import(db, content=content, filename=filename, mapping=mapping, dry_run=dry_run, actor=ACTOR)
    for _ in range(10_000):
        job = db.execute(select(Job).where(Job.kind == imports.IMPORT_JOB, Job.status == "pending")
                         .order_by(Job.id)).scalars().first()
        if job is None:
            break
        ctx = jobs.JobContext(job.id, job.workspace_id, job.kind, job.idempotency_key, 1, dict(job.payload))
        job.status = "done"
        imports.run_import_job(db, ctx)
        db.flush()
    db.refresh(imp)
    return imp


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_csv_in_every_usual_encoding_reads_the_same(encoding):
    table = open_table(GOOD.encode(encoding), "people.csv")

    assert table.columns == ["姓名", "手机号", "邮箱", "城市", "标签"]
    assert [cells[0] for _, cells in table.rows()] == ["张三", "李四"]


def test_gbk_is_told_from_windows_1252_spanish():
    spanish = "nombre;teléfono;ciudad\nJosé;+34 600 000 000;Málaga\n".encode("cp1252")
    chinese = "姓名,城市\n张三,上海\n".encode("gbk")

    assert detect_encoding(spanish) == "cp1252"
    assert detect_encoding(chinese) == "gb18030"
    table = open_table(spanish, "clientes.csv")
    assert table.delimiter == ";"
    assert list(table.rows()) == [(2, ["José", "+34 600 000 000", "Málaga"])]


def test_a_title_line_above_the_header_is_skipped_and_row_numbers_are_the_files():
    content = "客户名单 2026年11月\n\n姓名,手机\n张三,13800138000\n\n李四,13900139000\n".encode()

    table = imports.open_upload(content, "list.csv")

    assert table.header_row == 3
    assert [n for n, _ in table.rows()] == [4, 6]


def test_xlsx_numbers_and_dates_read_as_a_person_typed_them():
    content = _xlsx([["姓名", "手机", "生日"], ["张三", 13800138000, datetime(1990, 5, 1)], [None, None, None],
                     ["李四", 13900139000.0, "1991/2/3"]])

    table = open_table(content, "people.xlsx")

    assert table.format == "xlsx"
    assert list(table.rows()) == [(2, ["张三", "13800138000", "1990-05-01"]), (4, ["李四", "13900139000", "1991/2/3"])]


def test_old_excel_files_and_empty_files_are_refused_with_a_reason():
    with pytest.raises(Invalid, match="xlsx"):
        open_table(b"\xd0\xcf\x11\xe0rest", "old.xls")
    with pytest.raises(Invalid, match="empty"):
        open_table(b"", "none.csv")


def test_mapping_suggestions_read_english_chinese_and_spanish_headers():
    columns = ["姓名", "手机号", "E-mail", "Teléfono", "城市", "Ciudad", "生日", "性别", "标签", "Notes", "openid"]

    mapping = suggest_mapping(columns)

    assert mapping == {
        "姓名": "name", "手机号": "phone", "E-mail": "email", "Teléfono": "ignore", "城市": "city",
        "Ciudad": "ignore", "生日": "birthday", "性别": "gender", "标签": "tags", "Notes": "ignore",
        "openid": "identity:openid",
    }
    assert suggest_mapping(["teléfono", "correo electrónico", "nombre"]) == {
        "teléfono": "phone", "correo electrónico": "email", "nombre": "name"}
    assert suggest_mapping(["VIP 等级"], {"vip_level": "VIP 等级"}) == {"VIP 等级": "attribute:vip_level"}


def test_preview_shows_columns_suggestions_and_rows_and_writes_nothing(db, ws):
    preview = imports.preview_import(db, GOOD.encode("gbk"), "people.csv")

    assert preview.encoding == "gb18030"
    assert preview.mapping == {"姓名": "name", "手机号": "phone", "邮箱": "email", "城市": "city", "标签": "tags"}
    assert [r["outcome"] for r in preview.rows] == ["created", "created"]
    assert preview.created == 2
    assert _count(db, Contact) == 0
    assert _count(db, Tag) == 0


def test_import_writes_contacts_identities_and_tags_and_is_audited_once(db, ws):
    imp = _run(db, GOOD.encode())

    assert (imp.status, imp.created_count, imp.updated_count, imp.error_count) == ("done", 2, 0, 0)
    zhang = service.upsert_contact(db, identities=[("phone", "+8613800138000")], actor=None)[0]
    assert (zhang.name, zhang.city, zhang.email) == ("张三", "上海", "zhang@example.com")
    assert _count(db, Identity) == 3
    tags = dict(db.execute(select(Tag.name, Tag.group_id)).all())
    assert set(tags) == {"VIP", "新客"}
    assert db.execute(select(TagGroup.name)).scalars().all() == ["import"]
    assert _count(db, ContactTag) == 3
    types = db.execute(select(Event.type)).scalars().all()
    assert types.count("contact.created") == 2
    assert types.count("tag.added") == 3
    audits = db.execute(select(AuditEntry).where(AuditEntry.action == "contacts.import")).scalars().all()
    assert len(audits) == 1
    assert audits[0].after["created"] == 2
    assert imp.content is None


def test_imported_contacts_get_the_default_owner_and_the_stored_form_of_every_field(db, ws):
    from siyu.contacts.staff import create_staff

    oldest = create_staff(db, name="Old hand", actor=ACTOR)
    create_staff(db, name="Newer", actor=ACTOR)
    content = ("姓名,手机号,邮箱,性别,生日,城市\n"
               "王五,+86 138-0013-8001,Wang@Example.com,男,1990/5/1,广州\n").encode()

    imp = _run(db, content)

    assert (imp.created_count, imp.error_count) == (1, 0)
    contact = db.execute(select(Contact)).scalar_one()
    assert contact.owner_id == oldest.id
    assert (contact.name, contact.phone, contact.email, contact.gender, contact.city) == (
        "王五", "+8613800138001", "wang@example.com", "male", "广州")
    assert contact.birthday.isoformat() == "1990-05-01"
    assert (contact.attributes, contact.stage, contact.do_not_contact) == ({}, "new", False)
    assert contact.created_at is not None


def test_one_bad_row_is_reported_with_its_column_and_the_rest_is_imported(db, ws):
    content = ("name,phone,email,birthday\n"
               "Ana,13800138000,ana@example.com,1990-01-02\n"
               "Bad,12345,bad@example.com,1990-01-02\n"
               "Ben,13900139000,ben@example.com,1991年3月4日\n"
               "Cid,13700137000,cid@example,\n").encode()

    imp = _run(db, content)

    assert (imp.created_count, imp.error_count) == (2, 2)
    assert [(e["row"], e["column"]) for e in imp.errors] == [(3, "phone"), (5, "email")]
    assert "phone" in imp.errors[0]["message"]
    assert imp.errors[0]["values"]["name"] == "Bad"
    names = set(db.execute(select(Contact.name)).scalars())
    assert names == {"Ana", "Ben"}
    assert _count(db, Identity) == 4


def test_dry_run_reports_what_the_real_run_would_and_writes_nothing(db, ws):
    content = (b"phone,name\n13800138000,Ana\n12345,Bad\n13800138000,Ana again\n13900139000,Ben\n")

    dry = _run(db, content, dry_run=True)
    assert _count(db, Contact) == 0
    assert _count(db, Identity) == 0
    assert _count(db, Event) == 0
    real = _run(db, content)

    assert (dry.created_count, dry.updated_count, dry.error_count) == (2, 1, 1)
    assert (real.created_count, real.updated_count, real.error_count) == (2, 1, 1)
    assert [(e["row"], e["column"]) for e in dry.errors] == [(e["row"], e["column"]) for e in real.errors]
    audited = db.execute(select(AuditEntry.entity_id).where(AuditEntry.action == "contacts.import")).scalars().all()
    assert audited == [str(real.id)]


def test_dry_run_across_chunks_counts_a_repeated_person_as_an_update(db, ws, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    content = b"phone\n13800138000\n13900139000\n13700137000\n13800138000\n"

    dry = _run(db, content, dry_run=True)

    assert (dry.created_count, dry.updated_count, dry.processed_rows) == (3, 1, 4)


def test_importing_the_same_file_again_creates_no_one(db, ws, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
    first = _run(db, GOOD.encode())
    contacts, identities, tags = _count(db, Contact), _count(db, Identity), _count(db, ContactTag)

    again = _run(db, GOOD.encode("gbk"))

    assert (first.created_count, again.created_count, again.updated_count) == (2, 0, 2)
    assert (_count(db, Contact), _count(db, Identity), _count(db, ContactTag)) == (contacts, identities, tags)


def test_an_import_fills_empty_fields_and_keeps_existing_ones_unless_overwrite(db, ws):
    contact, _ = service.upsert_contact(db, identities=[("phone", "13800138000")], fields={"name": "Old"}, actor=None)
    content = "phone,name,city,email\n13800138000,New,上海,new@example.com\n".encode()

    imp = _run(db, content)

    db.refresh(contact)
    assert imp.updated_count == 1
    assert (contact.name, contact.city, contact.email) == ("Old", "上海", "new@example.com")
    assert _count(db, Identity) == 2


def test_a_row_naming_two_existing_contacts_goes_through_identity_resolution(db, ws):
    _a, _ = service.upsert_contact(db, identities=[("phone", "13800138000")], actor=None)
    _b, _ = service.upsert_contact(db, identities=[("email", "b@example.com")], actor=None)

    imp = _run(db, b"phone,email\n13800138000,b@example.com\n")

    assert (imp.updated_count, imp.error_count) == (1, 0)
    assert _count(db, Contact) == 1


def test_rows_without_identity_and_mappings_without_identity_are_refused(db, ws):
    with pytest.raises(Invalid, match="identity") as refused:
        imports.start_import(db, content=b"name,phone\nAna,13800138000\n", filename="x.csv",
                             mapping={"phone": "ignore"}, dry_run=False, actor=ACTOR)
    assert refused.value.field == "mapping"

    imp = _run(db, b"name,phone\nAna,\nBen,13800138000\n")
    assert (imp.created_count, imp.error_count) == (1, 1)
    assert imp.errors[0]["row"] == 2
    assert "identity" in imp.errors[0]["message"]


def test_unknown_attribute_and_column_in_a_mapping_name_the_column(db, ws):
    with pytest.raises(Invalid) as refused:
        imports.start_import(db, content=b"phone,vip\n13800138000,gold\n", filename="x.csv",
                             mapping={"phone": "phone", "vip": "attribute:vip"}, dry_run=False, actor=ACTOR)
    assert refused.value.field == "mapping.vip"
    with pytest.raises(Invalid) as refused:
        imports.start_import(db, content=b"phone\n13800138000\n", filename="x.csv",
                             mapping={"mobile": "phone"}, dry_run=False, actor=ACTOR)
    assert refused.value.field == "mapping.mobile"


def test_attribute_values_are_checked_per_row(db, ws):
    service.create_attribute_definition(db, key="level", label="会员等级", type="choice", choices=["gold", "silver"],
                                        actor=ACTOR)

    imp = _run(db, "手机,会员等级\n13800138000,gold\n13900139000,bronze\n".encode())

    assert (imp.created_count, imp.error_count) == (1, 1)
    assert imp.errors[0]["column"] == "会员等级"


def test_xlsx_import_and_a_malformed_row(db, ws):
    content = _xlsx([["Nombre", "Teléfono", "Sexo"], ["Ana", "+34 600 000 001", "mujer"], ["Ben", 13800138000, "男"]])

    imp = _run(db, content, "clientes.xlsx")

    assert (imp.created_count, imp.error_count) == (2, 0)
    assert set(db.execute(select(Contact.gender)).scalars()) == {"female", "male"}


def test_the_worker_resumes_a_crashed_chunk_without_duplicating(db, ws, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    content = b"phone\n13800138000\n13900139000\n13700137000\n"
    imp = imports.start_import(db, content=content, filename="p.csv", mapping=None, dry_run=False, actor=ACTOR)
    from siyu.core import jobs

    def pending():
        return db.execute(select(Job).where(Job.kind == imports.IMPORT_JOB, Job.status == "pending")
                          .order_by(Job.id)).scalars().first()

    def run(job):
        ctx = jobs.JobContext(job.id, job.workspace_id, job.kind, job.idempotency_key, 1, dict(job.payload))
        return imports.run_import_job(db, ctx)

    prepare = pending()
    run(prepare)
    prepare.status = "done"
    first_chunk = pending()
    with db.begin_nested() as crashed:
        run(first_chunk)
        crashed.rollback()
    db.expire_all()
    run(first_chunk)  # the retry after the lease ran out
    run(first_chunk)  # a duplicate delivery does nothing
    first_chunk.status = "done"
    while (job := pending()) is not None:
        job.status = "done"
        run(job)
    db.refresh(imp)

    assert (imp.status, imp.created_count, imp.processed_rows) == ("done", 3, 3)
    assert _count(db, Contact) == 3


def test_imports_are_listed_newest_first(db, ws):
    first = imports.start_import(db, content=GOOD.encode(), filename="a.csv", mapping=None, dry_run=True, actor=ACTOR)
    second = imports.start_import(db, content=GOOD.encode(), filename="b.csv", mapping=None, dry_run=False,
                                  actor=ACTOR)

    rows, _ = imports.list_imports(db)

    assert [r.id for r in rows] == [second.id, first.id]
    assert db.get(ContactImport, first.id).status == "pending"
