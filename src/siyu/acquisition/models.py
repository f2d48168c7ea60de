"""Acquisition tables: sources (placements with a cost model), channel live codes (one per placement,
carrying its scene/state value), the staff a code rotates across, every arrival through a code, each
contact's first and latest touch, and spend per source and day.

Customer groups and group live codes are in `group_models.py`; poster templates in `poster_models.py`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped

SOURCE_TYPES = ("parcel_card", "store_poster", "phone_call", "sms", "ai_voice_call", "oa_article", "app",
                "short_video", "live_stream", "staff_card", "event", "other")
# per_unit: unit_cost × units (units a day, or the day's `units` entered with the spend);
# per_period: amount per day/week/month, spread over its days; per_acquired: unit_cost × contacts
# acquired that day; fixed: amount once, on `starts_on`.
COST_KINDS = ("per_unit", "per_period", "per_acquired", "fixed")
CODE_KINDS = ("wecom", "wechat_oa", "link")
CODE_STATUSES = ("active", "paused", "expired")
STRATEGIES = ("round_robin", "random", "weighted")
ARRIVAL_KINDS = ("scan", "add", "click")
SPEND_ORIGINS = ("manual", "csv", "model")


class Source(WorkspaceScoped, Base):
    """A placement contacts come from (1,000 parcel cards a day, the store poster, the live stream...).

    `cost_model` is `{"kind": one of COST_KINDS, "unit_cost": minor units, "units_per_day": int,
    "amount": minor units, "period": "day"|"week"|"month", "starts_on": "YYYY-MM-DD",
    "ends_on": "YYYY-MM-DD"}` with the keys its kind needs; money in `currency`'s minor units."""

    __tablename__ = "acquisition_sources"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(32))
    cost_model: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    currency: Mapped[str] = mapped_column(String(3))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelCode(WorkspaceScoped, Base):
    """One live code (渠道活码) of a source on one account.

    `state` is the scene/state value the platform hands back with the scan or add (at most 30
    characters, unique in the workspace): a WeCom contact-way config's `state`, an Official Account
    QR code's `scene_str`, a link code's path (`/c/<state>`). `config_id` and `qr_url` are the
    platform's (WeCom configs made by API are not visible in WeCom's admin, so they are ours to keep);
    `qr_content` is what the printed QR encodes (the platform's URL, or our link).

    Status: active | paused | expired. A scan of a paused or expired code still lands the contact,
    with an arrival record that says so. `expires_at` is checked at arrival and by a job.
    `welcome` is the code's own welcome content (empty: the account's default); `tag_ids` the tags
    its "on arrival through a channel code" rules add (see `acquisition.service`);
    `rotation` the strategy across `ChannelCodeStaff` rows; `synced_userids` the member list last
    written to the WeCom config (rotation rewrites it only when the eligible set changes)."""

    __tablename__ = "channel_codes"
    __table_args__ = (
        UniqueConstraint("workspace_id", "state"),
        UniqueConstraint("workspace_id", "name"),
        Index("ix_channel_codes_source", "workspace_id", "source_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    source_id: Mapped[int] = mapped_column(Id, ForeignKey("acquisition_sources.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channel_accounts.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    target_url: Mapped[str | None] = mapped_column(String(2000), default=None)  # link codes
    config_id: Mapped[str | None] = mapped_column(String(64), default=None)
    qr_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    qr_content: Mapped[str | None] = mapped_column(String(1000), default=None)
    skip_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    welcome: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    tag_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    rotation: Mapped[str] = mapped_column(String(16), default="round_robin")
    rotation_cursor: Mapped[int] = mapped_column(Integer, default=0)
    synced_userids: Mapped[list[str]] = mapped_column(Json, default=list)
    sync_error: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelCodeStaff(WorkspaceScoped, Base):
    """A staff member a code rotates new contacts to.

    `daily_cap` (None: no cap) counts the code's arrivals assigned to them on the workspace's local
    day; `hours` is their working time, `[{"days": [1..7 ISO weekdays], "start": "09:00", "end":
    "18:00"}]` in the workspace's timezone (empty: always); a `backup` member takes contacts only
    when every regular member is full or off. `platform_error` keeps WeCom's refusal for this member
    (not real-name verified, no customer-contact permission)."""

    __tablename__ = "channel_code_staff"
    __table_args__ = (UniqueConstraint("code_id", "staff_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_codes.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(Id, ForeignKey("staff_members.id", ondelete="CASCADE"))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    daily_cap: Mapped[int | None] = mapped_column(Integer, default=None)
    hours: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    backup: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    platform_error: Mapped[str | None] = mapped_column(String(500), default=None)


class Arrival(WorkspaceScoped, Base):
    """One scan, add or click through a code: who came, to whom they were assigned, and whether the code
    was live (`note`: None, "code_paused", "code_expired"). `local_day` is the workspace's day (caps).
    One row per platform event (`dedupe_key`), so a repeated callback counts once."""

    __tablename__ = "acquisition_arrivals"
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedupe_key"),
        Index("ix_arrivals_code_day", "workspace_id", "code_id", "local_day"),
        Index("ix_arrivals_source_day", "workspace_id", "source_id", "local_day"),
        Index("ix_arrivals_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code_id: Mapped[int] = mapped_column(Id, ForeignKey("channel_codes.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(Id, ForeignKey("acquisition_sources.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"))
    staff_id: Mapped[int | None] = mapped_column(Id, ForeignKey("staff_members.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8))
    new_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(String(32), default=None)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    local_day: Mapped[date] = mapped_column(Date)


def _merge_attributions(session: Session, keeper_id: int, merged_id: int) -> None:
    """Two contacts found to be one person (`contacts.merge`): one attribution, with the earlier first
    touch and the later latest touch of the two, so acquisition figures count the person once, by the
    source that really brought them."""
    table = cast(Table, Attribution.__table__)
    both = select(table).where(table.c.contact_id.in_((keeper_id, merged_id)))
    rows = {r.contact_id: r for r in session.execute(both)}
    theirs, ours = rows.get(merged_id), rows.get(keeper_id)
    if theirs is None:
        return
    if ours is None:
        session.execute(update(table).where(table.c.id == theirs.id).values(contact_id=keeper_id))
        return
    values: dict[str, Any] = {}
    if theirs.first_at < ours.first_at:
        values |= {f"first_{k}": getattr(theirs, f"first_{k}") for k in ("code_id", "source_id", "staff_id", "at")}
    if theirs.latest_at > ours.latest_at:
        values |= {f"latest_{k}": getattr(theirs, f"latest_{k}") for k in ("code_id", "source_id", "at")}
    session.execute(delete(table).where(table.c.id == theirs.id))
    if values:
        session.execute(update(table).where(table.c.id == ours.id).values(**values))


class Attribution(WorkspaceScoped, Base):
    """A contact's first and latest touch through a code (one row per contact)."""

    __tablename__ = "contact_attributions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "contact_id"),
        Index("ix_attributions_first_source", "workspace_id", "first_source_id"),
        {"info": {"on_contact_merge": _merge_attributions}},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    first_code_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channel_codes.id", ondelete="SET NULL"))
    first_source_id: Mapped[int | None] = mapped_column(Id, ForeignKey("acquisition_sources.id",
                                                                       ondelete="SET NULL"))
    first_staff_id: Mapped[int | None] = mapped_column(Id, ForeignKey("staff_members.id", ondelete="SET NULL"))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latest_code_id: Mapped[int | None] = mapped_column(Id, ForeignKey("channel_codes.id", ondelete="SET NULL"))
    latest_source_id: Mapped[int | None] = mapped_column(Id, ForeignKey("acquisition_sources.id",
                                                                        ondelete="SET NULL"))
    latest_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Spend(WorkspaceScoped, Base):
    """What a source cost on one day, in its currency's minor units. One figure per source and day:
    a manual or CSV entry replaces the day's figure; the cost model fills days nobody entered
    (`origin` "model") and never overwrites an entered one."""

    __tablename__ = "acquisition_spend"
    __table_args__ = (UniqueConstraint("workspace_id", "source_id", "day"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_id: Mapped[int] = mapped_column(Id, ForeignKey("acquisition_sources.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(Id)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    units: Mapped[int | None] = mapped_column(Integer, default=None)
    origin: Mapped[str] = mapped_column(String(8), default="manual")
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
