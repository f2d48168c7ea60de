"""Segments: named sets of contacts, dynamic (a rule the worker re-evaluates) or static (a snapshot or a list).

Membership lives in `segment_members`. A refresh is set-based: one DELETE ... RETURNING for the
contacts that left and one INSERT ... SELECT ... RETURNING for those that came, then a
`segment.entered` / `segment.exited` event per changed contact, recorded in batches.

The worker refreshes dynamic segments two ways. (a) When events arrive whose types a segment's rule
watches (its event types, tag / consent / contact changes), a batch listener enqueues one
`segments.refresh` job per affected segment keyed by the minute, due at the end of that minute: a
burst of events coalesces into one refresh. (b) A `segments.tick` job per workspace re-enqueues every
dynamic segment every `ContactSettings.segment_refresh_minutes` and schedules its own next run, so
time-relative rules ("nothing in 30 days") move on even when nothing happens.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Subquery, Table, delete, exists, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.contacts.identities import normalize_identity
from siyu.contacts.models import Contact, ContactSettings, Identity, Segment, SegmentMember
from siyu.contacts.segment_rules import is_bookkeeping, referenced_segments, watched_event_types
from siyu.contacts.segment_sql import compile_rule
from siyu.core import clock, events, jobs
from siyu.core.audit import Actor, record, snapshot
from siyu.core.db import UTCDateTime, is_postgres
from siyu.core.errors import Conflict, Invalid
from siyu.core.pagination import page
from siyu.core.tenancy import bind_workspace, bound_workspace, get_scoped

MEMBERS = cast(Table, SegmentMember.__table__)
KINDS = ("dynamic", "static")
REFRESH = "segments.refresh"
TICK = "segments.tick"
DEFAULT_REFRESH_MINUTES = 15
EVENT_BATCH = 1000
MAX_UPLOAD = 100_000
# Columns of an uploaded list that name contacts, and the identity type each one looks up.
UPLOAD_COLUMNS = {"phone": "phone", "email": "email", "unionid": "unionid", "openid": "openid",
                  "external_userid": "external_userid", "shop_customer_id": "shop_customer_id",
                  "contact_id": "contact_id"}


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh changed."""

    entered: int
    exited: int
    member_count: int


@dataclass
class MembershipChange:
    """What a manual change of a static segment did; `unknown` lists what named nobody in the workspace."""

    added: int = 0
    removed: int = 0
    unchanged: int = 0
    unknown: list[str] = field(default_factory=list)


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise Invalid("segments are used inside a workspace", field="workspace_id")
    return workspace_id


# --- reading ------------------------------------------------------------------------------------


def get_segment(session: Session, segment_id: Any) -> Segment:
    """One segment of the bound workspace (404 for any other)."""
    return get_scoped(session, Segment, segment_id, what="segment")


def list_segments(
    session: Session, *, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[Segment], str | None]:
    """A page of the workspace's segments, newest first."""
    _workspace(session)
    return page(session, select(Segment), Segment.id, cursor=cursor, limit=limit)


def _matching(session: Session, rule: Any, visible: ColumnElement[bool] | None) -> Select[Any]:
    criterion = compile_rule(session, rule)
    stmt = select(Contact.id).where(Contact.workspace_id == _workspace(session), criterion)
    return stmt.where(visible) if visible is not None else stmt


def count_matching(session: Session, rule: Any, *, visible: ColumnElement[bool] | None = None) -> int:
    """How many contacts match a rule now (one COUNT query); Invalid names the rule's mistake."""
    inner = _matching(session, rule, visible).subquery()
    return int(session.execute(select(func.count()).select_from(inner)).scalar_one())


def preview(
    session: Session, rule: Any, *, limit: int = 20, visible: ColumnElement[bool] | None = None
) -> tuple[int, Sequence[Contact]]:
    """The number of contacts matching a rule and the newest `limit` of them, for the builder."""
    if not 1 <= limit <= 200:
        raise Invalid("limit must be between 1 and 200", field="limit")
    total = count_matching(session, rule, visible=visible)
    ids = _matching(session, rule, visible).order_by(Contact.id.desc()).limit(limit)
    sample = session.execute(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id.desc())).scalars().all()
    return total, sample


def segment_contact_ids(session: Session, segment: Segment) -> Select[Any]:
    """A query of the segment's member contact ids (execute it, stream it, or join it), oldest id first."""
    return (
        select(SegmentMember.contact_id)
        .where(SegmentMember.workspace_id == segment.workspace_id, SegmentMember.segment_id == segment.id)
        .order_by(SegmentMember.contact_id)
    )


