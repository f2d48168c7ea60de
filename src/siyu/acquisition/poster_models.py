"""Poster templates: a background, lines of text and where a channel code's QR goes, rendered per code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class PosterTemplate(WorkspaceScoped, Base):
    """A printable poster layout of `width` × `height` pixels.

    `background` is a PNG or JPEG (None: plain white), scaled to cover the canvas; `lines` are the
    texts drawn on it, `[{"text", "x", "y", "size", "color": "#RRGGBB", "align": "left"|"center"|
    "right"}]` with x the anchor of the alignment and y the top of the line, and texts that may say
    `{{ code.name }}`, `{{ code.state }}` or `{{ source.name }}`; the QR is a `qr_size` square at
    (`qr_x`, `qr_y`), quiet zone included."""

    __tablename__ = "poster_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # Loaded only when drawn or downloaded: lists and audits never carry the image.
    background: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, default=None))
    background_mime: Mapped[str | None] = mapped_column(String(32), default=None)
    background_bytes: Mapped[int] = mapped_column(Integer, default=0)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    qr_x: Mapped[int] = mapped_column(Integer)
    qr_y: Mapped[int] = mapped_column(Integer)
    qr_size: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
