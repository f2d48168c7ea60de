"""Spend per source and day: entered by hand, uploaded as a CSV file, or computed from the source's
cost model.

One figure per source and day (`Spend`), in the source's currency and minor units. An entered figure
(origin "manual" or "csv") replaces the day's figure, whatever its origin; the cost model (origin
"model") fills only days nobody entered, and recomputing overwrites only its own figures.

Cost models (`Source.cost_model`, see `siyu.acquisition.models`), each bounded by its optional
`starts_on` / `ends_on`:
- per_unit: `unit_cost` × units that day — the units entered with the day's spend, else
  `units_per_day` (1,000 parcel cards a day at 0.05 → 50.00 a day);
- per_period: `amount` per day, week (Monday to Sunday) or month, spread over the period's days so
  the days of a whole period add up to `amount` exactly;
- per_acquired: `unit_cost` × the contacts the source brought that day (arrivals marked as new contacts,
  on the workspace's local day);
- fixed: `amount` once, on `starts_on`.

The daily job (`acquisition.spend_daily`, one per workspace, at 00:30 in its timezone) fills yesterday
for every source with a cost model and queues the next run; `ensure_daily_spend` starts it.

CSV files: UTF-8 (a BOM, as Excel writes, is fine; GB18030 is accepted too), a header row, then one row
per source and day. Columns: `source` (the source's name, or its id), `day` (YYYY-MM-DD), `amount` (a
decimal in major units: `50.00` is fifty yuan; at most the currency's decimals), and optionally
`currency` (if given, it must be the source's), `units` (a whole number, e.g. cards printed; with an
empty amount on a per-unit source the amount is unit cost × units) and `note`. Every row is checked
before anything is written; one bad row refuses the whole file with an error per bad row
(`{row, field, code, message}`, rows numbered as a spreadsheet shows them: the header is row 1).
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.acquisition.models import Arrival, Source, Spend
from siyu.acquisition.sources import NEEDS, get_source
from siyu.core import clock, jobs
from siyu.core.audit import Actor, record, snapshot
from siyu.core.errors import Invalid, TenancyViolation
from siyu.core.money import check_currency, minor_units, parse_decimal_to_minor, to_decimal
from siyu.core.tenancy import bind_workspace, bound_workspace
from siyu.core.workspaces import get_workspace

DAILY = "acquisition.spend_daily"
DAILY_LOCAL_TIME = (0, 30)
# A spend figure per source and day above this is a typo (a billion yuan a day), not a budget.
MAX_AMOUNT = 10**14
MAX_UNITS = 10**12
MAX_RANGE_DAYS = 3 * 366
MAX_CSV_BYTES = 1024 * 1024
MAX_CSV_ROWS = 20_000
MAX_NOTE = 500
CSV_COLUMNS = ("source", "day", "amount", "currency", "units", "note")
REQUIRED_COLUMNS = ("source", "day", "amount")
ENTERED = ("manual", "csv")


# --- helpers ----------------------------------------------------------------------------------------


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("spend is read and written through a session bound to a workspace")
    return workspace_id


def workspace_tz(session: Session) -> ZoneInfo:
    """The bound workspace's timezone."""
    return ZoneInfo(get_workspace(session, _workspace(session)).timezone)


def local_today(session: Session) -> date:
    """Today in the workspace's timezone."""
    return clock.now().astimezone(workspace_tz(session)).date()


def _get_source(session: Session, source_id: Any) -> Source:
    return get_source(session, source_id)


def parse_day(value: Any, *, field: str = "day") -> date:
    """A day given as a date or as YYYY-MM-DD text."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            if len(value.strip()) == 10:
                return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Invalid(f"{value!r} is not a day such as 2026-05-01", field=field)


def check_range(start: date, end: date) -> None:
    """Refuse an empty or too long range of days."""
    if end < start:
        raise Invalid("the range ends before it starts", field="end")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise Invalid(f"a range covers at most {MAX_RANGE_DAYS} days", field="end")


def days_of(start: date, end: date) -> list[date]:
    """Every day from start to end, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# --- entered spend ----------------------------------------------------------------------------------


