"""Contact imports: preview a file, then import it in chunks, each chunk its own transaction.

An upload (`start_import`) is kept on its `ContactImport` row and done by the worker, one job per chunk
of `CHUNK_ROWS` rows: the chunk's writes, the import's counters and the next chunk's job commit together,
so a crash resumes at the first chunk not committed and repeats nothing. The first job turns the file
(CSV in any encoding, or XLSX) into one JSON line per data row, so each later job reads its own slice of
bytes instead of parsing the file again from the top. The command line (`import_file`) runs the same
chunks in its own process.

A row that fails (a bad phone, an unknown choice, no identity) is reported with its row number and
column and changes nothing; the other rows are written. The first `MAX_KEPT_ERRORS` problems are kept
with the row's cells (to download, fix and upload again); `error_count` counts them all. A dry run does
every chunk's real writes inside a savepoint it rolls back, so it reports what the real run would —
including a person named on two rows, counted once as created and then as updated.

Tags named in a file that the workspace doesn't have yet are created (in the group named as
`group/tag`, else in the group "import"): a file is how a brand brings its existing labels along.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.contacts import import_sql
from siyu.contacts.import_files import RowProblem, Table, open_table
from siyu.contacts.import_mapping import (
    IGNORE,
    RowInput,
    check_mapping,
    is_known_header,
    read_row,
    suggest_mapping,
)
from siyu.contacts.import_rows import ERROR, ChunkContext, ChunkResult, write_rows
from siyu.contacts.models import AttributeDefinition, ContactImport
from siyu.contacts.service import list_attribute_definitions, validate_fields
from siyu.core import audit, clock, jobs
from siyu.core.audit import Actor
from siyu.core.db import session_scope
from siyu.core.errors import Invalid, SiyuError, TooLarge
from siyu.core.pagination import page
from siyu.core.tenancy import bind_workspace, bound_workspace, get_scoped
from siyu.settings import get_settings

IMPORT_JOB = "contacts.import"
# Rows per transaction: big enough that a chunk's few statements carry many rows, small enough that a
# worker job stays short and a crash repeats little.
CHUNK_ROWS = 2000
MAX_KEPT_ERRORS = 1000
PREVIEW_ROWS = 20
MAX_ATTEMPTS = 5
DRAFT, PENDING, RUNNING, DONE, FAILED = "draft", "pending", "running", "done", "failed"
STATUSES = (DRAFT, PENDING, RUNNING, DONE, FAILED)
# Bytes of the prepared file a chunk job reads at first; it reads more when a row is longer.
_WINDOW = 1 << 20

SessionFactory = Callable[[], AbstractContextManager[Session]]


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("imports run in a session bound to a workspace")
    return workspace_id


def _definitions(session: Session) -> dict[str, AttributeDefinition]:
    return {d.key: d for d in list_attribute_definitions(session)}


def open_upload(content: bytes, filename: str, *, encoding: str | None = None) -> Table:
    """Open an uploaded file, finding its header by the words it uses."""
    return open_table(content, filename, encoding=encoding, recognised=is_known_header)


def _mapping_for(session: Session, table: Table, mapping: Mapping[str, str] | None) -> dict[str, str]:
    """The suggested mapping with the given targets over it (a column not named keeps its suggestion)."""
    definitions = _definitions(session)
    suggested = suggest_mapping(table.columns, {k: d.label for k, d in definitions.items()})
    if mapping is not None and not isinstance(mapping, Mapping):
        raise Invalid("mapping is an object of column: target", field="mapping")
    return check_mapping({**suggested, **(mapping or {})}, table.columns, definitions)


def _rows(table: Table, mapping: Mapping[str, str], limit: int | None = None) -> Iterator[RowInput]:
    for n, (number, cells) in enumerate(table.rows()):
        if limit is not None and n >= limit:
            return
        yield _row_input(number, cells, table.columns, mapping)


def _row_input(number: int, cells: list[str] | RowProblem, columns: Sequence[str],
               mapping: Mapping[str, str]) -> RowInput:
    if isinstance(cells, RowProblem):
        return RowInput(row=number, values={}, errors=[(None, cells.message)])
    return read_row(number, cells, columns, mapping)


# --- preview ------------------------------------------------------------------------------------------


@dataclass
class ImportPreview:
    """What a file looks like to the importer: columns, suggested mapping, the first rows as they'd go."""

    format: str
    encoding: str | None
    delimiter: str | None
    header_row: int
    columns: list[str]
    suggested: dict[str, str]
    mapping: dict[str, str] | None
    mapping_error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The preview as JSON-able values."""
        return asdict(self)


def preview_import(
    session: Session, content: bytes, filename: str, mapping: Mapping[str, str] | None = None, *,
    limit: int = PREVIEW_ROWS, encoding: str | None = None, overwrite: bool = False,
) -> ImportPreview:
    """Columns, suggestions and the first `limit` rows run through the real import and rolled back."""
    table = open_upload(content, filename, encoding=encoding)
    definitions = _definitions(session)
    suggested = suggest_mapping(table.columns, {k: d.label for k, d in definitions.items()})
    preview = ImportPreview(format=table.format, encoding=table.encoding, delimiter=table.delimiter,
                            header_row=table.header_row, columns=table.columns, suggested=suggested, mapping=None)
    try:
        checked = check_mapping({**suggested, **(mapping or {})}, table.columns, definitions)
    except Invalid as exc:
        preview.mapping_error = exc.message
        preview.rows = [{"row": r.row, "values": r.values, "outcome": None, "errors": []}
                        for r in _rows(table, {c: IGNORE for c in table.columns}, limit)]
        return preview
    preview.mapping = checked
    rows = list(_rows(table, checked, limit))
    with session.begin_nested() as savepoint:
        result = write_rows(session, rows, ChunkContext(checked, definitions, overwrite=overwrite))
        savepoint.rollback()
    by_row: dict[int, list[dict[str, Any]]] = {}
    for error in result.errors:
        by_row.setdefault(error["row"], []).append({"column": error["column"], "message": error["message"]})
    preview.rows = [{"row": r.row, "values": r.values, "outcome": result.outcomes.get(r.row),
                     "errors": by_row.get(r.row, [])} for r in rows]
    preview.created, preview.updated = result.created, result.updated
    preview.errors = [{k: e[k] for k in ("row", "column", "message")} for e in result.errors]
    return preview


# --- starting -------------------------------------------------------------------------------------------


def _stored_mapping(table: Table, mapping: dict[str, str], *, overwrite: bool) -> dict[str, Any]:
    # JSONB keeps no key order, and a column's place in the file matters: a list of pairs.
    return {"columns": [[c, mapping[c]] for c in table.columns], "overwrite": overwrite,
            "encoding": table.encoding, "format": table.format, "header_row": table.header_row}


def column_mapping(imp: ContactImport) -> dict[str, str]:
    """An import's mapping as column → target."""
    return {c: t for c, t in (imp.mapping or {}).get("columns", [])}


