"""The customer base's tables: contacts, identities, attributes, consent, notes, tags, staff, segments, merges."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.db import Base, Id, Json, UTCDateTime, utcnow
from siyu.core.tenancy import WorkspaceScoped


class ContactSettings(WorkspaceScoped, Base):
    """A workspace's contact rules: which identity types name one person, lifecycle thresholds, refresh cadence."""

    __tablename__ = "contact_settings"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # Identity types that may belong to one person only: two contacts sharing one are merged automatically.
    one_person_keys: Mapped[list[str]] = mapped_column(Json, default=list)
    # Lifecycle thresholds in days and counts (see contacts.lifecycle.DEFAULT_RULES).
    lifecycle_rules: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    segment_refresh_minutes: Mapped[int] = mapped_column(Integer, default=15)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StaffMember(WorkspaceScoped, Base):
    """A person who owns contacts: linked to a console user and/or a WeCom userid."""

    __tablename__ = "staff_members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "user_id"),
        UniqueConstraint("workspace_id", "wecom_userid"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    user_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"), default=None)
    wecom_userid: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(WorkspaceScoped, Base):
    """One real person across channels."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_workspace_created", "workspace_id", "created_at"),
        Index("ix_contacts_workspace_owner", "workspace_id", "owner_id"),
        Index("ix_contacts_workspace_stage", "workspace_id", "stage"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(120), default=None)
    nickname: Mapped[str | None] = mapped_column(String(120), default=None)
    avatar_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    gender: Mapped[str | None] = mapped_column(String(16), default=None)  # male | female | other
    birthday: Mapped[date | None] = mapped_column(Date, default=None)
    city: Mapped[str | None] = mapped_column(String(120), default=None)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)  # E.164, also a `phone` identity
    email: Mapped[str | None] = mapped_column(String(254), default=None)  # normalised, also an identity
    # Custom attributes, keyed by AttributeDefinition.key, validated against their definitions.
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    owner_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("staff_members.id", ondelete="SET NULL"), default=None
    )
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lifecycle and RFM, refreshed by the worker from order.paid / order.refunded and activity.
    stage: Mapped[str] = mapped_column(String(16), default="new")
    stage_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    revenue: Mapped[int] = mapped_column(Id, default=0)  # minor units of the workspace's currency, net of refunds
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    rfm_recency: Mapped[int | None] = mapped_column(Integer, default=None)  # 1..5, 5 = most recent
    rfm_frequency: Mapped[int | None] = mapped_column(Integer, default=None)
    rfm_monetary: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Identity(WorkspaceScoped, Base):
    """One key of a contact (phone, email, openid, unionid, external_userid, shop customer id, custom)."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("workspace_id", "type", "value"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttributeDefinition(WorkspaceScoped, Base):
    """A custom field of the workspace's contacts: text, number, date, choice or multi-choice."""

    __tablename__ = "contact_attribute_definitions"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(16))  # text | number | date | choice | multi_choice
    choices: Mapped[list[str]] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(WorkspaceScoped, Base):
    """A contact's current consent on one channel type; the history is in the events table."""

    __tablename__ = "contact_consents"
    __table_args__ = (UniqueConstraint("workspace_id", "contact_id", "channel"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # wechat_oa | wecom | sms | email
    status: Mapped[str] = mapped_column(String(16))  # granted | withdrawn
    source: Mapped[str] = mapped_column(String(80))
    proof: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Note(WorkspaceScoped, Base):
    """A free-text note on a contact by a console user or an API key."""

    __tablename__ = "contact_notes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagGroup(WorkspaceScoped, Base):
    """A family of tags (interest, source, stage...)."""

    __tablename__ = "tag_groups"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tag(WorkspaceScoped, Base):
    """A label put on contacts by hand, by rule, by keyword or by channel code."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("workspace_id", "group_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    group_id: Mapped[int] = mapped_column(Id, ForeignKey("tag_groups.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    color: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactTag(WorkspaceScoped, Base):
    """A tag on a contact, with where it came from."""

    __tablename__ = "contact_tags"
    __table_args__ = (
        UniqueConstraint("workspace_id", "contact_id", "tag_id"),
        Index("ix_contact_tags_workspace_tag", "workspace_id", "tag_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    tag_id: Mapped[int] = mapped_column(Id, ForeignKey("tags.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(80), default="manual")  # manual | rule:<id> | import | ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagRule(WorkspaceScoped, Base):
    """An auto-tagging rule: when its trigger fires and its condition holds, add (or remove) tags."""

    __tablename__ = "tag_rules"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # event | segment_entered; later modules add keyword | channel_code
    trigger: Mapped[str] = mapped_column(String(32))
    # The trigger's parameters: {"event_type": "order.paid", "condition": {...}} or {"segment_id": 3} ...
    config: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    add_tag_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    remove_tag_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Handover(WorkspaceScoped, Base):
    """Contacts moved from one staff member to another (离职继承 / 在职转接)."""

    __tablename__ = "contact_handovers"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    from_staff_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("staff_members.id", ondelete="SET NULL"), default=None
    )
    to_staff_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("staff_members.id", ondelete="SET NULL"), default=None
    )
    reason: Mapped[str] = mapped_column(String(32))  # leaving | reassignment
    contact_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    contact_count: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MergeRecord(WorkspaceScoped, Base):
    """Two contacts became one: the keeper stays, the merged one's snapshot is kept here."""

    __tablename__ = "contact_merges"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    keeper_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    merged_id: Mapped[int] = mapped_column(Id)  # the merged contact no longer exists: no foreign key
    identity_type: Mapped[str | None] = mapped_column(String(40), default=None)
    identity_value: Mapped[str | None] = mapped_column(String(200), default=None)
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    merged_snapshot: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MergeProposal(WorkspaceScoped, Base):
    """Two contacts that share an identity of a type not marked one-person: a merge for a person to review."""

    __tablename__ = "contact_merge_proposals"
    __table_args__ = (UniqueConstraint("workspace_id", "contact_a_id", "contact_b_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # Decided proposals stay as history: a side becomes NULL once its contact is merged away or
    # deleted (pending proposals of a deleted or merged pair are removed, see contacts.merge).
    contact_a_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    contact_b_id: Mapped[int | None] = mapped_column(Id, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    identity_type: Mapped[str] = mapped_column(String(40))
    identity_value: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted | rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The merge an accepted proposal led to (its record names both contacts and keeps the snapshot).
    merge_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_merges.id", ondelete="SET NULL"), default=None
    )


class Segment(WorkspaceScoped, Base):
    """A set of contacts: dynamic (a rule, re-evaluated) or static (a snapshot or an uploaded list)."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    kind: Mapped[str] = mapped_column(String(16))  # dynamic | static
    rule: Mapped[dict[str, Any] | None] = mapped_column(Json, default=None)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SegmentMember(WorkspaceScoped, Base):
    """A contact inside a segment since `entered_at`."""

    __tablename__ = "segment_members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "segment_id", "contact_id"),
        Index("ix_segment_members_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    segment_id: Mapped[int] = mapped_column(Id, ForeignKey("segments.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactImport(WorkspaceScoped, Base):
    """One CSV/XLSX import: its mapping, progress and per-row errors."""

    __tablename__ = "contact_imports"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | running | done | failed
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    mapping: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 7, "column": "phone", "message": "..."}], capped so a broken file can't fill the table
    errors: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    # The uploaded file, kept until the import finishes so any worker process can read it.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
