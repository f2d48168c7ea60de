"""Arrivals: a person scanning, adding or clicking through a channel code.

The receive hook (after the archive's threads, before the welcome) finds the code by the state a WeCom
add carries or the scene of an Official Account follow or scan, and writes one `Arrival` per platform
event, the contact's first and latest touch, their owner, the code's tags and the event
`acquisition.arrived`. A link code's `/c/<state>` records a click and redirects.

Owner: on WeCom the member the person added (the event's UserID); on the Official Account and links
the code's rotation chooses among its members (`rotation.choose`, the draw from an injectable random
source). Only a new contact, or one without an owner, is assigned: a known customer scanning another
poster keeps the staff member they have. When every member is full or off duty and there is no backup,
the contact lands with the default owner and the arrival's note says `no_staff_available`.

A paused or expired code still lands the contact; the arrival's note says `code_paused` or
`code_expired`, and its own welcome message is not sent (the account's default welcome is): a paused
campaign's welcome often promises an offer that is over.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.acquisition import codes, rotation
from siyu.acquisition.models import Arrival, Attribution, ChannelCode
from siyu.channels import service as channels
from siyu.channels.base import Inbound
from siyu.channels.models import ChannelAccount
from siyu.contacts import service as contact_service
from siyu.contacts import staff as staff_service
from siyu.contacts import tag_rules
from siyu.contacts import tags as tag_service
from siyu.core import clock
from siyu.core.db import is_postgres
from siyu.core.errors import Invalid, NotFound
from siyu.core.events import record_event
from siyu.core.models import Event
from siyu.core.tenancy import MAX_ID, bound_workspace
from siyu.core.workspaces import get_workspace
from siyu.messaging.welcome import Welcome, welcome_lookup

ARRIVED = "acquisition.arrived"
# The random source of the Official Account's and links' rotation draws (tests and benches replace it).
_draw: list[Callable[[], float]] = [random.Random().random]


def set_draw(fn: Callable[[], float] | None) -> None:
    """Use `fn` for rotation draws (None: a fresh random source)."""
    _draw[0] = fn if fn is not None else random.Random().random


# --- time -------------------------------------------------------------------------------------------


def zone(session: Session) -> ZoneInfo:
    """The bound workspace's timezone."""
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("arrivals are recorded through a session bound to a workspace")
    cache: dict[int, ZoneInfo] = session.info.setdefault("acquisition.zones", {})
    if workspace_id not in cache:
        cache[workspace_id] = ZoneInfo(get_workspace(session, workspace_id).timezone)
    return cache[workspace_id]


def local_now(session: Session, now: datetime | None = None) -> datetime:
    """Now (or `now`) in the workspace's timezone."""
    return (now or clock.now()).astimezone(zone(session))


def day_counts(session: Session, code: ChannelCode, day: date) -> dict[int, int]:
    """Arrivals assigned per staff member on this code on a local day (what caps count)."""
    rows = session.execute(select(Arrival.staff_id, func.count()).where(
        Arrival.code_id == code.id, Arrival.local_day == day, Arrival.staff_id.is_not(None),
    ).group_by(Arrival.staff_id)).all()
    return {int(s): int(n) for s, n in rows if s is not None}


# --- the arrival ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landed:
    """What an arrival did."""

    arrival: Arrival | None  # None: this platform event was recorded before
    staff_id: int | None = None
    note: str | None = None


def _key(*parts: Any) -> str:
    raw = ":".join(str(p) for p in parts)
    return raw if len(raw) <= 200 else raw[:120] + ":" + hashlib.sha256(raw.encode()).hexdigest()


def _insert(session: Session, values: dict[str, Any]) -> int | None:
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    stmt = insert(Arrival).values(**values).on_conflict_do_nothing(index_elements=["workspace_id", "dedupe_key"])
    row = session.execute(stmt.returning(Arrival.id)).first()
    return int(row[0]) if row is not None else None


