"""REST endpoints of contact imports (upload, follow, list) and exports (a segment or everyone as a file)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile

from siyu.contacts import exports, imports
from siyu.contacts.models import ContactImport
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.errors import Invalid
from siyu.core.schemas import Page

router = APIRouter()
ContactsRead = Annotated[Auth, Depends(api_auth("contacts", "read"))]
ContactsWrite = Annotated[Auth, Depends(api_auth("contacts", "write"))]
# Spooled exports stay in memory up to this size, then move to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024


class ImportError_(BaseModel):
    row: int | None
    column: str | None
    message: str


class ImportOut(BaseModel):
    """An import and where it stands: `processed_rows` of `total_rows` (0 until the file is read)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    status: str
    dry_run: bool
    mapping: dict[str, str]
    total_rows: int
    processed_rows: int
    created_count: int
    updated_count: int
    error_count: int
    errors: list[ImportError_]
    created_by: str
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, imp: ContactImport, *, with_errors: bool = True) -> ImportOut:
        return cls(
            id=imp.id, filename=imp.filename, status=imp.status, dry_run=imp.dry_run,
            mapping=imports.column_mapping(imp), total_rows=imp.total_rows, processed_rows=imp.processed_rows,
            created_count=imp.created_count, updated_count=imp.updated_count, error_count=imp.error_count,
            errors=[ImportError_(row=e.get("row"), column=e.get("column"), message=e["message"])
                    for e in (imp.errors or [])] if with_errors else [],
            created_by=imp.created_by, created_at=imp.created_at, finished_at=imp.finished_at,
        )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise Invalid("a flag is true or false", field="dry_run")


def _mapping(value: Any) -> dict[str, str] | None:
    if value is None or value == "":
        return None
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise Invalid('mapping is a JSON object {"column": "target"}', field="mapping") from None
    if not isinstance(parsed, dict):
        raise Invalid('mapping is a JSON object {"column": "target"}', field="mapping")
    return parsed


_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "mapping": {"type": "string", "description": 'JSON {"column": "target"}'},
                        "dry_run": {"type": "boolean"},
                        "overwrite": {"type": "boolean"},
                        "encoding": {"type": "string"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}


@router.post("/contacts/imports", tags=["contacts"], status_code=202, openapi_extra=_UPLOAD_DOC)
async def start_import(
    request: Request, auth: ContactsWrite, session: SessionDep,
    filename: Annotated[str | None, Query(max_length=255, description="Raw-body uploads: the file's name")] = None,
    mapping: Annotated[str | None, Query(description='Raw-body uploads: JSON {"column": "target"}')] = None,
    dry_run: bool = False, overwrite: bool = False, encoding: Annotated[str | None, Query(max_length=40)] = None,
) -> ImportOut:
    """Upload a CSV or XLSX file (multipart `file`, or the raw body with `filename`) and queue its import.

    Without a mapping the suggested one is used. Follow it with GET /contacts/imports/{import_id}.
    """
    options: dict[str, Any] = {"mapping": mapping, "dry_run": dry_run, "overwrite": overwrite, "encoding": encoding}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("send the file as the multipart field `file`", field="file")
        content = await upload.read()
        filename = filename or upload.filename or "upload.csv"
        for name in options:
            if isinstance(form.get(name), str):
                options[name] = form.get(name)
    else:
        content = await request.body()
        if not filename:
            raise Invalid("name the file: ?filename=contacts.csv", field="filename")
    imp = imports.start_import(
        session, content=content, filename=filename, mapping=_mapping(options["mapping"]),
        dry_run=_flag(options["dry_run"]), overwrite=_flag(options["overwrite"]),
        encoding=options["encoding"] or None, actor=auth.actor,
    )
    return ImportOut.of(imp)


@router.get("/contacts/imports", tags=["contacts"])
def list_imports(
    auth: ContactsRead, session: SessionDep, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ImportOut]:
    """The workspace's imports, newest first (errors are listed on each import's own page)."""
    rows, nxt = imports.list_imports(session, cursor=cursor, limit=limit)
    return Page[ImportOut](items=[ImportOut.of(r, with_errors=False) for r in rows], next_cursor=nxt)


@router.get("/contacts/imports/{import_id}", tags=["contacts"])
def read_import(import_id: int, auth: ContactsRead, session: SessionDep) -> ImportOut:
    """One import: status, progress, counts and the first problems with their row and column."""
    return ImportOut.of(imports.get_import(session, import_id))


def _chunks(spool: Any) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(64 * 1024):
            yield chunk
    finally:
        spool.close()


@router.get("/contacts/export", tags=["contacts"], response_class=StreamingResponse,
            responses={200: {"content": {m: {} for m in exports.MEDIA_TYPES.values()}}})
def export_contacts(
    auth: ContactsRead, session: SessionDep,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
    segment_id: int | None = None, tag_id: int | None = None,
) -> StreamingResponse:
    """The workspace's contacts (or a segment's members, or those with a tag) as a CSV or XLSX file."""
    # Not a `with`: the response streams the spool after this returns, and closes it when done.
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
    try:
        exports.write_export(session, spool, format, segment_id=segment_id, tag_id=tag_id)
    except BaseException:
        spool.close()
        raise
    name = exports.export_filename(format, None if segment_id is None else str(segment_id))
    return StreamingResponse(_chunks(spool), media_type=exports.MEDIA_TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
