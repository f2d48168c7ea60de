"""The spend and source-metrics API: set, list, delete, upload with per-row errors, compute, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.acquisition.models import Spend
from siyu.core import clock
from siyu.core.tenancy import bind_workspace
from tests.acquisition.factories import acquire, make_code, make_source, order
from tests.conftest import bearer

CARDS = {"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000}
MORNING = datetime(2026, 5, 1, 2, tzinfo=UTC)


@pytest.fixture
def setup(db, make_workspace, make_key):
    clock.set_clock(lambda: datetime(2026, 6, 1, 4, tzinfo=UTC))
    ws = make_workspace()
    key = bearer(make_key(ws))
    bind_workspace(db, ws.id)
    cards = make_source(db, "Parcel cards", cost_model=CARDS)
    db.commit()
    return ws, key, cards


def test_spend_is_set_listed_and_deleted(client, db, setup):
    _, key, cards = setup
    url = f"/api/v1/sources/{cards.id}/spend"
    r = client.put(url, json={"day": "2026-05-01", "amount": 5000, "note": "print run"}, headers=key)
    assert r.status_code == 200
    assert r.json()["amount"] == 5000
    assert r.json()["origin"] == "manual"
    listed = client.get("/api/v1/spend?start=2026-05-01&end=2026-05-31", headers=key).json()
    assert [(s["day"], s["amount"], s["currency"]) for s in listed] == [("2026-05-01", 5000, "CNY")]
    assert client.delete(f"{url}?day=2026-05-01", headers=key).status_code == 204
    assert client.get("/api/v1/spend?start=2026-05-01&end=2026-05-31", headers=key).json() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"day": "2026-05-01", "amount": 5000, "currency": "USD"}, "currency"),
    ({"day": "2026-05-01", "amount": -5}, "amount"),
    ({"day": "2026-13-01", "amount": 5}, "day"),
])
def test_wrong_spend_is_refused_and_nothing_stored(client, db, setup, body, field):
    _, key, cards = setup
    r = client.put(f"/api/v1/sources/{cards.id}/spend", json=body, headers=key)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field
    bind_workspace(db, setup[0].id)
    assert db.execute(select(Spend)).scalars().all() == []


def test_a_csv_upload_with_bad_rows_answers_each_rows_error_and_stores_nothing(client, db, setup):
    _, key, _ = setup
    bad = "source,day,amount,currency\nParcel cards,2026-05-01,50.00,CNY\nParcel cards,2026-05-02,50.00,USD\n"
    r = client.post("/api/v1/spend/upload", files={"file": ("spend.csv", bad, "text/csv")}, headers=key)
    assert r.status_code == 200
    assert r.json() == {"imported": False, "written": 0, "replaced": 0, "errors": [
        {"row": 3, "field": "currency", "code": "wrong_currency", "message": "Parcel cards is paid in CNY, not USD"}]}
    bind_workspace(db, setup[0].id)
    assert db.execute(select(Spend)).scalars().all() == []
    good = "source,day,amount\nParcel cards,2026-05-01,50.00\n"
    r = client.post("/api/v1/spend/upload", files={"file": ("spend.csv", good, "text/csv")}, headers=key)
    assert r.json() == {"imported": True, "written": 1, "replaced": 0, "errors": []}
    not_csv = client.post("/api/v1/spend/upload", files={"file": ("x.csv", "a,b\n1,2\n", "text/csv")},
                          headers=key)
    assert not_csv.status_code == 422
    assert not_csv.json()["error"]["code"] == "missing_columns"
    csv_text = client.get("/api/v1/spend.csv?start=2026-05-01&end=2026-05-01", headers=key).text
    assert csv_text == "source,day,amount,currency,units,note\nParcel cards,2026-05-01,50.00,CNY,,\n"


def test_compute_then_metrics_and_comparison_show_the_cost_of_a_contact(client, db, setup):
    _, key, cards = setup
    code = make_code(db, cards, "Card QR")
    people = [acquire(db, cards, MORNING + timedelta(minutes=i), code=code) for i in range(50)]
    order(db, people[0], 8800, MORNING + timedelta(days=1))
    db.commit()
    r = client.post("/api/v1/spend/compute", json={"start": "2026-05-01", "end": "2026-05-01"},
                    headers=key)
    assert r.json() == {"written": 1, "kept": 0, "removed": 0, "skipped": {}}
    report = client.get("/api/v1/source-metrics?start=2026-05-01&end=2026-05-07&bucket=week", headers=key).json()
    [row] = report["rows"]
    assert (row["name"], row["spend"], row["acquired"], row["cac"]) == ("Parcel cards", 5000, 50, "1.00")
    assert (row["converted"], row["conversion"], row["revenue"], row["roi"]) == (1, "0.0200", 8800, "0.7600")
    assert row["payback_days"] == 1
    assert row["revenue_30d_per_contact"] == "1.76"
    by_code = client.get("/api/v1/source-metrics?start=2026-05-01&end=2026-05-01&by=code", headers=key).json()
    assert [(r["key"], r["name"], r["spend"]) for r in by_code["rows"]] == [(code.id, "Card QR", 5000)]
    compared = client.get("/api/v1/source-comparison?start=2026-05-01&end=2026-05-31", headers=key).json()
    assert [(r["name"], r["cac"], r["revenue_90d_per_contact"]) for r in compared["rows"]] == [
        ("Parcel cards", "1.00", "1.76")]


def test_without_a_range_the_last_30_days_are_shown(client, setup):
    _, key, _ = setup
    report = client.get("/api/v1/source-metrics", headers=key).json()
    assert (report["start"], report["end"], report["timezone"]) == ("2026-05-03", "2026-06-01", "Asia/Shanghai")


def test_a_source_filter_past_the_id_range_is_refused_not_a_crash(client, setup):
    _, key, _ = setup
    for path in ("/api/v1/source-metrics", "/api/v1/spend"):
        r = client.get(f"{path}?source_id=9223372036854775808", headers=key)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "source_id.0"


def test_a_read_only_key_can_read_but_not_write(client, db, setup, make_key):
    ws, _, cards = setup
    reader = bearer(make_key(ws, ["acquisition:read"], name="reader"))
    assert client.get("/api/v1/source-comparison", headers=reader).status_code == 200
    r = client.put(f"/api/v1/sources/{cards.id}/spend", json={"day": "2026-05-01", "amount": 1},
                   headers=reader)
    assert r.status_code == 403