def _check_amount(amount: Any) -> int:
    if type(amount) is not int:
        raise Invalid("the amount is whole minor units (fen, cents)", field="amount")
    if amount < 0:
        raise Invalid("spend can't be negative", field="amount", code="negative")
    if amount > MAX_AMOUNT:
        raise Invalid("this amount is too large for one day", field="amount")
    return amount


def _check_units(units: Any) -> int | None:
    if units is None:
        return None
    if type(units) is not int or not 0 <= units <= MAX_UNITS:
        raise Invalid("units are a whole number, 0 or more", field="units")
    return units


def _amount_from_units(source: Source, units: int | None) -> int:
    model = source.cost_model or {}
    if units is None or model.get("kind") != "per_unit" or type(model.get("unit_cost")) is not int:
        raise Invalid("enter the amount (or units, for a source paid per unit)", field="amount")
    return int(model["unit_cost"]) * units


def _check_currency(source: Source, currency: str | None) -> str:
    if currency is None or currency == "":
        return source.currency
    check_currency(currency)
    if currency != source.currency:
        raise Invalid(f"{source.name} is paid in {source.currency}, not {currency}", field="currency",
                      code="wrong_currency")
    return currency


def _check_note(note: str) -> str:
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise Invalid(f"a note has at most {MAX_NOTE} characters", field="note")
    return note


def put_spend(
    session: Session, *, source_id: Any, day: Any, amount: int | None, currency: str | None = None,
    units: int | None = None, note: str = "", actor: Actor, origin: str = "manual",
) -> Spend:
    """Set what a source cost on a day (replacing the day's figure); audited with before and after."""
    source = _get_source(session, source_id)
    the_day = parse_day(day)
    checked_units = _check_units(units)
    value = _check_amount(_amount_from_units(source, checked_units) if amount is None else amount)
    cur = _check_currency(source, currency)
    row = _write(session, source, the_day, value, cur, checked_units, _check_note(note), origin, actor)
    ensure_daily_spend(session)
    return row


def _write(
    session: Session, source: Source, day: date, amount: int, currency: str, units: int | None, note: str,
    origin: str, actor: Actor | None,
) -> Spend:
    row = session.execute(
        select(Spend).where(Spend.source_id == source.id, Spend.day == day)
    ).scalar_one_or_none()
    before = snapshot(row) if row is not None else None
    now = clock.now()
    if row is None:
        row = Spend(workspace_id=_workspace(session), source_id=source.id, day=day, created_at=now)
        session.add(row)
    row.amount, row.currency, row.units, row.note, row.origin, row.updated_at = (
        amount, currency, units, note, origin, now)
    session.flush()
    if actor is not None:
        record(session, actor, workspace_id=_workspace(session), action="acquisition.spend_set",
               entity_type="acquisition_spend", entity_id=row.id, before=before, after=snapshot(row))
    return row


def delete_spend(session: Session, *, source_id: Any, day: Any, actor: Actor) -> None:
    """Remove a source's figure for a day (the cost model may fill it again)."""
    source = _get_source(session, source_id)
    the_day = parse_day(day)
    row = session.execute(
        select(Spend).where(Spend.source_id == source.id, Spend.day == the_day)
    ).scalar_one_or_none()
    if row is None:
        raise Invalid(f"{source.name} has no spend on {the_day.isoformat()}", field="day", code="not_found")
    before = snapshot(row)
    session.delete(row)
    session.flush()
    record(session, actor, workspace_id=_workspace(session), action="acquisition.spend_deleted",
           entity_type="acquisition_spend", entity_id=before["id"], before=before, after=None)


def list_spend(
    session: Session, *, start: date, end: date, source_ids: Sequence[int] | None = None,
) -> list[Spend]:
    """The figures of the range (both days included), by source then day."""
    check_range(start, end)
    stmt = select(Spend).where(Spend.workspace_id == _workspace(session), Spend.day >= start, Spend.day <= end)
    if source_ids is not None:
        stmt = stmt.where(Spend.source_id.in_(list(source_ids)))
    return list(session.execute(stmt.order_by(Spend.source_id, Spend.day)).scalars())


