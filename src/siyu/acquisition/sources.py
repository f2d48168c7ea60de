"""Sources: the catalogue of placements contacts come from, each with a type and a cost model.

A cost model's money is in the source's currency's minor units. A source with channel codes is
archived, never deleted, so the arrivals and spend that name it keep their meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.acquisition.models import COST_KINDS, SOURCE_TYPES, ChannelCode, Source, Spend
from siyu.core import audit, clock
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid
from siyu.core.money import check_currency
from siyu.core.tenancy import bound_workspace, get_scoped

PERIODS = ("day", "week", "month")
# The keys each cost kind needs, and those it may carry.
NEEDS: dict[str, tuple[str, ...]] = {"per_unit": ("unit_cost",), "per_period": ("amount", "period"),
                                     "per_acquired": ("unit_cost",), "fixed": ("amount", "starts_on")}
ALLOWED: dict[str, frozenset[str]] = {
    "per_unit": frozenset({"kind", "unit_cost", "units_per_day", "starts_on", "ends_on", "currency"}),
    "per_period": frozenset({"kind", "amount", "period", "starts_on", "ends_on", "currency"}),
    "per_acquired": frozenset({"kind", "unit_cost", "starts_on", "ends_on", "currency"}),
    "fixed": frozenset({"kind", "amount", "starts_on", "currency"}),
}
MAX_MINOR = 10**13


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise RuntimeError("sources are managed through a session bound to a workspace")
    return workspace_id


def _name(value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > 120:
        raise Invalid("a name of 1 to 120 characters", field="name")
    return name


def _type(value: Any) -> str:
    if value not in SOURCE_TYPES:
        raise Invalid(f"type is one of {', '.join(SOURCE_TYPES)}", field="type")
    return str(value)


def _minor(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
        raise Invalid("an amount in minor units (fen, cents): a whole number, 0 or more", field=field)
    return value


def _day(value: Any, field: str) -> str:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise Invalid("a date as YYYY-MM-DD", field=field)


def clean_cost_model(value: Any, currency: str) -> dict[str, Any]:
    """A cost model checked against its kind, its money in `currency` (empty: no cost recorded)."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid("the cost model is an object with a kind", field="cost_model")
    kind = value.get("kind")
    if kind not in COST_KINDS:
        raise Invalid(f"kind is one of {', '.join(COST_KINDS)}", field="cost_model.kind")
    extra = sorted(set(value) - ALLOWED[kind])
    if extra:
        raise Invalid(f"a {kind} cost model has no {extra[0]!r}", field=f"cost_model.{extra[0]}")
    for key in NEEDS[kind]:
        if value.get(key) is None:
            raise Invalid(f"a {kind} cost model needs {key}", field=f"cost_model.{key}")
    if "currency" in value and value["currency"] != currency:
        raise Invalid(f"the cost model's money is in the source's currency, {currency}",
                      field="cost_model.currency", code="wrong_currency")
    out: dict[str, Any] = {"kind": kind}
    for key in ("unit_cost", "amount"):
        if value.get(key) is not None:
            out[key] = _minor(value[key], f"cost_model.{key}")
    if value.get("units_per_day") is not None:
        units = value["units_per_day"]
        if isinstance(units, bool) or not isinstance(units, int) or not 0 <= units <= 10**9:
            raise Invalid("units a day: a whole number, 0 or more", field="cost_model.units_per_day")
        out["units_per_day"] = units
    if kind == "per_period":
        if value["period"] not in PERIODS:
            raise Invalid("period is day, week or month", field="cost_model.period")
        out["period"] = value["period"]
    for key in ("starts_on", "ends_on"):
        if value.get(key) is not None:
            out[key] = _day(value[key], f"cost_model.{key}")
    if "starts_on" in out and "ends_on" in out and out["ends_on"] < out["starts_on"]:
        raise Invalid("the cost ends on or after the day it starts", field="cost_model.ends_on")
    return out


def list_sources(session: Session, *, archived: bool | None = False) -> list[Source]:
    """The workspace's sources by name (archived ones only when asked)."""
    stmt = select(Source).order_by(Source.name, Source.id)
    if archived is not None:
        stmt = stmt.where(Source.archived.is_(archived))
    return list(session.execute(stmt).scalars())


def get_source(session: Session, source_id: Any) -> Source:
    """One source of the bound workspace (404 for any other)."""
    return get_scoped(session, Source, source_id, what="source")