def list_members(
    session: Session, segment: Segment, *, cursor: str | None = None, limit: int = 50,
    visible: ColumnElement[bool] | None = None,
) -> tuple[Sequence[Contact], str | None]:
    """A page of the segment's contacts, newest contact first."""
    stmt = select(Contact).join(
        SegmentMember,
        (SegmentMember.contact_id == Contact.id) & (SegmentMember.workspace_id == Contact.workspace_id),
    ).where(SegmentMember.segment_id == segment.id, Contact.workspace_id == segment.workspace_id)
    if visible is not None:
        stmt = stmt.where(visible)
    return page(session, stmt, Contact.id, cursor=cursor, limit=limit)


def visible_member_count(session: Session, segment: Segment, visible: ColumnElement[bool] | None) -> int:
    """The members a caller may see: all of them, or a staff member's own."""
    if visible is None:
        return segment.member_count
    stmt = select(func.count()).select_from(Contact).where(
        Contact.id.in_(segment_contact_ids(session, segment).order_by(None)), visible
    )
    return int(session.execute(stmt).scalar_one())


# --- writing ------------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("a segment's name is 1 to 120 characters", field="name")
    return name


def _check_unique(session: Session, name: str, segment_id: int | None) -> None:
    stmt = select(Segment.id).where(Segment.workspace_id == _workspace(session), Segment.name == name)
    found = session.execute(stmt).scalar_one_or_none()
    if found is not None and found != segment_id:
        raise Conflict("another segment has this name", field="name")


def _audit(session: Session, actor: Actor, segment: Segment, action: str, before: dict[str, Any] | None) -> None:
    record(session, actor, workspace_id=segment.workspace_id, action=action, entity_type="segment",
           entity_id=segment.id, before=before, after=snapshot(segment))


def create_segment(
    session: Session, *, name: str, kind: str, rule: Any = None, description: str | None = None, actor: Actor
) -> Segment:
    """A new segment: dynamic (refreshed by the worker from now on) or static (a snapshot of `rule`, or empty)."""
    workspace_id = _workspace(session)
    name = _clean_name(name)
    if kind not in KINDS:
        raise Invalid("kind is dynamic or static", field="kind")
    if kind == "dynamic" and rule is None:
        raise Invalid("a dynamic segment needs a rule", field="rule")
    if rule is not None:
        compile_rule(session, rule)
    _check_unique(session, name, None)
    segment = Segment(workspace_id=workspace_id, name=name, kind=kind, rule=rule, description=description,
                      member_count=0)
    session.add(segment)
    session.flush()
    if kind == "static" and rule is not None:
        _apply(session, segment, rule)
    elif kind == "dynamic":
        enqueue_refresh(session, segment.id, why="created")
        schedule_tick(session)
    _audit(session, actor, segment, "segment.create", None)
    return segment


def update_segment(
    session: Session, segment: Segment, *, name: str | None = None, description: str | None = None,
    rule: Any = None, actor: Actor,
) -> Segment:
    """Rename, describe, or (dynamic only) change the rule; a new rule is applied by the worker at once."""
    before = snapshot(segment)
    if name is not None:
        name = _clean_name(name)
        _check_unique(session, name, segment.id)
        segment.name = name
    if description is not None:
        segment.description = description or None
    if rule is not None:
        if segment.kind != "dynamic":
            raise Conflict("a static segment keeps the list it was made with: add or remove members", field="rule")
        compile_rule(session, rule, segment_id=segment.id)
        segment.rule = rule
        enqueue_refresh(session, segment.id, why="updated")
        schedule_tick(session)
    session.flush()
    _audit(session, actor, segment, "segment.update", before)
    return segment


def delete_segment(session: Session, segment: Segment, *, actor: Actor) -> None:
    """Delete a segment and its membership; refused while another segment's rule refers to it."""
    others = session.execute(
        select(Segment.id, Segment.name, Segment.rule).where(Segment.id != segment.id)
    ).all()
    users = [n for _, n, r in others if segment.id in referenced_segments(r)]
    if users:
        raise Conflict(f"segment {users[0]!r} refers to this one: change its rule first", field="segment_id")
    before = snapshot(segment)
    session.execute(
        delete(SegmentMember)
        .where(SegmentMember.workspace_id == segment.workspace_id, SegmentMember.segment_id == segment.id)
        .execution_options(synchronize_session=False)
    )
    session.delete(segment)
    session.flush()
    record(session, actor, workspace_id=segment.workspace_id, action="segment.delete", entity_type="segment",
           entity_id=segment.id, before=before, after=None)