def list_sources(session: Session, *, include_archived: bool = False) -> list[Source]:
    """The workspace's sources by name (what the cost table's rows are)."""
    stmt = select(Source).where(Source.workspace_id == _workspace(session))
    if not include_archived:
        stmt = stmt.where(Source.archived.is_(False))
    return list(session.execute(stmt.order_by(Source.name, Source.id)).scalars())


# --- the cost model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostModel:
    """A source's cost model, checked."""

    kind: str
    unit_cost: int = 0
    units_per_day: int | None = None
    amount: int = 0
    period: str = "day"
    starts_on: date | None = None
    ends_on: date | None = None

    def covers(self, day: date) -> bool:
        """True when the model applies on `day`."""
        return (self.starts_on is None or day >= self.starts_on) and (self.ends_on is None or day <= self.ends_on)


def parse_cost_model(raw: dict[str, Any] | None) -> CostModel | None:
    """A `Source.cost_model` value (checked when it was written, `sources.clean_cost_model`) as a
    CostModel; None when the source has none."""
    if not raw or not raw.get("kind"):
        return None
    missing = [key for key in NEEDS.get(str(raw["kind"]), ("kind",)) if raw.get(key) is None]
    if missing:  # written around the service: skipped with the reason rather than counted as free
        raise Invalid(f"the cost model needs {missing[0]}", field=f"cost_model.{missing[0]}")
    day = {k: parse_day(raw[k], field=f"cost_model.{k}") if raw.get(k) else None for k in ("starts_on", "ends_on")}
    return CostModel(str(raw["kind"]), unit_cost=int(raw.get("unit_cost") or 0),
                     units_per_day=raw.get("units_per_day"), amount=int(raw.get("amount") or 0),
                     period=str(raw.get("period") or "day"), starts_on=day["starts_on"], ends_on=day["ends_on"])


def _period_days(day: date, period: str) -> tuple[int, int]:
    """(position of `day` in its period, days in the period)."""
    if period == "week":
        return day.weekday(), 7
    if period == "month":
        return day.day - 1, calendar.monthrange(day.year, day.month)[1]
    return 0, 1


def spread(amount: int, index: int, days: int) -> int:
    """Day `index`'s share of `amount` spread over `days` days; the shares add up to `amount` exactly."""
    return amount * (index + 1) // days - amount * index // days


def model_amount(model: CostModel, day: date, *, units: int | None = None, acquired: int = 0) -> tuple[int, int | None]:
    """(amount, units) the model charges on `day`; `units` entered for the day override units_per_day."""
    if not model.covers(day):
        return 0, None
    if model.kind == "per_unit":
        n = units if units is not None else (model.units_per_day or 0)
        return model.unit_cost * n, n
    if model.kind == "per_acquired":
        return model.unit_cost * acquired, acquired
    if model.kind == "per_period":
        index, days = _period_days(day, model.period)
        return spread(model.amount, index, days), None
    return (model.amount if day == model.starts_on else 0), None


def _new_contacts_by_day(
    session: Session, source_ids: Sequence[int], start: date, end: date,
) -> dict[tuple[int, date], int]:
    if not source_ids:
        return {}
    rows = session.execute(
        select(Arrival.source_id, Arrival.local_day, func.count(func.distinct(Arrival.contact_id)))
        .where(Arrival.workspace_id == _workspace(session), Arrival.source_id.in_(list(source_ids)),
               Arrival.new_contact.is_(True), Arrival.local_day >= start, Arrival.local_day <= end)
        .group_by(Arrival.source_id, Arrival.local_day)
    ).all()
    return {(int(s), d): int(n) for s, d, n in rows}


@dataclass
class Computed:
    """What a computation did: days written from the model, days left as entered, sources skipped (why)."""

    written: int = 0
    kept: int = 0
    removed: int = 0
    skipped: dict[int, str] = field(default_factory=dict)


