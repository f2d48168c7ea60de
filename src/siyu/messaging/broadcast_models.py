"""Broadcast tables: a broadcast, its frozen audience (one row per recipient), tracked links, and the
workspace's frequency caps and quiet hours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class Broadcast(WorkspaceScoped, Base):
    """One marketing message to a segment through one account, now or at a scheduled time.

    `status`: draft → scheduled → sending ⇄ paused → done, or cancelled. `chunk_seq` names the live
    chain of chunk jobs: pausing or resuming moves it on, so a chunk job of an older chain stops.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="SET NULL"))
    segment_id: Mapped[int | None] = mapped_column(Id, ForeignKey("segments.id", ondelete="SET NULL"))
    content: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Send-time optimisation: each contact's message at their best hour within `window_hours`.
    optimise_send_time: Mapped[bool] = mapped_column(Boolean, default=False)
    window_hours: Mapped[int] = mapped_column(Integer, default=24)
    audience_count: Mapped[int] = mapped_column(Integer, default=0)
    processed_count: Mapped[int] = mapped_column(Integer, default=0)
    chunk_seq: Mapped[int] = mapped_column(Integer, default=0)
    # What the start learned once for everyone: the workspace's best hour bucket, the platform rate.
    plan: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class BroadcastRecipient(WorkspaceScoped, Base):
    """One contact of a broadcast's frozen audience: at most one row, hence at most one message.

    `status`: pending (not yet processed) → queued (a message is in the outbox) | held (paused before
    it left) | skipped (cap, quiet-hours window, template: `reason` says which). `note` explains when
    the message goes (send-time optimisation)."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "contact_id"),
        Index("ix_broadcast_recipients_status", "broadcast_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(Id, ForeignKey("broadcasts.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    note: Mapped[dict[str, Any] | None] = mapped_column(Json, default=None)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    message_id: Mapped[int | None] = mapped_column(Id, default=None, index=True)


class BroadcastLink(WorkspaceScoped, Base):
    """A link of a broadcast's content rewritten for one recipient: `/l/<code>` redirects to `url`."""

    __tablename__ = "broadcast_links"
    __table_args__ = (Index("ix_broadcast_links_broadcast", "broadcast_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    broadcast_id: Mapped[int] = mapped_column(Id, ForeignKey("broadcasts.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(Id, default=None)
    message_id: Mapped[int | None] = mapped_column(Id, default=None)
    url: Mapped[str] = mapped_column(Text)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    first_clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class BroadcastSettings(WorkspaceScoped, Base):
    """A workspace's marketing limits: caps per channel kind ({"wechat_oa": {"day": 1, "week": 3,
    "month": 8}}, "*" for every channel) and quiet hours in the workspace's timezone ("21:00"-"09:00")."""

    __tablename__ = "broadcast_settings"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    caps: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
