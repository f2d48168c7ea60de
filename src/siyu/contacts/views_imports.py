"""Console import wizard (upload → mapping → dry-run preview → progress → result) and contact exports."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from siyu.console.nav import N_
from siyu.console.shell import Console, ConsoleDep, ConsoleRoute, FormDep, explain, redirect
from siyu.contacts import exports, imports
from siyu.contacts.import_mapping import IGNORE, TAGS
from siyu.contacts.models import ContactImport, Segment, TagGroup
from siyu.contacts.service import list_attribute_definitions, visible_contacts
from siyu.core.errors import Invalid, SiyuError
from siyu.settings import get_settings

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
# Rows the wizard's dry run checks before the import starts (the import itself checks every row).
CHECK_ROWS = 1000
SHOWN_ROWS = 10

STATUS_NAMES = {
    "draft": N_("Choosing columns"),
    "pending": N_("Waiting"),
    "running": N_("Running"),
    "done": N_("Done"),
    "failed": N_("Failed"),
}
TARGET_NAMES = {
    IGNORE: N_("Ignore this column"),
    "name": N_("Name"),
    "nickname": N_("Nickname"),
    "phone": N_("Phone (identity)"),
    "email": N_("Email (identity)"),
    "gender": N_("Gender"),
    "birthday": N_("Birthday"),
    "city": N_("City"),
    "locale": N_("Language"),
    "avatar_url": N_("Avatar URL"),
    "identity:openid": N_("WeChat openid (identity)"),
    "identity:unionid": N_("WeChat unionid (identity)"),
    "identity:external_userid": N_("WeCom external user id (identity)"),
    "identity:shop_customer_id": N_("Shop customer id (identity)"),
    TAGS: N_("Tags (comma-separated, group/tag)"),
}


def _targets(console: Console, current: dict[str, str]) -> list[tuple[str, str]]:
    """(value, label) of every target a column can take, translated."""
    options = [(k, console.gettext(v)) for k, v in TARGET_NAMES.items()]
    for definition in list_attribute_definitions(console.db):
        options.append((f"attribute:{definition.key}",
                        console.gettext("Attribute: %(label)s") % {"label": definition.label}))
    for group in console.db.execute(select(TagGroup.name).order_by(TagGroup.name)).scalars():
        options.append((f"tags:{group}", console.gettext("Tags in group %(group)s") % {"group": group}))
    known = {value for value, _ in options}
    options += [(t, t) for t in dict.fromkeys(current.values()) if t not in known]
    return options


def _content(console: Console, imp: ContactImport) -> bytes:
    return console.db.execute(select(ContactImport.content).where(ContactImport.id == imp.id)).scalar_one() or b""


def _draft(console: Console, import_id: int) -> ContactImport:
    imp = imports.get_import(console.db, import_id)
    if imp.status != imports.DRAFT:
        raise Invalid("this import has already started", field="import_id")
    return imp


def _mapping_from(form: FormData, columns: list[str]) -> dict[str, str]:
    mapping = {}
    for i, column in enumerate(columns):
        value = form.get(f"map-{i}")
        mapping[column] = value.strip() if isinstance(value, str) and value.strip() else IGNORE
    return mapping


def _index_page(console: Console, *, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    rows, next_cursor = imports.list_imports(console.db, limit=50)
    segments = console.db.execute(select(Segment.id, Segment.name).order_by(Segment.name)).all()
    return console.page("contacts/imports.html", status=status_code, imports=rows, next_cursor=next_cursor,
                        status_names=STATUS_NAMES, segments=segments, errors=errors or {},
                        editable=console.can("contacts", "write"),
                        max_mb=get_settings().import_max_bytes // (1024 * 1024))


@router.get("/console/imports")
def imports_page(console: ConsoleDep) -> Response:
    """Upload a file, see past imports, export contacts."""
    console.auth.require("contacts", "read")
    return _index_page(console)


@router.post("/console/imports")
def upload(console: ConsoleDep, form: FormDep) -> Response:
    """Keep the uploaded file and go on to choosing what its columns become."""
    console.auth.require("contacts", "write")
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("choose a CSV or XLSX file", field="file")
        content = upload.file.read()
        with console.db.begin_nested():
            imp = imports.upload_draft(console.db, content=content, filename=upload.filename, actor=console.actor)
    except SiyuError as exc:
        return _index_page(console, errors={"file": explain(exc, console.locale)}, status_code=exc.status)
    return redirect(f"/console/imports/{imp.id}/mapping")


def _mapping_page(console: Console, imp: ContactImport, mapping: dict[str, str], *, overwrite: bool = False,
                  preview: imports.ImportPreview | None = None, error: str | None = None,
                  status_code: int = 200) -> Response:
    columns = list(imports.column_mapping(imp))
    sample = preview or imports.preview_import(console.db, _content(console, imp), imp.filename,
                                               {c: IGNORE for c in columns}, limit=5,
                                               encoding=imp.mapping.get("encoding"))
    checked = preview is not None and preview.mapping is not None
    return console.page(
        "contacts/import_mapping.html", status=status_code, imp=imp, columns=columns, mapping=mapping,
        targets=_targets(console, mapping), overwrite=overwrite, sample=sample.rows[:SHOWN_ROWS],
        preview=preview if checked else None, error=error, check_rows=CHECK_ROWS,
        shown_errors=preview.errors[:200] if checked and preview else [],
    )


@router.get("/console/imports/{import_id}/mapping")
def mapping_form(import_id: int, console: ConsoleDep) -> Response:
    """Each column of the uploaded file with what it will become, suggested from its header."""
    console.auth.require("contacts", "write")
    imp = _draft(console, import_id)
    return _mapping_page(console, imp, imports.column_mapping(imp))


@router.post("/console/imports/{import_id}/check")
def check(import_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Dry run: the first rows go through the real import inside a savepoint that is rolled back."""
    console.auth.require("contacts", "write")
    imp = _draft(console, import_id)
    mapping = _mapping_from(form, list(imports.column_mapping(imp)))
    overwrite = form.get("overwrite") == "1"
    try:
        preview = imports.preview_import(console.db, _content(console, imp), imp.filename, mapping, limit=CHECK_ROWS,
                                         encoding=imp.mapping.get("encoding"), overwrite=overwrite)
    except SiyuError as exc:
        return _mapping_page(console, imp, mapping, overwrite=overwrite, error=explain(exc, console.locale),
                             status_code=exc.status)
    if preview.mapping is None:
        return _mapping_page(console, imp, mapping, overwrite=overwrite, error=preview.mapping_error,
                             status_code=422)
    return _mapping_page(console, imp, mapping, overwrite=overwrite, preview=preview)


