"""The cost table and source comparison in Chromium: a spend file with a bad row is refused with the row
shown, the corrected file is imported, and the comparison shows what a contact from the source cost."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest

from siyu.core import clock
from tests.acquisition.factories import acquire, make_code, make_source
from tests.e2e.conftest import own_workspace, sign_in

pytestmark = pytest.mark.e2e


def test_upload_a_spend_file_and_see_the_cost_of_a_contact(page, server, tmp_path):
    from playwright.sync_api import expect

    yesterday = clock.now().astimezone(UTC).date() - timedelta(days=1)
    with own_workspace(server.database_url, email="spend@example.com", owner="Sam Spend", name="Spend Shop") as (db, _):
        cards = make_source(db, "Parcel cards")
        code = make_code(db, cards, "Card QR")
        noon = datetime.combine(yesterday, time(12), tzinfo=UTC)
        for i in range(50):
            acquire(db, cards, noon + timedelta(minutes=i), code=code, tz="UTC")
        source_id = cards.id
    problems = sign_in(page, "spend@example.com")
    expect(page).to_have_url(re.compile(r"/console$"))

    page.goto("/console/acquisition/spend")
    expect(page.locator("#cost-table")).to_contain_text("Parcel cards")
    bad = tmp_path / "spend-bad.csv"
    bad.write_text(f"source,day,amount,currency\nParcel cards,{yesterday},50.00,USD\n")
    page.locator("#spend-file").set_input_files(str(bad))
    page.locator("#spend-upload button", has_text="Upload").click()
    expect(page.locator("#file-error")).to_contain_text("nothing was imported")
    expect(page.locator("#row-errors")).to_contain_text("This is not the source's currency.")

    good = tmp_path / "spend.csv"
    good.write_text(f"source,day,amount,currency\nParcel cards,{yesterday},50.00,CNY\n")
    page.locator("#spend-file").set_input_files(str(good))
    page.locator("#spend-upload button", has_text="Upload").click()
    expect(page.locator(".flash, [role=status]").first).to_contain_text("Spend file imported.")
    expect(page.locator(f'input[name="cell-{source_id}-{yesterday}"]')).to_have_value("50.00")

    page.get_by_role("link", name="Source comparison").first.click()
    row = page.locator(f"#compare-{source_id}")
    expect(row).to_contain_text("50")
    expect(row.locator(".cac")).to_contain_text("1.00")
    expect(page.locator("#cac-chart-CNY canvas")).to_have_count(1)
    assert problems == []
