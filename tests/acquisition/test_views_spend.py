"""Console pages of spend: the cost table (cells, CSV upload with each bad row shown, fill from the
models) and the source comparison with its charts; empty states and other languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.acquisition.models import Spend
from siyu.core import clock
from siyu.core.tenancy import bind_workspace
from tests.acquisition.factories import acquire, make_code, make_source
from tests.console.helpers import page_token, post, sign_in

CARDS = {"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000}
NOW = datetime(2026, 5, 3, 4, tzinfo=UTC)  # noon on May 3rd in Shanghai


@pytest.fixture
def signed_in(client, db, make_workspace, make_user):
    clock.set_clock(lambda: NOW)
    ws = make_workspace(locale="en")
    user = make_user(ws, "operator")
    assert sign_in(client, user.email).status_code == 303
    bind_workspace(db, ws.id)
    return ws


def _spend(db, ws):
    bind_workspace(db, ws.id)
    db.expire_all()
    return [(r.day.isoformat(), r.amount, r.origin) for r in db.execute(select(Spend).order_by(Spend.day)).scalars()]


def test_empty_pages_say_what_to_do(client, signed_in):
    assert "No sources yet" in client.get("/console/acquisition/spend").text
    assert "No sources yet" in client.get("/console/acquisition/compare").text


def test_cells_are_saved_all_or_nothing_with_the_error_next_to_the_cell(client, db, signed_in):
    cards = make_source(db, cost_model=CARDS)
    db.commit()
    page = client.get("/console/acquisition/spend?start=2026-05-01&end=2026-05-03")
    assert f'name="cell-{cards.id}-2026-05-01"' in page.text
    form = {"start": "2026-05-01", "end": "2026-05-03", f"cell-{cards.id}-2026-05-01": "50.00",
            f"was-cell-{cards.id}-2026-05-01": "", f"cell-{cards.id}-2026-05-02": "-3",
            f"was-cell-{cards.id}-2026-05-02": ""}
    bad = post(client, "/console/acquisition/spend", form)
    assert bad.status_code == 422
    assert f'aria-describedby="cell-{cards.id}-2026-05-02-error"' in bad.text
    assert "be negative" in bad.text
    assert _spend(db, signed_in) == []
    form[f"cell-{cards.id}-2026-05-02"] = "12.5"
    assert post(client, "/console/acquisition/spend", form).status_code == 303
    assert _spend(db, signed_in) == [("2026-05-01", 5000, "manual"), ("2026-05-02", 1250, "manual")]
    filled = post(client, "/console/acquisition/spend/compute", {"start": "2026-05-01", "end": "2026-05-03"})
    assert filled.status_code == 303
    assert _spend(db, signed_in)[-1] == ("2026-05-03", 5000, "model")


def test_a_bad_csv_shows_each_rows_error_and_a_good_one_fills_the_table(client, db, signed_in):
    make_source(db, "Parcel cards")
    db.commit()
    token = page_token(client, "/console/acquisition/spend")
    bad = "source,day,amount\nParcel cards,2026-05-01,50.00\nShop poster,2026-05-02,5\nParcel cards,May 2,5\n"
    r = client.post("/console/acquisition/spend/upload", data={"csrf_token": token},
                    files={"file": ("spend.csv", bad, "text/csv")}, follow_redirects=False)
    assert r.status_code == 422
    assert "nothing was imported" in r.text
    assert "No source has this name or id." in r.text
    assert "Write the day as YYYY-MM-DD" in r.text
    assert '<td>3</td>' in r.text
    assert '<td>4</td>' in r.text
    assert _spend(db, signed_in) == []
    good = "source,day,amount\nParcel cards,2026-05-01,50.00\n"
    r = client.post("/console/acquisition/spend/upload", data={"csrf_token": token},
                    files={"file": ("spend.csv", good, "text/csv")}, follow_redirects=False)
    assert r.status_code == 303
    assert 'value="50.00"' in client.get("/console/acquisition/spend?start=2026-05-01&end=2026-05-03").text


def test_the_comparison_shows_cac_and_charts_in_chinese(client, db, signed_in):
    cards = make_source(db, "包裹卡", cost_model=CARDS)
    code = make_code(db, cards)
    for i in range(50):
        acquire(db, cards, datetime(2026, 5, 1, 2, tzinfo=UTC) + timedelta(minutes=i), code=code)
    db.commit()
    post(client, "/console/acquisition/spend/compute", {"start": "2026-05-01", "end": "2026-05-01"})
    signed_in.locale = "zh_Hans"
    db.commit()
    page = client.get("/console/acquisition/compare?start=2026-05-01&end=2026-05-03")
    assert f'id="compare-{cards.id}"' in page.text
    assert "¥1.00" in page.text
    assert "cac-chart-CNY" in page.text
    assert "来源对比" in page.text
