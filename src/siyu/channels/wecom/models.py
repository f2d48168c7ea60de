"""WeCom's own table: which staff members each customer has added (a customer may add several)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class WeComFollow(WorkspaceScoped, Base):
    """A customer (external_userid) is a contact of this member (userid) on this WeCom account.

    Deleting one member leaves the customer joined while another member still has them.
    """

    __tablename__ = "wecom_follows"
    __table_args__ = (UniqueConstraint("account_id", "external_userid", "staff_userid"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    external_userid: Mapped[str] = mapped_column(String(64))
    staff_userid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
