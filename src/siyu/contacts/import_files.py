"""Reading an uploaded contact list: CSV in any usual encoding and delimiter, or the first sheet of an XLSX.

Chinese Excel saves "CSV" as GBK (GB18030 is its superset), Excel's "Unicode text" is UTF-16 with tabs,
and a Spanish shop's export may be Windows-1252: the encoding is detected, not asked for. A file may open
with a title line ("客户名单 2026-11") above its header: the header is the first of the opening rows that
names known fields, or failing that the first row as wide as the data.

Rows come out as (row number, cells) where the row number is the one a spreadsheet shows, so a person
can find the row an error names. Every cell is text: XLSX numbers and dates are written the way a
person would type them (a phone kept as a number in Excel must not become `1.38e10`).
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from siyu.core.errors import Invalid

# The rows looked at to find the header and the delimiter.
HEAD_ROWS = 10
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
# A cell larger than this is a broken file, not a contact's field.
MAX_CELL = 100_000
csv.field_size_limit(MAX_CELL)


@dataclass(frozen=True)
class RowProblem:
    """A row the reader could not split into cells (a broken quote, a cell too large)."""

    message: str


@dataclass
class Table:
    """An uploaded file opened for reading: its columns and a way to walk its data rows."""

    format: str  # csv | xlsx
    columns: list[str]
    header_row: int  # 0 when the file has no header line
    encoding: str | None = None
    delimiter: str | None = None
    # Each call walks the data rows again from the start: (row number, cells or the row's problem).
    rows: Callable[[], Iterator[tuple[int, list[str] | RowProblem]]] = field(default=lambda: iter(()))


def file_format(content: bytes, filename: str) -> str:
    """csv or xlsx, from the bytes first and the name second; Invalid for the old binary .xls."""
    name = (filename or "").lower()
    if content.startswith(_OLE_MAGIC) or name.endswith(".xls"):
        raise Invalid("this is an old Excel .xls file: save it as .xlsx or .csv and upload that", field="file")
    if content.startswith(_ZIP_MAGIC):
        return "xlsx"
    if name.endswith((".xlsx", ".xlsm")):
        raise Invalid("this file is named .xlsx but is not an Excel workbook", field="file")
    return "csv"


def _looks_chinese(text: str) -> bool:
    # Text of a Chinese file keeps to the common GB2312 characters; Windows-1252 Spanish read as GBK
    # turns into rare ideographs, since an accented letter followed by ASCII is not a GB2312 pair.
    wide = [ch for ch in text if ord(ch) > 0x7F]
    if not wide:
        return True
    common = 0
    for ch in wide:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common >= 0.8 * len(wide)


def detect_encoding(content: bytes) -> str:
    """The encoding of a CSV upload: a BOM's, else UTF-8, else GB18030 if the text looks Chinese, else cp1252."""
    if content.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = content[:_SNIFF_BYTES]
    for encoding in ("utf-8", "gb18030"):
        try:
            # A cut in the middle of a character at the sample's end is not a wrong guess.
            text = codecs.getincrementaldecoder(encoding)().decode(head, final=len(head) == len(content))
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8" or _looks_chinese(text):
            try:
                content.decode(encoding)
            except UnicodeDecodeError:
                continue
            return encoding
    try:
        content.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the opening lines into the most columns, the same number on each line."""
    lines = [line for line in sample.splitlines()[: HEAD_ROWS * 2] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", 0
    for delimiter in _DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            continue
        common = max(set(widths), key=widths.count)
        if common < 2:
            continue
        score = widths.count(common) * common
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_records(text_lines: Iterator[str], delimiter: str) -> Iterator[tuple[int, list[str] | RowProblem]]:
    reader = csv.reader(text_lines, delimiter=delimiter)
    number = 0
    while True:
        number += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, RowProblem(f"this row can't be read as CSV: {exc}")
            continue
        yield number, record


def _open_csv(content: bytes, encoding: str | None) -> tuple[str, str, Callable[[], Iterator[str]]]:
    encoding = encoding or detect_encoding(content)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise Invalid(f"unknown encoding {encoding!r}", field="encoding") from None
    try:
        text = content.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Invalid(f"the file is not {encoding}: {exc.reason} at byte {exc.start}", field="encoding") from None
    text = text.removeprefix("\ufeff")
    delimiter = sniff_delimiter(text[:_SNIFF_BYTES])

    def lines() -> Iterator[str]:
        return iter(io.StringIO(text, newline=""))

    return encoding, delimiter, lines


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _xlsx_rows(content: bytes) -> Callable[[], Iterator[tuple[int, list[str] | RowProblem]]]:
    from openpyxl import load_workbook

    def rows() -> Iterator[tuple[int, list[str] | RowProblem]]:
        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise Invalid(f"this Excel file can't be opened: {exc}", field="file") from None
        try:
            sheet = workbook.worksheets[0]
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [_cell_text(v) for v in values]
        finally:
            workbook.close()

    return rows


def _is_blank(cells: list[str] | RowProblem) -> bool:
    return isinstance(cells, list) and not any(c.strip() for c in cells)


def _unique_columns(header: list[str]) -> list[str]:
    columns: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(header, start=1):
        name = raw.strip().removeprefix("\ufeff") or f"column {index}"
        candidate, n = name, 2
        while candidate in seen:
            candidate, n = f"{name} ({n})", n + 1
        seen.add(candidate)
        columns.append(candidate)
    return columns


def _pick_header(head: list[tuple[int, list[str]]], recognised: Callable[[str], bool]) -> int:
    """Index into `head` of the header row."""
    scores = [sum(1 for c in cells if c.strip() and recognised(c)) for _, cells in head]
    if max(scores, default=0) > 0:
        return scores.index(max(scores))
    widths = [sum(1 for c in cells if c.strip()) for _, cells in head]
    return widths.index(max(widths))


def open_table(
    content: bytes, filename: str, *, encoding: str | None = None, recognised: Callable[[str], bool] | None = None,
) -> Table:
    """Open an upload: find its format, encoding, delimiter, header row and columns."""
    if not content:
        raise Invalid("the file is empty", field="file")
    fmt = file_format(content, filename)
    delimiter = None
    if fmt == "xlsx":
        raw_rows = _xlsx_rows(content)
    else:
        encoding, delimiter, lines = _open_csv(content, encoding)
        sep = delimiter

        def raw_rows() -> Iterator[tuple[int, list[str] | RowProblem]]:
            return _csv_records(lines(), sep)

    head: list[tuple[int, list[str]]] = []
    for number, cells in raw_rows():
        if isinstance(cells, list) and not _is_blank(cells):
            head.append((number, cells))
        if len(head) >= HEAD_ROWS:
            break
    if not head:
        raise Invalid("the file has no rows", field="file")
    picked = _pick_header(head, recognised or (lambda _c: False))
    header_row, header = head[picked]
    width = max(len(cells) for _, cells in head[picked:])
    columns = _unique_columns(header + [""] * (width - len(header)))

    def data_rows() -> Iterator[tuple[int, list[str] | RowProblem]]:
        for number, cells in raw_rows():
            if number <= header_row or _is_blank(cells):
                continue
            yield number, cells

    return Table(format=fmt, columns=columns, header_row=header_row, encoding=encoding, delimiter=delimiter,
                 rows=data_rows)
