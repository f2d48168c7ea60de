"""Messaging tables of templates, welcome messages and keyword replies (broadcasts keep their own file)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class MessageTemplate(WorkspaceScoped, Base):
    """A saved message: its content (text, link card, image, mini-program card, email, SMS) is Jinja over a
    contact's fields, checked when saved and rendered for each contact when sent."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # The channel kinds it suits (wechat_oa, wecom, wecom_kf, sms, email, webhook); empty: any.
    channels: Mapped[list[str]] = mapped_column(Json, default=list)
    content: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WelcomeMessage(WorkspaceScoped, Base):
    """An account's default welcome: sent to each person who follows or adds it (when enabled)."""

    __tablename__ = "welcome_messages"
    __table_args__ = (UniqueConstraint("account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"text": "...", "attachments": [{"type": "link"|"image"|"miniprogram", ...}]}
    content: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class KeywordRule(WorkspaceScoped, Base):
    """A keyword auto-reply on one account (or, `account_id` empty, on every account of the workspace).

    `match_type` is exact, contains, regex, or `default` (the reply when no other rule matches).
    Lower `priority` wins, then the newest rule. `windows` limit when it answers, in the workspace's
    timezone: [{"days": [1..7 ISO weekdays], "start": "09:00", "end": "18:00"}]; empty: always.
    """

    __tablename__ = "keyword_rules"
    __table_args__ = (Index("ix_keyword_rules_account", "workspace_id", "account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"), default=None
    )
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    match_type: Mapped[str] = mapped_column(String(16))
    keywords: Mapped[list[str]] = mapped_column(Json, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    windows: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    reply: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class KeywordHit(WorkspaceScoped, Base):
    """One message a keyword rule answered: who sent which keyword, on which account."""

    __tablename__ = "keyword_hits"
    __table_args__ = (Index("ix_keyword_hits_rule_time", "workspace_id", "rule_id", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    rule_id: Mapped[int] = mapped_column(Id, ForeignKey("keyword_rules.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("channel_accounts.id", ondelete="SET NULL"), default=None
    )
    contact_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"), default=None)
    message_id: Mapped[int | None] = mapped_column(Id, ForeignKey("messages.id", ondelete="SET NULL"), default=None)
    keyword: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
