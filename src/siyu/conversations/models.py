"""The session archive: one row per message siyu sent or received, on any channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, synonym

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


class Conversation(WorkspaceScoped, Base):
    """One stretch of talk between a contact and the brand on one account: opened by the contact's
    message, answered by staff, closed by a person or after hours of silence."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_open", "workspace_id", "status", "last_message_at"),
        Index("ix_conversations_contact", "workspace_id", "contact_id", "account_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[int | None] = mapped_column(Id, ForeignKey("staff_members.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    responder_id: Mapped[int | None] = mapped_column(Id, ForeignKey("staff_members.id", ondelete="SET NULL"))
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    messages: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_by: Mapped[str | None] = mapped_column(String(200), default=None)  # a person's label or "idle"
    survey_message_id: Mapped[int | None] = mapped_column(Id, default=None)
    rating: Mapped[int | None] = mapped_column(default=None)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ConversationSettings(WorkspaceScoped, Base):
    """A workspace's conversation settings; defaults apply until someone saves them."""

    __tablename__ = "conversation_settings"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    idle_close_hours: Mapped[int] = mapped_column(default=24)
    survey_enabled: Mapped[bool] = mapped_column(default=True)
    # Empty: the default question in the workspace's language.
    survey_text: Mapped[str] = mapped_column(Text, default="")


class SensitiveRule(WorkspaceScoped, Base):
    """Words (one per line) or one regular expression whose appearance in a message raises an alert."""

    __tablename__ = "sensitive_rules"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # over_marketing | forbidden_claim | competitor | abuse | other
    category: Mapped[str] = mapped_column(String(32), default="other")
    kind: Mapped[str] = mapped_column(String(8), default="words")  # words | regex
    words: Mapped[list[str]] = mapped_column(Json, default=list)
    pattern: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(8), default="medium")  # low | medium | high
    # Which messages it watches: in, out or both.
    direction: Mapped[str] = mapped_column(String(4), default="both")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SensitiveAlert(WorkspaceScoped, Base):
    """One rule hit in one message, shown to admins until acknowledged and resolved."""

    __tablename__ = "sensitive_alerts"
    __table_args__ = (
        UniqueConstraint("message_id", "rule_id"),
        Index("ix_sensitive_alerts_status", "workspace_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(Id, ForeignKey("messages.id", ondelete="CASCADE"))
    rule_id: Mapped[int | None] = mapped_column(Id, ForeignKey("sensitive_rules.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    matched: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(3))
    contact_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"))
    staff_id: Mapped[int | None] = mapped_column(Id, ForeignKey("staff_members.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged | resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    handled_by: Mapped[str | None] = mapped_column(String(200), default=None)


class MessageSearch(WorkspaceScoped, Base):
    """Each message's search tokens (rjieba words, normalised Latin words), space separated.

    PostgreSQL stores them as a `tsvector` (`simple` config, GIN index); SQLite keeps the string and an
    FTS5 index over it (`message_search_fts`, kept in step by triggers). Both are made by the migration.
    """

    __tablename__ = "message_search"

    message_id: Mapped[int] = mapped_column(Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    document: Mapped[str] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"), default="")
    # Every table answers to `id` (generic code orders and audits by it).
    id: Mapped[int] = synonym("message_id")
