"""Lifecycle stages and RFM scores, computed from events by set-based SQL and refreshed by the worker.

Stages (thresholds in ContactSettings.lifecycle_rules, defaults in DEFAULT_RULES):
- new: nothing done yet;
- engaged: did something (any event that isn't passive, see below);
- customer: at least `customer_orders` (1) paid orders; repeat: at least `repeat_orders` (2);
- dormant: nothing done for `dormant_days` (60) days; churned: for `churned_days` (180) days.
Quiet time counts from the last activity, or from the day the contact arrived if they never did
anything, so a contact who never engaged doesn't stay "new" forever.

Passive events are things that happen *to* a contact, not things they do: `contact.*`, `tag.*`,
`segment.*`, `consent.*` and messages we sent (`message.sent`, `message.delivered`).

An order is the paid orders of one `order_id`; it counts while what was paid exceeds what was
refunded. Revenue is paid minus refunded, in the workspace's currency (amounts in another currency
count toward orders, not revenue). RFM scores are quintiles 1..5 (5 = most recent, most orders, most
revenue) among the workspace's contacts with orders, by cumulative distribution so ties score alike.

The worker refreshes a contact on each of its `order.paid` / `order.refunded` events, a keeper after
each `contact.merged` (its figures are recomputed from the events it now holds, never added up), and
the whole workspace once a day at 03:00 in its timezone. The daily job re-enqueues itself; the first
one is queued with the workspace's first contacts (any batch recording `contact.created`), so quiet
time moves contacts to dormant and churned even in a workspace that never sees an order. A settings
change or the demo queue it too. A stage change is a `contact.stage_changed {from, to}` event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    not_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact, ContactSettings
from siyu.contacts.service import DEFAULT_ONE_PERSON_KEYS
from siyu.core import clock, jobs
from siyu.core.audit import Actor, record
from siyu.core.db import UTCDateTime
from siyu.core.errors import Invalid, TenancyViolation
from siyu.core.events import StoredBatch, on_batch, on_event, record_events
from siyu.core.models import Event, Workspace
from siyu.core.tenancy import bound_workspace

STAGES = ("new", "engaged", "customer", "repeat", "dormant", "churned")
DEFAULT_RULES: dict[str, int] = {
    "customer_orders": 1,
    "repeat_orders": 2,
    "dormant_days": 60,
    "churned_days": 180,
}
PASSIVE_PREFIXES = ("contact.", "tag.", "segment.", "consent.")
PASSIVE_TYPES = ("message.sent", "message.delivered")
ORDER_TYPES = ("order.paid", "order.refunded")
REFRESH = "contacts.lifecycle.refresh"
REFRESH_LOCAL_HOUR = 3
CHUNK = 1000


# --- rules ------------------------------------------------------------------------------------------


def validate_rules(values: Mapping[str, Any]) -> dict[str, int]:
    """Complete and check lifecycle rules; Invalid names the field (`dormant_days`...)."""
    unknown = set(values) - set(DEFAULT_RULES)
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"unknown field {name!r}", field=name, code="unknown_field")
    rules = {**DEFAULT_RULES, **values}
    for name, value in rules.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
            raise Invalid(f"{name} is a whole number from 1 to 3650", field=name)
    if rules["repeat_orders"] <= rules["customer_orders"]:
        raise Invalid("repeat customers need more orders than customers", field="repeat_orders")
    if rules["churned_days"] <= rules["dormant_days"]:
        raise Invalid("churned comes after dormant: give it more days", field="churned_days")
    return rules


def stage_for(
    *, order_count: int, last_active_at: datetime | None, created_at: datetime, now: datetime,
    rules: Mapping[str, int] = DEFAULT_RULES,
) -> str:
    """The stage a contact is in, from their orders and their last activity."""
    quiet = now - (last_active_at or created_at)
    if quiet >= timedelta(days=rules["churned_days"]):
        return "churned"
    if quiet >= timedelta(days=rules["dormant_days"]):
        return "dormant"
    if order_count >= rules["repeat_orders"]:
        return "repeat"
    if order_count >= rules["customer_orders"]:
        return "customer"
    return "engaged" if last_active_at is not None else "new"


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("lifecycle is refreshed through a session bound to a workspace")
    return workspace_id


def _settings_row(session: Session) -> ContactSettings | None:
    return session.execute(select(ContactSettings)).scalar_one_or_none()


def get_rules(session: Session) -> dict[str, int]:
    """The workspace's lifecycle rules (defaults filled in)."""
    row = _settings_row(session)
    stored = {k: v for k, v in (row.lifecycle_rules if row else {}).items() if k in DEFAULT_RULES}
    return {**DEFAULT_RULES, **stored}