def _touch(session: Session, code: ChannelCode, contact_id: int, staff_id: int | None, at: datetime) -> None:
    row = session.execute(select(Attribution).where(Attribution.contact_id == contact_id)).scalar_one_or_none()
    if row is None:
        session.add(Attribution(workspace_id=code.workspace_id, contact_id=contact_id, first_code_id=code.id,
                                first_source_id=code.source_id, first_staff_id=staff_id, first_at=at,
                                latest_code_id=code.id, latest_source_id=code.source_id, latest_at=at))
    elif at >= row.latest_at:
        row.latest_code_id, row.latest_source_id, row.latest_at = code.id, code.source_id, at
    session.flush()


def _existing_tags(session: Session, tag_ids: list[int]) -> list[int]:
    out = []
    for tag_id in tag_ids:
        try:
            out.append(tag_service.get_tag(session, tag_id).id)
        except NotFound:
            continue  # deleted since the code was written: skipped, not an error that would refuse the add
    return out


def _owner(session: Session, code: ChannelCode, staff_userid: str | None, at_local: datetime,
           ) -> tuple[int | None, str | None]:
    rows = codes.members_of(session, code)
    if code.kind == "wecom":
        if not staff_userid:
            return None, None
        ids = codes.userids(session, [r.staff_id for r in rows])
        for staff_id, userid in ids.items():
            if userid == staff_userid:
                return staff_id, None
        for staff in staff_service.list_staff(session, active=True):
            if staff.wecom_userid == staff_userid:
                return staff.id, None
        return None, None
    if not rows:
        return None, None
    # Arrivals through one code take turns from here to their commit (a row lock on PostgreSQL; SQLite's
    # writers are serialised at BEGIN): two at once would both read the same counts and cursor, and a
    # member one short of their cap would get both.
    session.refresh(code, attribute_names=["rotation_cursor"], with_for_update=True)
    counts = day_counts(session, code, at_local.date())
    chosen, cursor = rotation.choose(code.rotation, codes.rotation_members(rows), counts, at_local,
                                     cursor=code.rotation_cursor, draw=_draw[0]())
    if chosen is None:
        return None, "no_staff_available"
    code.rotation_cursor = cursor
    return chosen.staff_id, None


def record_arrival(
    session: Session, code: ChannelCode, *, kind: str, dedupe_key: str, contact_id: int | None,
    new_contact: bool = False, staff_userid: str | None = None, occurred_at: datetime | None = None,
) -> Landed:
    """Record one arrival through a code (once per `dedupe_key`), with its touch, owner, tags and event.
    `new_contact`: the platform event that brought the person also made the contact (`Received.created`)."""
    now = clock.now()
    at = occurred_at or now
    at_local = local_now(session, at)
    status = codes.live_status(code, now)
    if status == "expired" and code.status != "expired":
        code.status = "expired"
    note = {"paused": "code_paused", "expired": "code_expired"}.get(status)
    new_contact = contact_id is not None and new_contact
    staff_id, rotation_note = (None, None)
    owner = contact_service.get_contact(session, contact_id).owner_id if contact_id is not None else None
    # WeCom names the member the person added; elsewhere rotation chooses, only for whom it will own.
    if contact_id is not None and (code.kind == "wecom" or new_contact or owner is None):
        staff_id, rotation_note = _owner(session, code, staff_userid, at_local)
    note = note or rotation_note
    arrival_id = _insert(session, {
        "workspace_id": code.workspace_id, "code_id": code.id, "source_id": code.source_id,
        "contact_id": contact_id, "staff_id": staff_id, "kind": kind, "new_contact": new_contact, "note": note,
        "dedupe_key": _key(dedupe_key), "occurred_at": at, "local_day": at_local.date()})
    if arrival_id is None:
        return Landed(arrival=None)
    if contact_id is not None:
        _touch(session, code, contact_id, staff_id, at)
        if staff_id is not None and (new_contact or owner is None):
            # A staff member deactivated since: the contact keeps the default owner.
            with suppress(Invalid):
                staff_service.assign_owner(session, [contact_id], staff_id, actor=None)
        tag_ids = _existing_tags(session, list(code.tag_ids or []))
        if tag_ids:
            tag_service.add_tags(session, [contact_id], tag_ids, source=f"channel_code:{code.id}", actor=None)
    record_event(session, type=ARRIVED, contact_id=contact_id, occurred_at=at, source="acquisition",
                 idempotency_key=f"arrival:{arrival_id}",
                 properties={"code_id": code.id, "source_id": code.source_id, "staff_id": staff_id, "kind": kind,
                             "new_contact": new_contact, "note": note, "arrival_id": arrival_id})
    if code.kind == "wecom" and staff_id is not None:
        from siyu.acquisition.tasks import queue_member_sync

        queue_member_sync(session, code, at_local)
    return Landed(arrival=session.get(Arrival, arrival_id), staff_id=staff_id, note=note)


