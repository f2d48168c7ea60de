"""The session archive: one row per message siyu sent or received, on any channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class Message(WorkspaceScoped, Base):
    """One message in or out. Outbound rows are written `queued` before anything is sent (the outbox).

    `origin` says what produced an outbound message (`welcome:<rule>`, `keyword:<rule>`,
    `broadcast:<id>`, `reply:<user>`, `api`), `external_id` the platform's id (MsgId, msgid, BizId...).
    `idempotency_key` is unique per workspace: a sender asking twice gets the first row back.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_messages_contact_time", "workspace_id", "contact_id", "created_at"),
        Index("ix_messages_account_time", "workspace_id", "account_id", "created_at"),
        Index("ix_messages_external", "account_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32))  # the account's kind, kept when the account goes
    contact_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"))
    staff_id: Mapped[int | None] = mapped_column(Id, ForeignKey("staff_members.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(Id, default=None, index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    # text | image | voice | video | link | miniprogram | event | email | sms
    msg_type: Mapped[str] = mapped_column(String(16), default="text")
    text: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    address: Mapped[str | None] = mapped_column(String(255), default=None)
    origin: Mapped[str | None] = mapped_column(String(64), default=None)
    purpose: Mapped[str] = mapped_column(String(16), default="service")  # service | marketing
    # in: received; out: queued | sending | sent | delivered | failed | opened | clicked
    status: Mapped[str] = mapped_column(String(16), default="received")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    external_id: Mapped[str | None] = mapped_column(String(128), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    job_id: Mapped[int | None] = mapped_column(Id, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