def update_rules(session: Session, values: Mapping[str, Any], *, actor: Actor) -> dict[str, int]:
    """Save lifecycle rules; stages follow at the next refresh, which is queued now."""
    workspace_id = _workspace(session)
    rules = validate_rules(values)
    before = get_rules(session)
    row = _settings_row(session)
    if row is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(ContactSettings)
            .values(workspace_id=workspace_id, one_person_keys=list(DEFAULT_ONE_PERSON_KEYS), lifecycle_rules=rules,
                    segment_refresh_minutes=15, updated_at=clock.now())
            .on_conflict_do_nothing(index_elements=["workspace_id"])
        )
        row = _settings_row(session)
    assert row is not None
    row.lifecycle_rules = rules
    session.flush()
    record(session, actor, workspace_id=workspace_id, action="contacts.lifecycle_rules", entity_type="contact_settings",
           entity_id=row.id, before=before, after=rules)
    request_refresh(session)
    return rules


# --- metrics ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    """What the events say about one contact."""

    order_count: int
    revenue: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_active_at: datetime | None


def _is_active(event_type: Any) -> ColumnElement[bool]:
    passive = [event_type.startswith(p, autoescape=True) for p in PASSIVE_PREFIXES]
    return and_(not_(event_type.in_(PASSIVE_TYPES)), *[not_(p) for p in passive])


def _metrics_query(workspace_currency: str, contact_ids: Sequence[int]) -> Any:
    """(contact_id, orders, revenue, first_order_at, last_order_at, last_active_at) for the given contacts."""
    amount = func.coalesce(Event.properties["amount"].as_integer(), 0)
    currency = func.coalesce(Event.properties["currency"].as_string(), workspace_currency)
    in_currency = case((currency == workspace_currency, amount), else_=0)
    paid = Event.type == "order.paid"
    refunded = Event.type == "order.refunded"
    order_key = func.coalesce(Event.properties["order_id"].as_string(), literal("event:") + cast(Event.id, String))
    paid_at = type_coerce(case((paid, Event.occurred_at)), UTCDateTime)
    per_order = (
        select(
            Event.contact_id.label("contact_id"),
            func.sum(case((paid, amount), else_=0)).label("paid_any"),
            func.sum(case((refunded, amount), else_=0)).label("refunded_any"),
            func.sum(case((paid, in_currency), (refunded, -in_currency), else_=0)).label("net"),
            func.count(case((paid, 1))).label("payments"),
            func.min(paid_at).label("first_paid"),
            func.max(paid_at).label("last_paid"),
        )
        .where(Event.type.in_(ORDER_TYPES), Event.contact_id.in_(contact_ids))
        .group_by(Event.contact_id, order_key)
        .subquery()
    )
    counted = and_(per_order.c.payments > 0, per_order.c.paid_any > per_order.c.refunded_any)
    orders = (
        select(
            per_order.c.contact_id,
            func.count(case((counted, 1))).label("orders"),
            func.sum(per_order.c.net).label("revenue"),
            func.min(type_coerce(case((counted, per_order.c.first_paid)), UTCDateTime)).label("first_order_at"),
            func.max(type_coerce(case((counted, per_order.c.last_paid)), UTCDateTime)).label("last_order_at"),
        )
        .group_by(per_order.c.contact_id)
        .subquery()
    )
    active = (
        select(Event.contact_id.label("contact_id"),
               func.max(Event.occurred_at).label("last_active_at"))
        .where(Event.contact_id.in_(contact_ids), _is_active(Event.type))
        .group_by(Event.contact_id)
        .subquery()
    )
    return (
        select(
            Contact.id,
            func.coalesce(orders.c.orders, 0),
            func.coalesce(orders.c.revenue, 0),
            type_coerce(orders.c.first_order_at, UTCDateTime),
            type_coerce(orders.c.last_order_at, UTCDateTime),
            type_coerce(active.c.last_active_at, UTCDateTime),
        )
        .outerjoin(orders, orders.c.contact_id == Contact.id)
        .outerjoin(active, active.c.contact_id == Contact.id)
        .where(Contact.id.in_(contact_ids))
    )


def contact_metrics(session: Session, contact_ids: Sequence[int]) -> dict[int, Metrics]:
    """What the events say about each of the given contacts (one query per chunk of ids)."""
    ws = session.get(Workspace, _workspace(session))
    assert ws is not None
    out: dict[int, Metrics] = {}
    for start in range(0, len(contact_ids), CHUNK):
        chunk = list(contact_ids[start : start + CHUNK])
        for cid, orders, revenue, first, last, active in session.execute(_metrics_query(ws.currency, chunk)):
            out[int(cid)] = Metrics(int(orders), max(int(revenue), 0), first, last, active)
    return out


