"""Channel tables: configured accounts, who joined each account, and callbacks already processed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class ChannelAccount(WorkspaceScoped, Base):
    """One configured channel instance: an Official Account, a WeCom app, an SMS sign, a mailbox, a webhook.

    `config` holds what may be shown (AppID, CorpID, agent id, sign name, API base URL); `secrets`
    holds what is never shown again once saved (AppSecret, Token, EncodingAESKey, SMTP password).
    """

    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # wechat_oa | wecom | wecom_kf | sms | email | webhook
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused
    config: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # Sync health, shown in the console: the last call that worked and the last that failed.
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AccountContact(WorkspaceScoped, Base):
    """A contact's address on one account (an openid on this OA, an external_userid of this corp, a phone).

    `state` is `joined` or `left` (followed / unfollowed, added / deleted); `last_inbound_at` opens the
    OA's 48-hour customer-service window; `staff_userid` is the WeCom member the contact added.
    """

    __tablename__ = "account_contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "address"),
        Index("ix_account_contacts_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="joined")
    staff_userid: Mapped[str | None] = mapped_column(String(64), default=None)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Customer-service messages sent since the contact's last inbound message (the OA allows 5 in 48 h).
    sent_since_inbound: Mapped[int] = mapped_column(default=0)


class CallbackReceipt(WorkspaceScoped, Base):
    """A callback already processed, by its dedupe key: the platforms retry, we process each once."""

    __tablename__ = "channel_callback_receipts"
    __table_args__ = (UniqueConstraint("account_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
