"""Customer groups (客户群) of a WeCom account, their membership over time, and group live codes (群活码).

A `GroupCode` is one WeCom "join group" config (`externalcontact/groupchat/add_join_way`, scene 2: a QR
code that never changes) listing up to 5 customer groups; `GroupCodeChat` keeps that list in order,
with the groups that filled up taken out of WeCom's list (`in_way` False) but kept here for the figures.

Membership is one `GroupMember` row per stay: a person who leaves and comes back has two rows. The size
of a group on a day is computed from these rows (joined before the day's end, not left by then), so no
daily snapshot table is kept; see `siyu.acquisition.groups.daily_series`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped

GROUP_STATUSES = ("active", "dismissed")
GROUP_CODE_STATUSES = ("active", "paused", "expired")
STAFF, EXTERNAL = 1, 2


class CustomerGroup(WorkspaceScoped, Base):
    """A WeCom customer group (外部群) as siyu last saw it; `member_count` counts current members."""

    __tablename__ = "customer_groups"
    __table_args__ = (
        UniqueConstraint("account_id", "chat_id"),
        Index("ix_customer_groups_status", "workspace_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    owner_userid: Mapped[str] = mapped_column(String(64), default="")
    notice: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    external_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sync_error: Mapped[str | None] = mapped_column(String(500), default=None)


class GroupMember(WorkspaceScoped, Base):
    """One stay of one member in a group: a staff userid (type 1) or a customer's external_userid (type 2).

    `join_scene` is WeCom's (1 invited directly, 2 invited by link, 3 scanned the group's QR code);
    `quit_scene` 0 left, 1 removed. `state` is the join way's state WeCom reports for the member
    (`groupchat/get`), `group_code_id` the code it names. `join_recorded` says the `group.member_joined`
    event was written (after the member's state was read, or given up on)."""

    __tablename__ = "customer_group_members"
    __table_args__ = (
        Index("ix_group_members_member", "group_id", "member_id"),
        Index("ix_group_members_code", "workspace_id", "group_code_id"),
        Index("ix_group_members_pending", "workspace_id", "join_recorded"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    group_id: Mapped[int] = mapped_column(Id, ForeignKey("customer_groups.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[int] = mapped_column(Integer, default=EXTERNAL)
    contact_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    join_scene: Mapped[int | None] = mapped_column(Integer, default=None)
    quit_scene: Mapped[int | None] = mapped_column(Integer, default=None)
    state: Mapped[str | None] = mapped_column(String(30), default=None)
    group_code_id: Mapped[int | None] = mapped_column(Id, ForeignKey("group_codes.id", ondelete="SET NULL"))
    join_recorded: Mapped[bool] = mapped_column(Boolean, default=False)


class GroupCode(WorkspaceScoped, Base):
    """A group live code: one WeCom join-way config of up to 5 groups, its QR code and `state`.

    `auto_create_room`: when every listed group is full WeCom creates the next one, named
    `room_base_name` + a number from `room_base_id`. `welcome` is the group welcome content; WeCom
    keeps it as a group welcome template (`group_welcome_template/add`), `welcome_template_id`."""

    __tablename__ = "group_codes"
    __table_args__ = (
        UniqueConstraint("workspace_id", "state"),
        UniqueConstraint("workspace_id", "name"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="SET NULL"))
    source_id: Mapped[int | None] = mapped_column(Id, ForeignKey("acquisition_sources.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    config_id: Mapped[str | None] = mapped_column(String(64), default=None)
    qr_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    qr_content: Mapped[str | None] = mapped_column(String(1000), default=None)
    auto_create_room: Mapped[bool] = mapped_column(Boolean, default=True)
    room_base_name: Mapped[str] = mapped_column(String(40), default="")
    room_base_id: Mapped[int | None] = mapped_column(Integer, default=None)
    welcome: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    welcome_template_id: Mapped[str | None] = mapped_column(String(128), default=None)
    sync_error: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupCodeChat(WorkspaceScoped, Base):
    """A group a code brings people into, in order; `in_way` False once it filled up (taken out of
    WeCom's list) or was dismissed."""

    __tablename__ = "group_code_chats"
    __table_args__ = (UniqueConstraint("code_id", "group_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code_id: Mapped[int] = mapped_column(Id, ForeignKey("group_codes.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(Id, ForeignKey("customer_groups.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    in_way: Mapped[bool] = mapped_column(Boolean, default=True)
    full_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