# --- refreshing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did."""

    contacts: int
    updated: int
    stage_changes: int


_STATE = ("stage", "order_count", "revenue", "first_order_at", "last_order_at", "last_active_at")


def refresh_lifecycle(session: Session, contact_ids: Sequence[int] | None = None) -> Refreshed:
    """Recompute orders, revenue, activity, stage (and RFM) for some contacts, or all of the workspace.

    With `contact_ids=None` every contact's RFM score is recomputed too; for given contacts only
    theirs, against the workspace's current figures.
    """
    workspace_id = _workspace(session)
    rules = get_rules(session)
    now = clock.now()
    if contact_ids is None:
        ids = list(session.execute(select(Contact.id).order_by(Contact.id)).scalars())
    else:
        ids = sorted({int(i) for i in contact_ids})
    updated = changes = 0
    table = _contacts_table()
    write = (
        table.update()
        .where(table.c.id == bindparam("b_id"), table.c.workspace_id == workspace_id)
        .values({c: bindparam(f"b_{c}") for c in (*_STATE, "stage_changed_at")})
    )
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        metrics = contact_metrics(session, chunk)
        current = session.execute(
            select(Contact.id, Contact.created_at, Contact.stage_changed_at, *[getattr(Contact, c) for c in _STATE])
            .where(Contact.id.in_(chunk))
        ).all()
        rows: list[dict[str, Any]] = []
        moved: list[tuple[int, str, str]] = []
        for cid, created_at, changed_at, *state in current:
            m = metrics[int(cid)]
            stage = stage_for(order_count=m.order_count, last_active_at=m.last_active_at, created_at=created_at,
                              now=now, rules=rules)
            new = (stage, m.order_count, m.revenue, m.first_order_at, m.last_order_at, m.last_active_at)
            if tuple(state) == new:
                continue
            if stage != state[0]:
                moved.append((int(cid), str(state[0]), stage))
                changed_at = now
            rows.append({"b_id": cid, **{f"b_{c}": v for c, v in zip(_STATE, new, strict=True)},
                         "b_stage_changed_at": changed_at})
        if rows:
            session.connection().execute(write, rows)
            updated += len(rows)
        if moved:
            result = record_events(
                session,
                [{"type": "contact.stage_changed", "contact_id": cid, "properties": {"from": old, "to": stage}}
                 for cid, old, stage in moved],
                source="contacts",
            )
            if result.errors:
                raise Invalid(result.errors[0].message, field=result.errors[0].field)
            changes += len(moved)
    session.expire_all()
    if contact_ids is None:
        refresh_rfm(session)
    elif ids:
        _rfm_for(session, ids)
    return Refreshed(contacts=len(ids), updated=updated, stage_changes=changes)


def _contacts_table() -> Table:
    """The contacts table, for the executemany UPDATEs by id (they bypass the ORM's per-row work)."""
    table = Contact.__table__
    assert isinstance(table, Table)
    return table


def _score(fraction: float) -> int:
    return min(5, max(1, math.ceil(fraction * 5 - 1e-9)))


def _write_rfm(session: Session, scores: list[dict[str, Any]]) -> None:
    if not scores:
        return
    table = _contacts_table()
    stmt = (
        table.update()
        .where(table.c.id == bindparam("b_id"), table.c.workspace_id == _workspace(session))
        .values(rfm_recency=bindparam("b_r"), rfm_frequency=bindparam("b_f"), rfm_monetary=bindparam("b_m"))
    )
    session.connection().execute(stmt, scores)
    session.expire_all()


def refresh_rfm(session: Session) -> int:
    """Score every contact with orders 1..5 on recency, frequency and money; the number of scores changed."""
    buyers = Contact.order_count > 0
    rows = session.execute(
        select(
            Contact.id, Contact.rfm_recency, Contact.rfm_frequency, Contact.rfm_monetary,
            func.cume_dist().over(order_by=Contact.last_order_at),
            func.cume_dist().over(order_by=Contact.order_count),
            func.cume_dist().over(order_by=Contact.revenue),
        ).where(buyers)
    ).all()
    scores: list[dict[str, Any]] = []
    for cid, r, f, m, cr, cf, cm in rows:
        new = (_score(float(cr)), _score(float(cf)), _score(float(cm)))
        if (r, f, m) != new:
            scores.append({"b_id": cid, "b_r": new[0], "b_f": new[1], "b_m": new[2]})
    gone = session.execute(
        select(Contact.id).where(not_(buyers), Contact.rfm_recency.is_not(None))
    ).scalars().all()
    scores.extend({"b_id": cid, "b_r": None, "b_f": None, "b_m": None} for cid in gone)
    _write_rfm(session, scores)
    return len(scores)