def _record_changes(session: Session, segment: Segment, entered: Sequence[int], exited: Sequence[int]) -> None:
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%f")
    items: list[dict[str, Any]] = []
    for event_type, ids in (("segment.entered", entered), ("segment.exited", exited)):
        items.extend(
            {"type": event_type, "contact_id": cid, "properties": {"segment_id": segment.id},
             "idempotency_key": f"{event_type}:{segment.id}:{cid}:{stamp}"}
            for cid in ids
        )
    for start in range(0, len(items), EVENT_BATCH):
        events.record_events(session, items[start:start + EVENT_BATCH], source="segments")


def _insert(session: Session) -> Any:
    return postgresql.insert if is_postgres(session) else sqlite.insert


def _add_ids(session: Session, segment: Segment, source: Subquery) -> list[int]:
    """Insert members from a query of contact ids (skipping present ones); the ids inserted."""
    table = MEMBERS
    now = literal(clock.now(), UTCDateTime())
    rows = select(literal(segment.workspace_id), literal(segment.id), source.c.id, now).where(
        ~exists().where(
            table.c.workspace_id == segment.workspace_id, table.c.segment_id == segment.id,
            table.c.contact_id == source.c.id,
        )
    )
    stmt = (
        _insert(session)(table)
        .from_select(["workspace_id", "segment_id", "contact_id", "entered_at"], rows)
        .on_conflict_do_nothing()
        .returning(table.c.contact_id)
    )
    return list(session.execute(stmt).scalars())


def _apply(session: Session, segment: Segment, rule: Any) -> RefreshResult:
    """Make the membership equal to the contacts matching `rule` now: leavers out, newcomers in, events."""
    workspace_id = segment.workspace_id
    criterion = compile_rule(session, rule, segment_id=segment.id)
    table = MEMBERS
    still = exists().where(Contact.workspace_id == workspace_id, Contact.id == table.c.contact_id, criterion)
    exited = list(session.execute(
        delete(table)
        .where(table.c.workspace_id == workspace_id, table.c.segment_id == segment.id, ~still)
        .returning(table.c.contact_id)
    ).scalars())
    matching = select(Contact.id).where(Contact.workspace_id == workspace_id, criterion).subquery()
    entered = _add_ids(session, segment, select(matching.c.id).subquery())
    _record_changes(session, segment, sorted(entered), sorted(exited))
    return _finish(session, segment, len(entered), len(exited))


def _finish(session: Session, segment: Segment, entered: int, exited: int) -> RefreshResult:
    count = session.execute(
        select(func.count()).select_from(SegmentMember).where(
            SegmentMember.workspace_id == segment.workspace_id, SegmentMember.segment_id == segment.id
        )
    ).scalar_one()
    segment.member_count = int(count)
    segment.refreshed_at = clock.now()
    session.flush()
    return RefreshResult(entered, exited, int(count))


def refresh_segment(session: Session, segment: Segment) -> RefreshResult:
    """Re-evaluate a dynamic segment's rule and update its membership (worker bookkeeping, not audited)."""
    if segment.kind != "dynamic":
        raise Conflict("only dynamic segments are refreshed; a static one changes by hand", field="segment_id")
    if is_postgres(session):
        # Two refreshes of one segment (a burst and the schedule) take turns instead of racing.
        session.execute(select(Segment.id).where(Segment.id == segment.id).with_for_update())
    return _apply(session, segment, segment.rule)


def refresh_now(session: Session, segment: Segment, *, actor: Actor) -> RefreshResult:
    """Refresh a dynamic segment at a person's request (audited, unlike the worker's refreshes)."""
    result = refresh_segment(session, segment)
    record(session, actor, workspace_id=segment.workspace_id, action="segment.refresh", entity_type="segment",
           entity_id=segment.id, after={"entered": result.entered, "exited": result.exited,
                                        "member_count": result.member_count})
    return result


def _require_static(segment: Segment) -> None:
    if segment.kind != "static":
        raise Conflict("members of a dynamic segment follow its rule; change the rule instead", field="segment_id")


