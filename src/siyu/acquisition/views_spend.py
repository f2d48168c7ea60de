"""Console: the cost table (sources × days, every cell editable, CSV upload with each bad row explained,
fill from the cost models) and the source comparison (CAC, conversion and 30/90-day revenue per contact,
with charts)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from siyu.acquisition import metrics, spend
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, explain, form_text, redirect
from siyu.core.errors import Invalid, SiyuError
from siyu.core.money import format_money, minor_units

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

TABLE_DAYS = 14
MAX_TABLE_DAYS = 62
FLASHES.update({
    "spend_saved": N_("Spend saved."),
    "spend_imported": N_("Spend file imported."),
    "spend_computed": N_("Days without an entered figure were filled from the cost models."),
})
ORIGIN_NAMES = {"manual": N_("entered"), "csv": N_("from a file"), "model": N_("from the cost model")}
ROW_ERRORS = {
    "unknown_source": N_("No source has this name or id."),
    "invalid_day": N_("Write the day as YYYY-MM-DD, such as 2026-05-01."),
    "negative": N_("Spend can't be negative."),
    "invalid_amount": N_(
        "Write the amount in major units, such as 50.00, with no more decimals than the currency has."),
    "missing_amount": N_("Enter the amount, or units for a source paid per unit."),
    "wrong_currency": N_("This is not the source's currency."),
    "duplicate": N_("An earlier row already gives this source's spend on this day."),
    "invalid_units": N_("Units are a whole number, 0 or more."),
    "invalid_note": N_("A note has at most 500 characters."),
}
FILE_ERRORS = {
    "empty": N_("The file is empty: it needs a header row (source, day, amount) and at least one row."),
    "missing_columns": N_("The header needs the columns source, day and amount."),
    "unknown_columns": N_(
        "The header has a column this file can't have: use source, day, amount, currency, units, note."),
    "too_large": N_("The file is too large: upload at most 1 MB at a time."),
    "too_many_rows": N_("The file has too many rows: upload at most 20,000 at a time."),
    "invalid_file": N_("This is not a CSV text file."),
}
CELL_ERRORS = {
    ("invalid", "amount"): N_("Write an amount such as 50.00."),
    ("negative", "amount"): N_("Spend can't be negative."),
    ("wrong_currency", "currency"): N_("This is not the source's currency."),
}



def _day(value: str | None, default: date) -> date:
    if not value:
        return default
    try:
        return spend.parse_day(value)
    except Invalid:
        return default


def _table_range(console: Console, start: str | None, end: str | None) -> tuple[date, date]:
    today = spend.local_today(console.db)
    last = _day(end, today)
    first = _day(start, last - timedelta(days=TABLE_DAYS - 1))
    if first > last:
        first = last - timedelta(days=TABLE_DAYS - 1)
    if (last - first).days >= MAX_TABLE_DAYS:
        first = last - timedelta(days=MAX_TABLE_DAYS - 1)
    return first, last


def _cell(source_id: int, day: date) -> str:
    return f"cell-{source_id}-{day.isoformat()}"


def _cost_page(console: Console, start: date, end: date, *, errors: dict[str, str] | None = None,
               typed: dict[str, str] | None = None, file_error: str | None = None,
               row_errors: list[dict[str, Any]] | None = None, status: int = 200) -> Response:
    sources = spend.list_sources(console.db)
    figures = {(r.source_id, r.day): r for r in spend.list_spend(console.db, start=start, end=end)}
    days = spend.days_of(start, end)
    totals = spend.totals_by_source(figures.values())
    cells: dict[str, dict[str, Any]] = {}
    for s in sources:
        for d in days:
            row = figures.get((s.id, d))
            name = _cell(s.id, d)
            shown = spend.format_amount(row.amount, row.currency) if row else ""
            cells[name] = {"value": (typed or {}).get(name, shown), "was": shown,
                           "origin": row.origin if row else None}
    return console.page(
        "acquisition/spend.html", status=status, sources=sources, days=days, cells=cells, start=start, end=end,
        totals={sid: format_money(t, next(s.currency for s in sources if s.id == sid), console.locale)
                for sid, t in totals.items() if any(s.id == sid for s in sources)},
        errors=errors or {}, file_error=file_error, row_errors=row_errors or [], origin_names=ORIGIN_NAMES,
        editable=console.can("acquisition", "write"), tz=spend.workspace_tz(console.db).key,
        previous=(start - timedelta(days=(end - start).days + 1), start - timedelta(days=1)),
        following=(end + timedelta(days=1), end + timedelta(days=(end - start).days + 1)),
    )


@router.get("/console/acquisition/spend")
def cost_table(console: ConsoleDep, start: str | None = None, end: str | None = None) -> Response:
    """Sources × days of spend, each cell editable; a CSV upload and the cost models' fill."""
    console.auth.require("acquisition", "read")
    first, last = _table_range(console, start, end)
    if console.can("acquisition", "write"):
        # Sources made before the nightly fill existed (or by import) start it here: one idempotent insert.
        spend.ensure_daily_spend(console.db)
    return _cost_page(console, first, last)


def _back(start: date, end: date) -> str:
    return f"/console/acquisition/spend?start={start.isoformat()}&end={end.isoformat()}"