# --- the receive hook -------------------------------------------------------------------------------


def code_of_item(session: Session, account: ChannelAccount, item: Inbound) -> tuple[ChannelCode, str] | None:
    """The code an inbound join or scan came through and the arrival's kind, if any."""
    details = item.details
    if account.kind == "wecom" and item.event == "joined":
        state, kind = str(details.get("state") or ""), "add"
    elif account.kind == "wechat_oa" and item.event in ("joined", "scanned"):
        state, kind = str(details.get("scene") or ""), "add" if item.event == "joined" else "scan"
    else:
        return None
    if not state:
        return None
    code = codes.code_by_state(session, state, kind=account.kind)
    if code is None or (code.account_id is not None and code.account_id != account.id):
        return None
    return code, kind


@channels.on_receive("acquisition", order=50)
def _on_receive(session: Session, account: ChannelAccount, item: Inbound,
                received: channels.Received) -> dict[str, Any] | None:
    found = code_of_item(session, account, item)
    if found is not None and received.contact_id is not None:
        code, kind = found
        record_arrival(session, code, kind=kind, dedupe_key=f"cb:{account.id}:{item.dedupe_key}",
                       contact_id=received.contact_id, new_contact=received.created,
                       staff_userid=str(item.details.get("staff_userid") or "") or None,
                       occurred_at=item.occurred_at)
    return None


# --- the code's welcome -----------------------------------------------------------------------------


@welcome_lookup("acquisition")
def _code_welcome(session: Session, account: ChannelAccount, details: Mapping[str, Any]) -> Welcome | None:
    state = details.get("state") if account.kind == "wecom" else details.get("scene")
    if not state or account.kind not in ("wecom", "wechat_oa"):
        return None
    code = codes.code_by_state(session, str(state), kind=account.kind)
    if code is None or not code.welcome or codes.live_status(code) != "active":
        return None
    return Welcome(origin=f"channel_code:{code.id}", content=code.welcome)


# --- the "on arrival through a channel code" tag rule -------------------------------------------------


def _ids(config: Mapping[str, Any], key: str) -> list[int]:
    value = config.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 100 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_ID for v in value):
        raise Invalid(f"{key} is a list of at most 100 ids", field=f"config.{key}")
    return list(dict.fromkeys(value))


def _validate_trigger(session: Session, config: Mapping[str, Any]) -> dict[str, Any]:
    extra = sorted(set(config) - {"code_ids", "source_ids"})
    if extra:
        raise Invalid(f"unknown field {extra[0]!r}", field=f"config.{extra[0]}", code="unknown_field")
    code_ids, source_ids = _ids(config, "code_ids"), _ids(config, "source_ids")
    if not code_ids and not source_ids:
        raise Invalid("name the codes or the sources the rule is about", field="config.code_ids")
    from siyu.acquisition.sources import get_source

    for i, code_id in enumerate(code_ids):
        try:
            codes.get_code(session, code_id)
        except NotFound:
            raise NotFound("channel code not found", field=f"config.code_ids.{i}") from None
    for i, source_id in enumerate(source_ids):
        try:
            get_source(session, source_id)
        except NotFound:
            raise NotFound("source not found", field=f"config.source_ids.{i}") from None
    return {"code_ids": code_ids, "source_ids": source_ids}


def _matches(config: Mapping[str, Any], event: Event) -> bool:
    props = event.properties if isinstance(event.properties, Mapping) else {}
    return props.get("code_id") in (config.get("code_ids") or []) or \
        props.get("source_id") in (config.get("source_ids") or [])


tag_rules.register_trigger("channel_code", validate_config=_validate_trigger,
                           listens_to=lambda _config: ARRIVED, matches=_matches)