def _check_unique(session: Session, name: str, source_id: int | None) -> None:
    other = session.execute(select(Source.id).where(Source.name == name)).scalar_one_or_none()
    if other is not None and other != source_id:
        raise Conflict("another source has this name", field="name")


def create_source(session: Session, *, name: Any, type: Any, currency: Any = None, cost_model: Any = None,
                  notes: Any = "", actor: Actor) -> Source:
    """Add a placement to the catalogue."""
    workspace_id = _workspace(session)
    clean_name, kind = _name(name), _type(type)
    if currency is None:
        from siyu.core.workspaces import get_workspace

        currency = get_workspace(session, workspace_id).currency
    currency = check_currency(str(currency))
    model = clean_cost_model(cost_model, currency)
    if not isinstance(notes, str) or len(notes) > 2000:
        raise Invalid("notes are at most 2,000 characters", field="notes")
    _check_unique(session, clean_name, None)
    source = Source(workspace_id=workspace_id, name=clean_name, type=kind, currency=currency, cost_model=model,
                    notes=notes, created_by=actor.label[:200])
    session.add(source)
    session.flush()
    audit.record(session, actor, workspace_id=workspace_id, action="acquisition.source.create",
                 entity_type="acquisition_source", entity_id=source.id, before=None, after=audit.snapshot(source))
    _fill_daily(session, source)
    return source


def _fill_daily(session: Session, source: Source) -> None:
    """A source with a cost model has its spend filled every night (`spend.ensure_daily_spend`)."""
    if source.cost_model:
        from siyu.acquisition import spend  # spend reads sources through this module

        spend.ensure_daily_spend(session)


def _has_spend(session: Session, source: Source) -> bool:
    return session.execute(select(Spend.id).where(Spend.source_id == source.id).limit(1)).first() is not None


def update_source(session: Session, source: Source, *, changes: Mapping[str, Any], actor: Actor) -> Source:
    """Change a source's name, type, currency (while it has no spend), cost model, notes or archive flag."""
    before = audit.snapshot(source)
    unknown = sorted(set(changes) - {"name", "type", "currency", "cost_model", "notes", "archived"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0], code="unknown_field")
    name = _name(changes["name"]) if "name" in changes else source.name
    kind = _type(changes["type"]) if "type" in changes else source.type
    currency = source.currency
    if "currency" in changes and changes["currency"] != source.currency:
        currency = check_currency(str(changes["currency"]))
        if _has_spend(session, source):
            raise Conflict("the source has spend recorded in its currency; its currency can't change",
                           field="currency")
    model = clean_cost_model(changes.get("cost_model", source.cost_model), currency)
    notes = changes.get("notes", source.notes)
    if not isinstance(notes, str) or len(notes) > 2000:
        raise Invalid("notes are at most 2,000 characters", field="notes")
    archived = changes.get("archived", source.archived)
    if not isinstance(archived, bool):
        raise Invalid("archived is true or false", field="archived")
    _check_unique(session, name, source.id)
    source.name, source.type, source.currency, source.cost_model = name, kind, currency, model
    source.notes, source.archived, source.updated_at = notes, archived, clock.now()
    session.flush()
    audit.record(session, actor, workspace_id=source.workspace_id, action="acquisition.source.update",
                 entity_type="acquisition_source", entity_id=source.id, before=before, after=audit.snapshot(source))
    _fill_daily(session, source)
    return source


def code_count(session: Session, source: Source) -> int:
    """How many channel codes a source has."""
    return int(session.execute(select(func.count()).select_from(ChannelCode)
                               .where(ChannelCode.source_id == source.id)).scalar_one())


def delete_source(session: Session, source: Source, *, actor: Actor) -> bool:
    """Delete a source without codes or spend; one with either is archived instead. True when deleted."""
    before = audit.snapshot(source)
    if code_count(session, source) or _has_spend(session, source):
        source.archived, source.updated_at = True, clock.now()
        session.flush()
        audit.record(session, actor, workspace_id=source.workspace_id, action="acquisition.source.archive",
                     entity_type="acquisition_source", entity_id=source.id, before=before,
                     after=audit.snapshot(source))
        return False
    audit.record(session, actor, workspace_id=source.workspace_id, action="acquisition.source.delete",
                 entity_type="acquisition_source", entity_id=source.id, before=before, after=None)
    session.delete(source)
    session.flush()
    return True
