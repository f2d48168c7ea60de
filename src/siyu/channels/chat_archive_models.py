"""Where each account's WeCom chat-archive pull has got to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, UTCDateTime
from siyu.core.tenancy import WorkspaceScoped


class ChatArchiveCursor(WorkspaceScoped, Base):
    """The last `seq` pulled from WeCom's chat archive for one account (the next pull asks for later ones)."""

    __tablename__ = "channel_chat_archive_cursors"
    __table_args__ = (UniqueConstraint("account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pulled: Mapped[int] = mapped_column(BigInteger, default=0)
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