@router.post("/console/acquisition/spend")
def save_table(console: ConsoleDep, form: FormDep) -> Response:
    """Save the cells that changed (an emptied cell removes the day's figure); all or nothing."""
    console.auth.require("acquisition", "write")
    first, last = _table_range(console, form_text(form, "start"), form_text(form, "end"))
    sources = {s.id: s for s in spend.list_sources(console.db)}
    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    try:
        with console.db.begin_nested():
            _save_cells(console, form, sources, first, last, errors, typed)
    except _CellsRefused:
        return _cost_page(console, first, last, errors=errors, typed=typed, status=422)
    return redirect(_back(first, last), flash="spend_saved")


class _CellsRefused(Exception):
    """Some cells were wrong: the savepoint rolls back the ones saved before them."""


def _save_cells(console: Console, form: FormData, sources: dict[int, Any], first: date, last: date,
                errors: dict[str, str], typed: dict[str, str]) -> None:
    for sid, source in sources.items():
        for d in spend.days_of(first, last):
            name = _cell(sid, d)
            if name not in form:
                continue
            value, was = form_text(form, name), form_text(form, f"was-{name}")
            typed[name] = value
            if value == was:
                continue
            try:
                if value == "":
                    spend.delete_spend(console.db, source_id=sid, day=d, actor=console.actor)
                else:
                    amount = spend.parse_amount(value, source.currency)
                    spend.put_spend(console.db, source_id=sid, day=d, amount=amount, actor=console.actor)
            except SiyuError as exc:
                message = CELL_ERRORS.get((exc.code, exc.field or ""))
                errors[name] = console.gettext(message) if message else explain(exc, console.locale)
    if errors:
        raise _CellsRefused()


@router.post("/console/acquisition/spend/upload")
def upload(console: ConsoleDep, form: FormDep) -> Response:
    """Import a spend CSV: every row or none, each bad row explained."""
    console.auth.require("acquisition", "write")
    first, last = _table_range(console, form_text(form, "start"), form_text(form, "end"))
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return _cost_page(console, first, last, file_error=console.gettext(N_("Choose a CSV file to upload.")),
                          status=422)
    try:
        with console.db.begin_nested():
            spend.import_spend_csv(console.db, file.file.read(spend.MAX_CSV_BYTES + 1), actor=console.actor)
    except spend.SpendFileRefused as refused:
        rows = [{"row": e.row, "field": e.field, "message": console.gettext(ROW_ERRORS.get(e.code, e.message)),
                 "detail": e.message} for e in refused.rows]
        summary = FILE_ERRORS.get(refused.code)
        file_error = console.gettext(summary) if summary else console.gettext(
            N_("Some rows are wrong, so nothing was imported. Correct them and upload the file again."))
        return _cost_page(console, first, last, file_error=file_error, row_errors=rows, status=422)
    return redirect(_back(first, last), flash="spend_imported")


@router.post("/console/acquisition/spend/compute")
def compute(console: ConsoleDep, form: FormDep) -> Response:
    """Fill the shown days from the cost models (entered days stay as they are)."""
    console.auth.require("acquisition", "write")
    first, last = _table_range(console, form_text(form, "start"), form_text(form, "end"))
    spend.compute_spend(console.db, start=first, end=last, actor=console.actor)
    return redirect(_back(first, last), flash="spend_computed")


@router.get("/console/acquisition/spend.csv")
def download(console: ConsoleDep, start: str | None = None, end: str | None = None) -> Response:
    """The shown days as a CSV file to edit and upload back."""
    console.auth.require("acquisition", "read")
    first, last = _table_range(console, start, end)
    return Response(spend.export_spend_csv(console.db, start=first, end=last),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="spend-{first}-{last}.csv"'})


def _number(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@router.get("/console/acquisition/compare")
def comparison(console: ConsoleDep, start: str | None = None, end: str | None = None) -> Response:
    """Every source side by side: spend, acquired, CAC, conversion, revenue and 30/90-day revenue per contact."""
    console.auth.require("acquisition", "read")
    default_start, default_end = metrics.default_range(console.db)
    last = _day(end, default_end)
    first = _day(start, default_start)
    if first > last or (last - first).days >= spend.MAX_RANGE_DAYS:
        first = last - timedelta(days=29)
    found = metrics.compare_sources(console.db, start=first, end=last)
    rows = found.rows
    charted = [(s, r) for s, r in rows if r.acquired or r.spend]
    currencies = sorted({r.currency for _, r in charted})
    charts = [
        {"currency": cur,
         "cac": {"labels": [s.name for s, r in charted if r.currency == cur],
                 "counts": [_number(r.cac) for s, r in charted if r.currency == cur]},
         "revenue": {"labels": [s.name for s, r in charted if r.currency == cur],
                     "counts": [_number(r.revenue_90d_per_contact) for s, r in charted if r.currency == cur]}}
        for cur in currencies
    ]
    return console.page(
        "acquisition/compare.html", rows=rows, start=first, end=last, tz=found.timezone, charts=charts,
        money=lambda amount, currency: format_money(amount, currency, console.locale),
        percent=lambda value: "—" if value is None else f"{value * 100:.1f}%",
        major=lambda value, currency: "—" if value is None else format_money(
            int(value.scaleb(minor_units(currency))), currency, console.locale),
    )