def _check_size(content: bytes) -> None:
    limit = get_settings().import_max_bytes
    if len(content) > limit:
        raise TooLarge(f"the file is larger than {limit} bytes", field="file")


def upload_draft(session: Session, *, content: bytes, filename: str, actor: Actor,
                 encoding: str | None = None) -> ContactImport:
    """Keep an uploaded file while a person chooses its mapping (the console's wizard)."""
    _check_size(content)
    table = open_upload(content, filename, encoding=encoding)
    suggested = suggest_mapping(table.columns, {k: d.label for k, d in _definitions(session).items()})
    imp = ContactImport(filename=(filename or "upload")[:255], status=DRAFT, content=content,
                        mapping=_stored_mapping(table, suggested, overwrite=False), created_by=actor.label[:200])
    session.add(imp)
    session.flush()
    return imp


def _actor_payload(actor: Actor) -> dict[str, Any]:
    return {"type": actor.type, "id": actor.id, "label": actor.label, "via": actor.via, "ip": actor.ip}


def _enqueue(session: Session, imp: ContactImport, step: str, actor: Actor, **extra: Any) -> None:
    key = f"contact_import:{imp.id}:{step}:{extra.get('processed', 0)}"
    payload = {"import_id": imp.id, "step": step, "actor": _actor_payload(actor), **extra}
    jobs.enqueue(session, IMPORT_JOB, key, payload, workspace_id=imp.workspace_id, max_attempts=MAX_ATTEMPTS)