def compute_spend(
    session: Session, *, start: Any, end: Any, source_ids: Sequence[int] | None = None, actor: Actor | None = None,
) -> Computed:
    """Fill the range from each source's cost model, leaving entered days alone (origin "model")."""
    first, last = parse_day(start, field="start"), parse_day(end, field="end")
    check_range(first, last)
    if source_ids is not None:
        sources = [_get_source(session, sid) for sid in source_ids]
    else:
        sources = [s for s in list_sources(session) if (s.cost_model or {}).get("kind")]
    models: dict[int, CostModel] = {}
    result = Computed()
    for source in sources:
        try:
            model = parse_cost_model(source.cost_model)
        except Invalid as exc:
            result.skipped[source.id] = exc.message
            continue
        if model is None:
            result.skipped[source.id] = "no cost model"
            continue
        models[source.id] = model
    by_id = {s.id: s for s in sources}
    wanted = list(models)
    existing = {(r.source_id, r.day): r for r in list_spend(session, start=first, end=last, source_ids=wanted)}
    acquired = _new_contacts_by_day(
        session, [sid for sid, m in models.items() if m.kind == "per_acquired"], first, last)
    now = clock.now()
    for sid, model in models.items():
        for day in days_of(first, last):
            row = existing.get((sid, day))
            if row is not None and row.origin in ENTERED:
                result.kept += 1
                continue
            amount, units = model_amount(model, day, acquired=acquired.get((sid, day), 0))
            if not model.covers(day) or (amount == 0 and model.kind == "fixed"):
                # Outside the model's days: a figure it wrote earlier (before the model changed) goes.
                if row is not None:
                    session.delete(row)
                    result.removed += 1
                continue
            if row is None:
                row = Spend(workspace_id=_workspace(session), source_id=sid, day=day, created_at=now, note="")
                session.add(row)
            row.amount, row.units, row.currency, row.origin, row.updated_at = (
                amount, units, by_id[sid].currency, "model", now)
            result.written += 1
    session.flush()
    if actor is not None:
        record(session, actor, workspace_id=_workspace(session), action="acquisition.spend_computed",
               entity_type="acquisition_spend", entity_id=None, before=None,
               after={"start": first.isoformat(), "end": last.isoformat(), "sources": sorted(models),
                      "written": result.written, "kept": result.kept, "removed": result.removed})
    ensure_daily_spend(session)
    return result


# --- CSV --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """Why one row of a spend file was refused (`row` as a spreadsheet numbers it: the header is 1)."""

    row: int
    field: str
    code: str
    message: str


class SpendFileRefused(Invalid):
    """A spend file with bad rows: nothing of it was stored."""

    code = "invalid_rows"

    def __init__(self, message: str, rows: Sequence[RowError], *, field: str | None = "file") -> None:
        super().__init__(message, field=field)
        self.rows = list(rows)


@dataclass(frozen=True)
class SpendRow:
    """One checked row of a spend file."""

    row: int
    source_id: int
    day: date
    amount: int
    currency: str
    units: int | None
    note: str


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_error("the file is not UTF-8 text")


def _file_error(message: str, code: str = "invalid_file") -> SpendFileRefused:
    refused = SpendFileRefused(message, [], field="file")
    refused.code = code
    return refused


