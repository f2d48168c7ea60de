"""The access tokens of accounts whose platform hands out short-lived tokens (the Official Account)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class AccessToken(WorkspaceScoped, Base):
    """An account's current access token, shared by every worker and server process (when no Redis is
    configured). `fingerprint` ties it to the credentials it was fetched with: a new AppSecret starts over."""

    __tablename__ = "channel_access_tokens"
    __table_args__ = (UniqueConstraint("account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(1024))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
