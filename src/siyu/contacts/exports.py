"""Contact exports: a segment's members, contacts with a tag, or everyone, as CSV or XLSX.

Columns are named the way the importer reads them (`name`, `phone`, `identity:openid`,
`attribute:vip_level`, `tags` as `group/tag`), so an exported file imports back onto the same people.

A cell a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) is
written to CSV behind an apostrophe, the usual guard against formula injection; the importer takes the
apostrophe off again. XLSX cells are all typed as text, which no spreadsheet evaluates, so they keep
their value as it is (a phone stays `+8613800000000`). CSV is UTF-8 with a byte-order mark: without it
Excel reads Chinese as mojibake.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from siyu.contacts.models import (
    AttributeDefinition,
    Contact,
    ContactTag,
    Identity,
    Segment,
    SegmentMember,
    Tag,
    TagGroup,
)
from siyu.core.errors import Invalid
from siyu.core.tenancy import get_scoped, parse_id

FORMATS = ("csv", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FIELDS = ("name", "nickname", "phone", "email", "gender", "birthday", "city", "locale", "avatar_url")
# Identity types with a column of their own; phone and email are the fields above.
IDENTITY_COLUMNS = ("openid", "unionid", "external_userid", "shop_customer_id")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_BATCH = 1000


def guard(value: str) -> str:
    """A CSV cell that no spreadsheet runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def check_format(fmt: str) -> str:
    """csv or xlsx, or Invalid naming `format`."""
    if fmt not in FORMATS:
        raise Invalid(f"format is one of {', '.join(FORMATS)}", field="format")
    return fmt


def _selection(session: Session, segment_id: Any, tag_id: Any, criterion: ColumnElement[bool] | None
               ) -> Select[Any]:
    stmt = select(Contact)
    if segment_id is not None:
        segment = get_scoped(session, Segment, segment_id, what="segment")
        stmt = stmt.where(Contact.id.in_(select(SegmentMember.contact_id)
                                         .where(SegmentMember.segment_id == segment.id)))
    if tag_id is not None:
        tag = get_scoped(session, Tag, parse_id(tag_id, "tag"), what="tag")
        stmt = stmt.where(Contact.id.in_(select(ContactTag.contact_id).where(ContactTag.tag_id == tag.id)))
    if criterion is not None:
        stmt = stmt.where(criterion)
    return stmt


def count_contacts(session: Session, *, segment_id: Any = None, tag_id: Any = None,
                   criterion: ColumnElement[bool] | None = None) -> int:
    """How many contacts an export of this selection has."""
    inner = _selection(session, segment_id, tag_id, criterion).with_only_columns(Contact.id).subquery()
    return int(session.execute(select(func.count()).select_from(inner)).scalar_one())


def export_columns(session: Session) -> list[str]:
    """The header of an export: fields, identities, tags, the workspace's attributes, then read-only facts."""
    keys = session.execute(select(AttributeDefinition.key).order_by(AttributeDefinition.key)).scalars().all()
    return ["id", *FIELDS, *(f"identity:{t}" for t in IDENTITY_COLUMNS), "tags",
            *(f"attribute:{k}" for k in keys), "stage", "created_at"]


def _identities(session: Session, ids: Sequence[int]) -> dict[int, dict[str, list[str]]]:
    out: dict[int, dict[str, list[str]]] = {}
    rows = session.execute(select(Identity.contact_id, Identity.type, Identity.value)
                           .where(Identity.contact_id.in_(ids)).order_by(Identity.id))
    for contact_id, kind, value in rows:
        out.setdefault(contact_id, {}).setdefault(kind, []).append(value)
    return out


def _tags(session: Session, ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    rows = session.execute(
        select(ContactTag.contact_id, TagGroup.name, Tag.name)
        .join(Tag, Tag.id == ContactTag.tag_id).join(TagGroup, TagGroup.id == Tag.group_id)
        .where(ContactTag.contact_id.in_(ids)).order_by(TagGroup.name, Tag.name)
    )
    for contact_id, group, name in rows:
        out.setdefault(contact_id, []).append(f"{group}/{name}")
    return out


def contact_rows(session: Session, columns: Sequence[str], *, segment_id: Any = None, tag_id: Any = None,
                 criterion: ColumnElement[bool] | None = None) -> Iterator[list[str]]:
    """The selected contacts as rows of text under `columns`, read a thousand at a time in id order."""
    base = _selection(session, segment_id, tag_id, criterion)
    attribute_keys = [c[len("attribute:"):] for c in columns if c.startswith("attribute:")]
    last = 0
    while True:
        batch = session.execute(base.where(Contact.id > last).order_by(Contact.id).limit(_BATCH)).scalars().all()
        if not batch:
            return
        ids = [c.id for c in batch]
        identities, tags = _identities(session, ids), _tags(session, ids)
        for contact in batch:
            known = identities.get(contact.id, {})
            attributes = contact.attributes or {}
            yield [
                str(contact.id),
                *(_text(getattr(contact, f)) for f in FIELDS),
                *(", ".join(known.get(t, [])) for t in IDENTITY_COLUMNS),
                ", ".join(tags.get(contact.id, [])),
                *(_text(attributes.get(k)) for k in attribute_keys),
                contact.stage,
                _text(contact.created_at),
            ]
        last = ids[-1]
        session.expunge_all()


def write_export(
    session: Session, out: IO[bytes], fmt: str, *, segment_id: Any = None, tag_id: Any = None,
    criterion: ColumnElement[bool] | None = None, on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write the selected contacts to `out` as CSV or XLSX; the number of contacts written."""
    check_format(fmt)
    columns = export_columns(session)
    rows = contact_rows(session, columns, segment_id=segment_id, tag_id=tag_id, criterion=criterion)
    written = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
        writer = csv.writer(text)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([guard(v) for v in row])
            written += 1
            if on_rows is not None and written % _BATCH == 0:
                on_rows(_BATCH)
        text.flush()
        text.detach()
    else:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("contacts")

        def cells(values: Sequence[str]) -> list[WriteOnlyCell]:
            out_cells = []
            for value in values:
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"  # text, never a formula, whatever it starts with
                out_cells.append(cell)
            return out_cells

        sheet.append(cells(columns))
        for row in rows:
            sheet.append(cells(row))
            written += 1
            if on_rows is not None and written % _BATCH == 0:
                on_rows(_BATCH)
        workbook.save(out)
    if on_rows is not None and written % _BATCH:
        on_rows(written % _BATCH)
    return written


def export_filename(fmt: str, segment: str | None = None) -> str:
    """A file name for a download: contacts[-segment].csv."""
    stem = "contacts" if segment is None else f"contacts-segment-{segment}"
    return f"{stem}.{fmt}"