def start_draft(session: Session, imp: ContactImport, *, mapping: Mapping[str, str] | None, dry_run: bool,
                actor: Actor, overwrite: bool = False) -> ContactImport:
    """Start an uploaded draft with the mapping a person chose (a dry run leaves the draft to start again)."""
    if imp.status != DRAFT:
        raise Invalid("this import has already started", field="import_id")
    content = session.execute(select(ContactImport.content).where(ContactImport.id == imp.id)).scalar_one()
    table = open_upload(content or b"", imp.filename, encoding=(imp.mapping or {}).get("encoding"))
    checked = _mapping_for(session, table, mapping)
    if dry_run:
        return start_import(session, content=content or b"", filename=imp.filename, mapping=checked,
                            dry_run=True, actor=actor, overwrite=overwrite)
    imp.mapping = _stored_mapping(table, checked, overwrite=overwrite)
    imp.status = PENDING
    imp.dry_run = False
    session.flush()
    _enqueue(session, imp, "prepare", actor)
    return imp


def start_import(
    session: Session, *, content: bytes, filename: str, mapping: Mapping[str, str] | None, dry_run: bool,
    actor: Actor, overwrite: bool = False, encoding: str | None = None,
) -> ContactImport:
    """Record an import of an uploaded file and queue it for the worker.

    `mapping` names the target of some columns; the others keep the target suggested by their header.
    """
    _check_size(content)
    table = open_upload(content, filename, encoding=encoding)
    checked = _mapping_for(session, table, mapping)
    imp = ContactImport(filename=(filename or "upload")[:255], status=PENDING, dry_run=dry_run, content=content,
                        mapping=_stored_mapping(table, checked, overwrite=overwrite), created_by=actor.label[:200])
    session.add(imp)
    session.flush()
    _enqueue(session, imp, "prepare", actor)
    return imp


def get_import(session: Session, import_id: Any) -> ContactImport:
    """One import of the workspace (404 otherwise)."""
    return get_scoped(session, ContactImport, import_id, what="import")


def list_imports(session: Session, *, cursor: str | None = None, limit: int = 50) -> tuple[Sequence[ContactImport],
                                                                                           str | None]:
    """The workspace's imports, newest first."""
    return page(session, select(ContactImport), ContactImport.id, cursor=cursor, limit=limit)


# --- running ----------------------------------------------------------------------------------------------


def _context(session: Session, imp: ContactImport) -> ChunkContext:
    return ChunkContext(column_mapping(imp), _definitions(session), overwrite=bool(imp.mapping.get("overwrite")),
                        import_id=imp.id)


def _run_chunk(session: Session, rows: list[RowInput], ctx: ChunkContext, *, dry_run: bool) -> ChunkResult:
    if not dry_run:
        return write_rows(session, rows, ctx)
    with session.begin_nested() as savepoint:
        result = write_rows(session, rows, ctx)
        savepoint.rollback()
    return result


def _count(session: Session, imp: ContactImport, result: ChunkResult, rows: int) -> None:
    """Add a chunk's figures to the import, in the chunk's transaction."""
    room = MAX_KEPT_ERRORS - len(imp.errors or [])
    if room > 0 and result.errors:
        imp.errors = [*(imp.errors or []), *result.errors[:room]]
    imp.processed_rows += rows
    if not imp.dry_run:
        import_sql.keep_statistics(session, imp.created_count, imp.created_count + result.created)
    imp.created_count += result.created
    imp.updated_count += result.updated
    imp.error_count += sum(1 for o in result.outcomes.values() if o == ERROR)


def _finish(session: Session, imp: ContactImport, actor: Actor) -> None:
    imp.status = DONE
    imp.finished_at = clock.now()
    imp.content = None
    if not imp.dry_run:
        audit.record(session, actor, workspace_id=imp.workspace_id, action="contacts.import",
                     entity_type="contact_import", entity_id=imp.id,
                     after={"filename": imp.filename, "rows": imp.processed_rows, "created": imp.created_count,
                            "updated": imp.updated_count, "errors": imp.error_count})