def parse_spend_csv(session: Session, content: bytes) -> list[SpendRow]:
    """Every row of a spend file, checked; SpendFileRefused with an error per bad row if any is bad."""
    if len(content) > MAX_CSV_BYTES:
        raise _file_error(f"a spend file has at most {MAX_CSV_BYTES // (1024 * 1024)} MB", "too_large")
    text = _decode(content)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise _file_error("the file is empty: it needs a header row (source, day, amount)", "empty") from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise _file_error(f"the header lacks the column(s): {', '.join(missing)}", "missing_columns")
    unknown = [h for h in names if h and h not in CSV_COLUMNS]
    if unknown:
        raise _file_error(f"unknown column(s): {', '.join(unknown)} (use {', '.join(CSV_COLUMNS)})",
                          "unknown_columns")
    index = {name: i for i, name in enumerate(names) if name}
    sources = list_sources(session, include_archived=True)
    by_name = {s.name: s for s in sources}
    by_id = {str(s.id): s for s in sources}
    rows: list[SpendRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[int, date], int] = {}
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(rows) + len(errors) >= MAX_CSV_ROWS:
                raise _file_error(f"a spend file has at most {MAX_CSV_ROWS} rows", "too_many_rows")
            row, row_errors = _check_row(number, cells, index, by_name, by_id, seen)
            errors.extend(row_errors)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise _file_error(f"the file is not valid CSV: {exc}") from None
    if errors:
        raise SpendFileRefused(
            f"{len({e.row for e in errors})} row(s) of the file are wrong: nothing was imported", errors)
    if not rows:
        raise _file_error("the file has a header but no rows", "empty")
    return rows


def _check_row(
    number: int, cells: list[str], index: dict[str, int], by_name: dict[str, Source], by_id: dict[str, Source],
    seen: dict[tuple[int, date], int],
) -> tuple[SpendRow | None, list[RowError]]:
    def cell(name: str) -> str:
        i = index.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    errors: list[RowError] = []

    def fail(name: str, code: str, message: str) -> None:
        errors.append(RowError(number, name, code, message))

    name = cell("source")
    source = by_name.get(name) or by_id.get(name)
    if source is None:
        fail("source", "unknown_source", f"no source is named {name!r}" if name else "the source is empty")
    day: date | None = None
    try:
        day = parse_day(cell("day"))
    except Invalid:
        fail("day", "invalid_day", f"{cell('day')!r} is not a day such as 2026-05-01")
    units: int | None = None
    if cell("units"):
        raw_units = cell("units")
        if raw_units.isdigit() and int(raw_units) <= MAX_UNITS:
            units = int(raw_units)
        else:
            fail("units", "invalid_units", f"{raw_units!r} is not a whole number of units")
    currency = cell("currency").upper()
    if source is not None and currency and currency != source.currency:
        fail("currency", "wrong_currency", f"{source.name} is paid in {source.currency}, not {currency}")
    amount: int | None = None
    if source is not None:
        text = cell("amount")
        if text.startswith("-"):
            fail("amount", "negative", "spend can't be negative")
        elif text == "":
            try:
                amount = _amount_from_units(source, units)
            except Invalid:
                if not any(e.field == "units" for e in errors):
                    fail("amount", "missing_amount", "the amount is empty")
        else:
            try:
                amount = parse_decimal_to_minor(text.replace(",", "") if _grouped(text) else text, source.currency)
            except Invalid:
                fail("amount", "invalid_amount",
                     f"{text!r} is not an amount such as 50.00 ({source.currency}: "
                     f"at most {minor_units(source.currency)} decimals)")
            else:
                if amount > MAX_AMOUNT:
                    fail("amount", "invalid_amount", "this amount is too large for one day")
    note = cell("note")
    if len(note) > MAX_NOTE:
        fail("note", "invalid_note", f"a note has at most {MAX_NOTE} characters")
    if source is not None and day is not None:
        first = seen.setdefault((source.id, day), number)
        if first != number:
            fail("day", "duplicate", f"row {first} already gives {source.name}'s spend on {day.isoformat()}")
    if errors or source is None or day is None or amount is None:
        return None, errors
    return SpendRow(number, source.id, day, amount, source.currency, units, note), errors


def _grouped(text: str) -> bool:
    """True for an amount with thousands separators such as 1,250.00 (as spreadsheets export it)."""
    whole = text.split(".")[0].lstrip("+")
    parts = whole.split(",")
    return len(parts) > 1 and 1 <= len(parts[0]) <= 3 and all(len(p) == 3 and p.isdigit() for p in parts[1:])


@dataclass(frozen=True)
class Imported:
    """What a spend file did: days written, of which replaced an earlier figure."""

    written: int
    replaced: int


