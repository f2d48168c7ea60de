"""Cursor pagination: newest first, the cursor is an opaque token for the last id seen."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from siyu.core.errors import Invalid

T = TypeVar("T")
MAX_LIMIT = 200


def encode_cursor(last_id: int) -> str:
    """An opaque cursor for the row after which the next page starts."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id inside a cursor, or a 422 naming the `cursor` field."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(raw)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not one this API gave out", field="cursor") from None


def page(
    session: Session, stmt: Select[Any], id_column: Any, *, cursor: str | None, limit: int
) -> tuple[Sequence[Any], str | None]:
    """One page of `stmt` ordered by id descending, and the cursor of the next page (None at the end)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if cursor:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    rows = session.execute(stmt.order_by(id_column.desc()).limit(limit + 1)).scalars().all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None