def _rfm_for(session: Session, contact_ids: Sequence[int]) -> None:
    """Score some contacts against the workspace's current figures (the daily refresh re-scores all)."""
    mine = session.execute(
        select(Contact.id, Contact.order_count, Contact.revenue, Contact.last_order_at)
        .where(Contact.id.in_(contact_ids))
    ).all()
    scores: list[dict[str, Any]] = []
    for cid, orders, revenue, last in mine:
        if not orders:
            scores.append({"b_id": cid, "b_r": None, "b_f": None, "b_m": None})
            continue
        total, r, f, m = session.execute(
            select(
                func.count(),
                func.sum(case((Contact.last_order_at <= last, 1), else_=0)),
                func.sum(case((Contact.order_count <= orders, 1), else_=0)),
                func.sum(case((Contact.revenue <= revenue, 1), else_=0)),
            ).where(Contact.order_count > 0)
        ).one()
        total = max(int(total), 1)
        scores.append({"b_id": cid, "b_r": _score(int(r or 0) / total), "b_f": _score(int(f or 0) / total),
                       "b_m": _score(int(m or 0) / total)})
    _write_rfm(session, scores)


# --- the worker -------------------------------------------------------------------------------------


def _next_run(session: Session) -> datetime:
    ws = session.get(Workspace, _workspace(session))
    assert ws is not None
    tz = ZoneInfo(ws.timezone)
    local = clock.now().astimezone(tz)
    run = local.replace(hour=REFRESH_LOCAL_HOUR, minute=0, second=0, microsecond=0)
    if run <= local:
        run += timedelta(days=1)
    return run


def ensure_daily_refresh(session: Session) -> bool:
    """Queue the workspace's next daily refresh unless it is queued already; True if this call queued it."""
    run = _next_run(session)
    key = f"{_workspace(session)}:{run.date().isoformat()}"
    return jobs.enqueue(session, REFRESH, key, {"daily": True}, run_at=run)


def request_refresh(session: Session) -> bool:
    """Queue a whole-workspace refresh to run now (and make sure the daily one is queued)."""
    ensure_daily_refresh(session)
    key = f"{_workspace(session)}:now:{clock.now().isoformat()}"
    return jobs.enqueue(session, REFRESH, key, {"daily": False})


@jobs.handler(REFRESH)
def _refresh_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Refresh the job's contacts, or every contact of its workspace; the daily run queues tomorrow's."""
    if ctx.workspace_id is None:
        return {"skipped": "no workspace"}
    from siyu.core.tenancy import bind_workspace

    bind_workspace(session, ctx.workspace_id)
    done = refresh_lifecycle(session, ctx.payload.get("contact_ids"))
    if ctx.payload.get("daily"):
        ensure_daily_refresh(session)
    return {"contacts": done.contacts, "updated": done.updated, "stage_changes": done.stage_changes}


@on_batch("contacts.lifecycle")
def _on_orders(session: Session, workspace_id: int, batch: StoredBatch) -> None:
    """Orders arrived: one job refreshes the batch's buyers (not one job per order event)."""
    buyers = batch.contacts_of(ORDER_TYPES)
    if not buyers:
        return
    # The nightly refresh is not checked here: it started with the workspace's first contact.created.
    jobs.enqueue(session, REFRESH, f"{workspace_id}:orders:{uuid4().hex}", {"contact_ids": sorted(buyers)})


@on_event("contact.merged", "contacts.lifecycle_merge")
def _on_merge(session: Session, event: Event) -> None:
    # The event follows its keeper through later merges, so contact_id is the contact holding the events.
    if event.contact_id is not None:
        refresh_lifecycle(session, [event.contact_id])


@on_batch("contacts.lifecycle_daily")
def _on_contacts_created(session: Session, workspace_id: int, batch: StoredBatch) -> None:
    """A workspace's first contacts start its daily refresh (later batches find it queued: one insert, no-op)."""
    if "contact.created" in batch.counts:
        ensure_daily_refresh(session)


def stage_counts(session: Session) -> dict[str, int]:
    """How many contacts are in each stage."""
    rows = session.execute(select(Contact.stage, func.count()).group_by(Contact.stage)).all()
    counts = dict.fromkeys(STAGES, 0)
    counts.update({str(stage): int(n) for stage, n in rows})
    return counts


__all__ = [
    "DEFAULT_RULES",
    "STAGES",
    "Metrics",
    "Refreshed",
    "contact_metrics",
    "ensure_daily_refresh",
    "get_rules",
    "refresh_lifecycle",
    "refresh_rfm",
    "request_refresh",
    "stage_counts",
    "stage_for",
    "update_rules",
    "validate_rules",
]