@router.post("/console/imports/{import_id}/start")
def start(import_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Start the import with the chosen mapping; the worker does it chunk by chunk."""
    console.auth.require("contacts", "write")
    imp = _draft(console, import_id)
    mapping = _mapping_from(form, list(imports.column_mapping(imp)))
    overwrite = form.get("overwrite") == "1"
    try:
        with console.db.begin_nested():
            imports.start_draft(console.db, imp, mapping=mapping, dry_run=False, overwrite=overwrite,
                                actor=console.actor)
    except SiyuError as exc:
        return _mapping_page(console, imp, mapping, overwrite=overwrite, error=explain(exc, console.locale),
                             status_code=exc.status)
    return redirect(f"/console/imports/{imp.id}")


def _finished(imp: ContactImport) -> bool:
    return imp.status in (imports.DONE, imports.FAILED)


@router.get("/console/imports/{import_id}")
def import_page(import_id: int, console: ConsoleDep) -> Response:
    """An import's progress, then its counts and the rows it refused."""
    console.auth.require("contacts", "read")
    imp = imports.get_import(console.db, import_id)
    if imp.status == imports.DRAFT:
        return redirect(f"/console/imports/{imp.id}/mapping")
    return console.page("contacts/import.html", imp=imp, status_names=STATUS_NAMES, finished=_finished(imp))


@router.get("/console/imports/{import_id}/progress")
def progress(import_id: int, console: ConsoleDep) -> Response:
    """The progress card alone, polled every second until the import finishes."""
    console.auth.require("contacts", "read")
    imp = imports.get_import(console.db, import_id)
    return console.page("contacts/_import_progress.html", imp=imp, status_names=STATUS_NAMES,
                        finished=_finished(imp))


@router.get("/console/imports/{import_id}/errors.csv")
def error_rows(import_id: int, console: ConsoleDep) -> Response:
    """The refused rows with their problem, as a CSV to fix and upload again."""
    console.auth.require("contacts", "read")
    imp = imports.get_import(console.db, import_id)
    columns = list(imports.column_mapping(imp))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "column", "problem", *columns])
    for error in imp.errors or []:
        values = error.get("values") or {}
        writer.writerow([error.get("row") or "", error.get("column") or "", error["message"],
                         *(exports.guard(str(values.get(c, ""))) for c in columns)])
    return Response(("\ufeff" + buffer.getvalue()).encode(), media_type=exports.MEDIA_TYPES["csv"],
                    headers={"Content-Disposition": f'attachment; filename="import-{imp.id}-errors.csv"'})


def _spooled(spool: Any) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(64 * 1024):
            yield chunk
    finally:
        spool.close()


@router.get("/console/contacts/export")
def export(console: ConsoleDep, format: str = "csv", segment_id: int | None = None,
           tag_id: int | None = None) -> Response:
    """Download contacts (everyone you may see, a segment's members or a tag's) as CSV or XLSX."""
    console.auth.require("contacts", "read")
    fmt = exports.check_format(format)
    # Not a `with`: the response streams the spool after this returns, and closes it when done.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    try:
        exports.write_export(console.db, spool, fmt, segment_id=segment_id, tag_id=tag_id,
                             criterion=visible_contacts(console.db, console.auth))
    except BaseException:
        spool.close()
        raise
    name = exports.export_filename(fmt, None if segment_id is None else str(segment_id))
    return StreamingResponse(_spooled(spool), media_type=exports.MEDIA_TYPES[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})

