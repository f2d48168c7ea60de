"""REST endpoints of spend and acquisition cost: spend per source and day (list, set, delete, CSV upload
and download, compute from the cost model), source metrics by source, code or staff per day, week or
month, and the comparison of every source."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from siyu.acquisition import metrics, spend
from siyu.acquisition.models import Spend
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import IdIn, Strict

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("acquisition", "read"))]
Write = Annotated[Auth, Depends(api_auth("acquisition", "write"))]
Day = Annotated[str | None, Query(min_length=10, max_length=10,
                                  description="a local day, YYYY-MM-DD (default: the last 30 days up to today)")]
TAGS: list[str | Enum] = ["acquisition spend"]


class SpendIn(Strict):
    day: str = Field(min_length=10, max_length=10, description="the local day, YYYY-MM-DD")
    amount: int | None = Field(default=None, ge=0, le=spend.MAX_AMOUNT,
                               description="minor units (fen, cents); empty with units on a per-unit source")
    currency: str | None = Field(default=None, min_length=3, max_length=3,
                                 description="must be the source's currency (default)")
    units: int | None = Field(default=None, ge=0, le=spend.MAX_UNITS)
    note: str = Field(default="", max_length=spend.MAX_NOTE)


class SpendOut(BaseModel):
    id: int
    source_id: int
    day: date
    amount: int = Field(description="minor units")
    currency: str
    units: int | None
    origin: str = Field(description="manual | csv | model")
    note: str
    updated_at: datetime


class ComputeIn(Strict):
    start: str = Field(min_length=10, max_length=10, description="YYYY-MM-DD")
    end: str = Field(min_length=10, max_length=10, description="YYYY-MM-DD, included")
    source_ids: list[IdIn] | None = Field(default=None, max_length=500,
                                          description="default: every source with a cost model")


class ComputedOut(BaseModel):
    written: int
    kept: int = Field(description="days left as entered (manual or CSV)")
    removed: int
    skipped: dict[str, str] = Field(description="source id → why its cost model was not applied")


class RowErrorOut(BaseModel):
    row: int = Field(description="the file's row as a spreadsheet numbers it (the header is 1)")
    field: str
    code: str
    message: str


class ImportedOut(BaseModel):
    imported: bool = Field(description="false: some rows were wrong and nothing was stored (see errors)")
    written: int
    replaced: int
    errors: list[RowErrorOut] = Field(description="one entry per wrong cell; empty when the file was imported")


class MetricOut(BaseModel):
    key: int | None = Field(description="source, code or staff id; null: no code/staff, or spend not allocated")
    name: str | None
    currency: str
    bucket: date
    bucket_end: date
    spend: int = Field(description="minor units")
    acquired: int
    cac: Decimal | None = Field(description="major units, rounded half-even")
    converted: int
    conversion: Decimal | None
    revenue: int = Field(description="minor units, in the row's currency")
    other_revenue: dict[str, int] = Field(description="revenue in other currencies (never added in)")
    roi: Decimal | None
    payback_days: int | None
    revenue_30d: int
    revenue_90d: int
    revenue_30d_per_contact: Decimal | None
    revenue_90d_per_contact: Decimal | None


class ReportOut(BaseModel):
    by: str
    bucket: str
    start: date
    end: date
    timezone: str
    rows: list[MetricOut]


def _range(session: SessionDep, start: str | None, end: str | None) -> tuple[date, date]:
    default_start, default_end = metrics.default_range(session)
    last = spend.parse_day(end, field="end") if end else default_end
    first = spend.parse_day(start, field="start") if start else min(default_start, last)
    return first, last


def _spend_out(row: Spend) -> SpendOut:
    return SpendOut(**{name: getattr(row, name) for name in SpendOut.model_fields})


def _metric_out(row: metrics.MetricRow, name: str | None) -> MetricOut:
    return MetricOut(
        key=row.key, name=name, currency=row.currency, bucket=row.bucket, bucket_end=row.bucket_end,
        spend=row.spend, acquired=row.acquired, cac=row.cac, converted=row.converted, conversion=row.conversion,
        revenue=row.revenue, other_revenue=row.other_revenue, roi=row.roi, payback_days=row.payback_days,
        revenue_30d=row.revenue_30d, revenue_90d=row.revenue_90d,
        revenue_30d_per_contact=row.revenue_30d_per_contact, revenue_90d_per_contact=row.revenue_90d_per_contact,
    )


@router.get("/spend", tags=TAGS)
def list_spend(
    auth: Read, session: SessionDep, start: Day = None, end: Day = None,
    source_id: Annotated[list[IdIn] | None, Query(description="only these sources")] = None,
) -> list[SpendOut]:
    """Spend of the range (both days included), by source then day."""
    first, last = _range(session, start, end)
    return [_spend_out(r) for r in spend.list_spend(session, start=first, end=last, source_ids=source_id)]


@router.put("/sources/{source_id}/spend", tags=TAGS)
def put_spend(source_id: int, body: SpendIn, auth: Write, session: SessionDep) -> SpendOut:
    """Set what a source cost on a day (replaces the day's figure, whether entered or from the model)."""
    row = spend.put_spend(session, source_id=source_id, day=body.day, amount=body.amount, currency=body.currency,
                          units=body.units, note=body.note, actor=auth.actor)
    return _spend_out(row)


@router.delete("/sources/{source_id}/spend", status_code=204, tags=TAGS)
def delete_spend(
    source_id: int, auth: Write, session: SessionDep,
    day: Annotated[str | None, Query(max_length=10, description="the local day, YYYY-MM-DD (required)")] = None,
) -> None:
    """Remove a source's figure for a day (the cost model may fill it again)."""
    # `day` is checked after the source, so another workspace's source id is a 404 whatever the day.
    spend.delete_spend(session, source_id=source_id, day=day, actor=auth.actor)


@router.post("/spend/upload", tags=TAGS)
def upload_spend(auth: Write, session: SessionDep, file: Annotated[UploadFile, File()]) -> ImportedOut:
    """Upload a spend CSV (columns source, day, amount in major units such as 50.00, and optionally currency,
    units, note). Every row is checked first: if any is wrong nothing is stored, `imported` is false and
    `errors` lists each wrong cell by row. A file that is not a spend file at all (no header, unknown
    columns, too large) is a 422."""
    try:
        done = spend.import_spend_csv(session, file.file.read(spend.MAX_CSV_BYTES + 1), actor=auth.actor)
    except spend.SpendFileRefused as refused:
        if not refused.rows:
            raise
        errors = [RowErrorOut(row=e.row, field=e.field, code=e.code, message=e.message) for e in refused.rows]
        return ImportedOut(imported=False, written=0, replaced=0, errors=errors)
    return ImportedOut(imported=True, written=done.written, replaced=done.replaced, errors=[])


@router.get("/spend.csv", tags=TAGS, response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def download_spend(auth: Read, session: SessionDep, start: Day = None, end: Day = None) -> Response:
    """The range's spend as a CSV file that uploads back as it is."""
    first, last = _range(session, start, end)
    body = spend.export_spend_csv(session, start=first, end=last)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="spend-{first}-{last}.csv"'})


@router.post("/spend/compute", tags=TAGS)
def compute_spend(body: ComputeIn, auth: Write, session: SessionDep) -> ComputedOut:
    """Fill the range from the sources' cost models; days entered by hand or CSV are left alone."""
    done = spend.compute_spend(session, start=body.start, end=body.end, source_ids=body.source_ids,
                               actor=auth.actor)
    return ComputedOut(written=done.written, kept=done.kept, removed=done.removed,
                       skipped={str(k): v for k, v in done.skipped.items()})


def _names(session: SessionDep, by: str, keys: list[int]) -> dict[int, str]:
    if by == "code":
        return metrics.code_names(session, keys)
    if by == "staff":
        from siyu.contacts import staff

        return {s.id: s.name for s in staff.list_staff(session) if s.id in set(keys)}
    return {s.id: s.name for s in spend.list_sources(session, include_archived=True)}


@router.get("/source-metrics", tags=TAGS)
def source_metrics(
    auth: Read, session: SessionDep, start: Day = None, end: Day = None,
    by: Literal["source", "code", "staff"] = "source", bucket: Literal["day", "week", "month", "all"] = "day",
    source_id: Annotated[list[IdIn] | None, Query(description="only these sources")] = None,
) -> ReportOut:
    """Spend, acquired contacts, CAC, conversion, revenue, ROI, payback and 30/90-day revenue per contact,
    per source, code or staff member, per local day, week, month or the whole range."""
    first, last = _range(session, start, end)
    report = metrics.source_metrics(session, start=first, end=last, by=by, bucket=bucket, source_ids=source_id)
    names = _names(session, by, [r.key for r in report.rows if r.key is not None])
    return ReportOut(by=report.by, bucket=report.bucket, start=report.start, end=report.end,
                     timezone=report.timezone,
                     rows=[_metric_out(r, names.get(r.key) if r.key is not None else None) for r in report.rows])


@router.get("/source-comparison", tags=TAGS)
def compare_sources(auth: Read, session: SessionDep, start: Day = None, end: Day = None) -> ReportOut:
    """Every source over the range side by side: CAC, conversion, 30/90-day revenue per contact."""
    first, last = _range(session, start, end)
    found = metrics.compare_sources(session, start=first, end=last)
    return ReportOut(by="source", bucket="all", start=found.start, end=found.end, timezone=found.timezone,
                     rows=[_metric_out(r, s.name) for s, r in found.rows])