def import_spend_csv(session: Session, content: bytes, *, actor: Actor) -> Imported:
    """Store every row of a spend file (origin "csv"), or nothing if any row is bad."""
    rows = parse_spend_csv(session, content)
    sources = {s.id: s for s in list_sources(session, include_archived=True)}
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    existing = {(s.source_id, s.day) for s in session.execute(
        select(Spend.source_id, Spend.day).where(Spend.workspace_id == _workspace(session), Spend.day >= first,
                                                 Spend.day <= last)
    ).all()}
    replaced = 0
    for r in rows:
        replaced += (r.source_id, r.day) in existing
        _write(session, sources[r.source_id], r.day, r.amount, r.currency, r.units, r.note, "csv", actor)
    ensure_daily_spend(session)
    return Imported(written=len(rows), replaced=replaced)


def export_spend_csv(session: Session, *, start: date, end: date) -> str:
    """The range's figures as a spend file this module reads back (source names, amounts in major units)."""
    names = {s.id: s.name for s in list_sources(session, include_archived=True)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in list_spend(session, start=start, end=end):
        writer.writerow([names[row.source_id], row.day.isoformat(), format_amount(row.amount, row.currency),
                         row.currency, "" if row.units is None else row.units, row.note])
    return out.getvalue()


def format_amount(amount: int, currency: str) -> str:
    """Minor units as a plain decimal of major units with the currency's decimals ("5000" CNY → "50.00")."""
    return f"{to_decimal(amount, currency):.{minor_units(currency)}f}"


def parse_amount(text: str, currency: str, *, field: str = "amount") -> int:
    """Minor units of a decimal in major units typed by a person ("50", "50.00"); refused if negative."""
    value = text.strip()
    if value.startswith("-"):
        raise Invalid("spend can't be negative", field=field, code="negative")
    try:
        Decimal(value)
    except InvalidOperation:
        raise Invalid(f"{value!r} is not an amount such as 50.00", field=field) from None
    return parse_decimal_to_minor(value, currency, field=field)


# --- the daily job ----------------------------------------------------------------------------------


def _next_run(session: Session) -> datetime:
    tz = workspace_tz(session)
    local = clock.now().astimezone(tz)
    hour, minute = DAILY_LOCAL_TIME
    run = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if run <= local:
        run = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return run


def ensure_daily_spend(session: Session) -> bool:
    """Queue the workspace's next daily spend fill unless it is queued already; True if this call queued it."""
    run = _next_run(session)
    key = f"{_workspace(session)}:{run.date().isoformat()}"
    return jobs.enqueue(session, DAILY, key, {"day": (run.date() - timedelta(days=1)).isoformat()},
                        workspace_id=_workspace(session), run_at=run)


@jobs.handler(DAILY)
def daily_spend_job(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """Fill the day before the run (the workspace's yesterday) from every cost model; queue the next run."""
    if ctx.workspace_id is None:
        return {"skipped": "no workspace"}
    bind_workspace(session, ctx.workspace_id)
    day = parse_day(ctx.payload.get("day") or (local_today(session) - timedelta(days=1)).isoformat())
    done = compute_spend(session, start=day, end=day)
    return {"day": day.isoformat(), "written": done.written, "kept": done.kept,
            "skipped": {str(k): v for k, v in done.skipped.items()}}


def totals_by_source(rows: Iterable[Spend]) -> dict[int, int]:
    """Sum of figures per source (each source has one currency, so these never mix currencies)."""
    out: dict[int, int] = {}
    for row in rows:
        out[row.source_id] = out.get(row.source_id, 0) + row.amount
    return out


__all__ = [
    "DAILY",
    "Computed",
    "CostModel",
    "Imported",
    "RowError",
    "SpendFileRefused",
    "SpendRow",
    "compute_spend",
    "delete_spend",
    "ensure_daily_spend",
    "export_spend_csv",
    "format_amount",
    "import_spend_csv",
    "list_sources",
    "list_spend",
    "model_amount",
    "parse_amount",
    "parse_cost_model",
    "parse_spend_csv",
    "put_spend",
    "spread",
]