def _resolve(
    session: Session, contact_ids: Iterable[Any], identities: Iterable[tuple[str, str]]
) -> tuple[set[int], list[str]]:
    """Contacts of the workspace named by id or identity, and what named nobody."""
    workspace_id = _workspace(session)
    found: set[int] = set()
    unknown: list[str] = []
    wanted_ids: dict[int, str] = {}
    for raw in contact_ids:
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 2**63:
            wanted_ids[raw] = str(raw)
        elif isinstance(raw, str) and raw.strip().isdigit() and 0 < int(raw) < 2**63:
            wanted_ids[int(raw)] = raw.strip()
        else:
            unknown.append(str(raw))
    if wanted_ids:
        present = set(session.execute(
            select(Contact.id).where(Contact.workspace_id == workspace_id, Contact.id.in_(list(wanted_ids)))
        ).scalars())
        found |= present
        unknown.extend(label for cid, label in wanted_ids.items() if cid not in present)
    by_type: dict[str, dict[str, str]] = {}
    for kind, value in identities:
        for candidate in identity_candidates(kind, value):
            by_type.setdefault(kind, {})[candidate] = value
    matched: set[tuple[str, str]] = set()
    for kind, candidates in by_type.items():
        values = list(candidates)
        for start in range(0, len(values), 1000):
            rows = session.execute(
                select(Identity.value, Identity.contact_id).where(
                    Identity.workspace_id == workspace_id, Identity.type == kind,
                    Identity.value.in_(values[start:start + 1000]),
                )
            ).all()
            for value, contact_id in rows:
                found.add(contact_id)
                matched.add((kind, candidates[value]))
    unknown.extend(f"{kind}:{value}" for kind, value in dict.fromkeys(identities) if (kind, value) not in matched)
    return found, unknown


def identity_candidates(kind: str, value: str) -> list[str]:
    """The stored forms an uploaded identity may have: as given, and normalised like contacts store it."""
    forms = [value.strip()]
    # Not a valid phone or email: only a contact stored with it verbatim can match.
    with contextlib.suppress(Invalid):
        forms.append(normalize_identity(kind, value))
    return list(dict.fromkeys(f for f in forms if f))


def add_members(
    session: Session, segment: Segment, *, contact_ids: Iterable[Any] = (),
    identities: Iterable[tuple[str, str]] = (), actor: Actor,
) -> MembershipChange:
    """Put contacts (by id or identity) into a static segment; what named nobody is reported, not added."""
    _require_static(segment)
    identities = list(identities)
    found, unknown = _resolve(session, contact_ids, identities)
    added: list[int] = []
    ids = sorted(found)
    for start in range(0, len(ids), 1000):
        chunk = select(Contact.id).where(
            Contact.workspace_id == segment.workspace_id, Contact.id.in_(ids[start:start + 1000])
        ).subquery()
        added.extend(_add_ids(session, segment, select(chunk.c.id).subquery()))
    _record_changes(session, segment, sorted(added), [])
    _finish(session, segment, len(added), 0)
    record(session, actor, workspace_id=segment.workspace_id, action="segment.members_add", entity_type="segment",
           entity_id=segment.id, after={"added": len(added), "contact_ids": sorted(added)[:1000]})
    return MembershipChange(added=len(added), unchanged=len(found) - len(added), unknown=unknown)


def remove_members(session: Session, segment: Segment, *, contact_ids: Iterable[Any], actor: Actor) -> MembershipChange:
    """Take contacts out of a static segment."""
    _require_static(segment)
    found, unknown = _resolve(session, contact_ids, ())
    table = MEMBERS
    removed: list[int] = []
    ids = sorted(found)
    for start in range(0, len(ids), 1000):
        removed.extend(session.execute(
            delete(table).where(
                table.c.workspace_id == segment.workspace_id, table.c.segment_id == segment.id,
                table.c.contact_id.in_(ids[start:start + 1000]),
            ).returning(table.c.contact_id)
        ).scalars())
    _record_changes(session, segment, [], sorted(removed))
    _finish(session, segment, 0, len(removed))
    record(session, actor, workspace_id=segment.workspace_id, action="segment.members_remove",
           entity_type="segment", entity_id=segment.id,
           before={"removed": len(removed), "contact_ids": sorted(removed)[:1000]})
    return MembershipChange(removed=len(removed), unchanged=len(found) - len(removed), unknown=unknown)