def _mark_earlier(rows: Sequence[RowInput], first_seen: Mapping[tuple[str, str], int]) -> None:
    """Note on each row the first earlier row naming the same person (dry runs count it as an update)."""
    for row in rows:
        earlier = [first_seen[p] for p in row.pairs if p in first_seen]
        row.earliest = min(earlier) if earlier else None


def _remember(rows: Sequence[RowInput], first_seen: dict[tuple[str, str], int], outcomes: Mapping[int, str]) -> None:
    for row in rows:
        if outcomes.get(row.row, ERROR) != ERROR:
            for pair in row.pairs:
                first_seen.setdefault(pair, row.row)


def _valid(session: Session, row: RowInput, definitions: Mapping[str, AttributeDefinition]) -> bool:
    if row.errors:
        return False
    try:
        validate_fields(session, row.fields, row.attributes, definitions=definitions)
    except Invalid:
        return False
    return True


def _prepared_lines(session: Session, imp: ContactImport, content: bytes) -> tuple[bytes, int]:
    """The file as one JSON line per data row: [row, cells] or [row, null, problem] (+ earliest for dry runs)."""
    table = open_upload(content, imp.filename, encoding=(imp.mapping or {}).get("encoding"))
    mapping = column_mapping(imp)
    if list(mapping) != table.columns:
        raise Invalid("the file's columns are not the ones it was mapped with", field="mapping")
    limit = get_settings().import_max_rows
    first_seen: dict[tuple[str, str], int] = {}
    definitions = _definitions(session)
    out: list[bytes] = []
    for number, cells in table.rows():
        if len(out) >= limit:
            raise Invalid(f"the file has more than {limit} rows: split it", field="file")
        line: list[Any] = [number, None, cells.message] if isinstance(cells, RowProblem) else [number, cells]
        if imp.dry_run and not isinstance(cells, RowProblem):
            row = read_row(number, cells, table.columns, mapping)
            if _valid(session, row, definitions):
                _mark_earlier([row], first_seen)
                _remember([row], first_seen, {number: "ok"})
            line += [None, row.earliest]
        out.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode())
    return b"\n".join(out) + (b"\n" if out else b""), len(out)


def _read_window(session: Session, imp: ContactImport, offset: int, want: int) -> tuple[list[Any], int]:
    """Up to `want` prepared rows starting at byte `offset`, and the offset after them."""
    size = _WINDOW
    while True:
        window = session.execute(
            select(func.substr(ContactImport.content, offset + 1, size)).where(ContactImport.id == imp.id)
        ).scalar_one() or b""
        at_end = len(window) < size
        lines = window.split(b"\n")
        if not at_end:
            lines.pop()  # cut by the window's end
        lines = [line for line in lines[:want] if line]
        if lines or at_end:
            return [json.loads(line) for line in lines], offset + sum(len(line) + 1 for line in lines)
        size *= 2


def _row_from_line(line: list[Any], columns: Sequence[str], mapping: Mapping[str, str]) -> RowInput:
    number, cells = line[0], line[1]
    if cells is None:
        return RowInput(row=number, values={}, errors=[(None, line[2])])
    row = read_row(number, cells, columns, mapping)
    if len(line) > 3:
        row.earliest = line[3]
    return row


def _step(session: Session, imp: ContactImport, payload: dict[str, Any], actor: Actor) -> dict[str, Any]:
    if payload["step"] == "prepare":
        if imp.status != PENDING:
            return {"skipped": "already prepared"}
        content = session.execute(select(ContactImport.content).where(ContactImport.id == imp.id)).scalar_one()
        prepared, total = _prepared_lines(session, imp, content or b"")
        imp.content = prepared
        imp.total_rows = total
        imp.status = RUNNING
        _enqueue(session, imp, "chunk", actor, offset=0, processed=0)
        return {"rows": total}
    if imp.status != RUNNING or payload["processed"] != imp.processed_rows:
        return {"skipped": "chunk already done"}
    lines, offset = _read_window(session, imp, payload["offset"], CHUNK_ROWS)
    mapping = column_mapping(imp)
    rows = [_row_from_line(line, list(mapping), mapping) for line in lines]
    result = _run_chunk(session, rows, _context(session, imp), dry_run=imp.dry_run)
    _count(session, imp, result, len(rows))
    if not rows or imp.processed_rows >= imp.total_rows:
        _finish(session, imp, actor)
    else:
        _enqueue(session, imp, "chunk", actor, offset=offset, processed=imp.processed_rows)
    return {"rows": len(rows), "created": result.created, "updated": result.updated}