def parse_upload(content: bytes) -> tuple[list[str], list[tuple[str, str]]]:
    """Contact ids and identities from an uploaded CSV whose header names the columns (phone, email, ...)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("the file is not UTF-8 text", field="file") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise Invalid("the file is empty: its first line names the columns, such as phone", field="file")
    columns = [(i, UPLOAD_COLUMNS.get(name.strip().lower())) for i, name in enumerate(header)]
    if not any(kind for _, kind in columns):
        raise Invalid(f"no known column: name one of {', '.join(UPLOAD_COLUMNS)}", field="file")
    ids: list[str] = []
    identities: list[tuple[str, str]] = []
    for row in reader:
        for i, kind in columns:
            value = row[i].strip() if kind and i < len(row) else ""
            if not value:
                continue
            if kind == "contact_id":
                ids.append(value)
            else:
                identities.append((kind, value))  # type: ignore[arg-type]
        if len(ids) + len(identities) > MAX_UPLOAD:
            raise Invalid(f"a list holds at most {MAX_UPLOAD} entries", field="file")
    return ids, identities


# --- the worker -----------------------------------------------------------------------------------


def _minute(now: datetime) -> int:
    return int(now.timestamp() // 60)


def enqueue_refresh(session: Session, segment_id: int, *, why: str | None = None) -> bool:
    """Ask the worker to refresh a segment.

    Without `why` (events arrived) the job is due at the end of the current minute and keyed by it, so a
    burst makes one refresh that sees the whole burst. With `why` (created, schedule...) it is due now.
    """
    bucket = _minute(clock.now())
    if why is None:
        key, run_at = f"{segment_id}:{bucket}", datetime.fromtimestamp((bucket + 1) * 60, UTC)
    else:
        key, run_at = f"{segment_id}:{bucket}:{why}", clock.now()
    return jobs.enqueue(session, REFRESH, key, {"segment_id": segment_id}, workspace_id=_workspace(session),
                        run_at=run_at)


def refresh_minutes(session: Session) -> int:
    """How often the workspace's dynamic segments are refreshed on schedule."""
    stmt = select(ContactSettings.segment_refresh_minutes).where(ContactSettings.workspace_id == _workspace(session))
    minutes = session.execute(stmt).scalar_one_or_none()
    return max(1, int(minutes)) if minutes else DEFAULT_REFRESH_MINUTES


def schedule_tick(session: Session) -> bool:
    """Make sure the workspace's scheduled refresh runs at the start of the next period (one job a period)."""
    minutes = refresh_minutes(session)
    period = minutes * 60
    slot = int(clock.now().timestamp() // period) + 1
    return jobs.enqueue(session, TICK, f"{_workspace(session)}:{minutes}:{slot}", {"minutes": minutes},
                        workspace_id=_workspace(session), run_at=datetime.fromtimestamp(slot * period, UTC))


def _dynamic(session: Session) -> list[tuple[int, Any]]:
    stmt = select(Segment.id, Segment.rule).where(
        Segment.workspace_id == _workspace(session), Segment.kind == "dynamic"
    )
    return [(row[0], row[1]) for row in session.execute(stmt.order_by(Segment.id))]


@jobs.handler(REFRESH)
def refresh_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Refresh one dynamic segment (a database-only job)."""
    bind_workspace(session, ctx.workspace_id)
    segment = session.execute(select(Segment).where(Segment.id == ctx.payload["segment_id"])).scalar_one_or_none()
    if segment is None or segment.kind != "dynamic":
        return {"skipped": "the segment is gone or no longer dynamic"}
    try:
        with session.begin_nested():
            result = refresh_segment(session, segment)
    except Invalid as exc:
        # A tag or attribute the rule names was deleted: retrying cannot help; the job says why.
        return {"invalid": exc.message, "field": exc.field}
    return {"entered": result.entered, "exited": result.exited, "members": result.member_count}


@jobs.handler(TICK)
def tick_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """The scheduled refresh: every dynamic segment of the workspace, then the next tick."""
    bind_workspace(session, ctx.workspace_id)
    segments = _dynamic(session)
    if not segments:
        return {"stopped": "no dynamic segments; creating one starts the schedule again"}
    for segment_id, _ in segments:
        enqueue_refresh(session, segment_id, why="schedule")
    schedule_tick(session)
    return {"segments": len(segments)}


@events.on_batch("segments.watch")
def _on_events(session: Session, workspace_id: int, batch: events.StoredBatch) -> None:
    """Events arrived: schedule a refresh of each dynamic segment whose rule watches one of their types."""
    types = set(batch.counts)
    activity = any(not is_bookkeeping(t) for t in types)
    for segment_id, rule in _dynamic(session):
        watched = watched_event_types(rule)
        if types & watched or (activity and "*" in watched):
            enqueue_refresh(session, segment_id)