def _fail(imp: ContactImport, message: str) -> None:
    imp.status = FAILED
    imp.finished_at = clock.now()
    imp.content = None
    imp.errors = [*(imp.errors or []), {"row": None, "column": None, "message": message}][-MAX_KEPT_ERRORS:]


@jobs.handler(IMPORT_JOB, max_attempts=MAX_ATTEMPTS)
def run_import_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Do one step of an import: prepare the file, or write one chunk and queue the next."""
    imp = session.execute(select(ContactImport).where(ContactImport.id == ctx.payload["import_id"])).scalar_one()
    if imp.status in (DONE, FAILED):
        return {"skipped": imp.status}
    actor = Actor(**ctx.payload["actor"])
    try:
        with session.begin_nested():
            return _step(session, imp, ctx.payload, actor)
    except SiyuError as exc:
        # The file itself is wrong (too many rows, unreadable): trying again can't help.
        _fail(imp, exc.message)
        return {"failed": exc.message}
    except Exception as exc:
        if ctx.attempt < MAX_ATTEMPTS:
            raise
        _fail(imp, f"the import stopped after {ctx.attempt} attempts: {type(exc).__name__}: {exc}")
        return {"failed": str(exc)}


# --- in process (command line, benchmark) -------------------------------------------------------------------


def _chunks(table: Table, size: int) -> Iterator[list[tuple[int, list[str] | RowProblem]]]:
    chunk: list[tuple[int, list[str] | RowProblem]] = []
    for item in table.rows():
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_file(
    *, workspace_id: int, content: bytes, filename: str, mapping: Mapping[str, str] | None, dry_run: bool,
    actor: Actor, overwrite: bool = False, encoding: str | None = None, sessions: SessionFactory = session_scope,
    chunk_rows: int = CHUNK_ROWS, on_start: Callable[[int], None] | None = None,
    on_chunk: Callable[[ChunkResult, int], None] | None = None,
) -> ContactImport:
    """Import a file in this process, one transaction per chunk; `on_chunk(result, rows)` after each commit."""
    with sessions() as session:
        bind_workspace(session, workspace_id)
        table = open_upload(content, filename, encoding=encoding)
        checked = _mapping_for(session, table, mapping)
        imp = ContactImport(filename=(filename or "upload")[:255], status=RUNNING, dry_run=dry_run,
                            mapping=_stored_mapping(table, checked, overwrite=overwrite), created_by=actor.label[:200])
        session.add(imp)
        session.flush()
        import_id = imp.id
        imp.total_rows = total = sum(1 for _ in table.rows())
    if on_start is not None:
        on_start(total)
    first_seen: dict[tuple[str, str], int] = {}
    for chunk in _chunks(table, chunk_rows):
        rows = [_row_input(number, cells, table.columns, checked) for number, cells in chunk]
        if dry_run:
            _mark_earlier(rows, first_seen)
        with sessions() as session:
            bind_workspace(session, workspace_id)
            imp = get_import(session, import_id)
            result = _run_chunk(session, rows, _context(session, imp), dry_run=dry_run)
            _count(session, imp, result, len(rows))
        if dry_run:
            _remember(rows, first_seen, result.outcomes)
        if on_chunk is not None:
            on_chunk(result, len(rows))
    with sessions() as session:
        bind_workspace(session, workspace_id)
        imp = get_import(session, import_id)
        _finish(session, imp, actor)
    return imp


def mark_stale_failed(session: Session, import_id: int, message: str) -> None:
    """Close an import whose run ended without finishing (the command was interrupted)."""
    session.execute(update(ContactImport).where(ContactImport.id == import_id, ContactImport.status == RUNNING)
                    .values(status=FAILED, finished_at=clock.now()))
    imp = get_import(session, import_id)
    _fail(imp, message)
