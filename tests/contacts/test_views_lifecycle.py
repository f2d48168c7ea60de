"""The lifecycle page: stage counts and chart, the rules form with field errors, refresh now, RFM scores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from siyu.contacts import lifecycle
from siyu.contacts.models import Contact
from siyu.core import clock
from siyu.core.models import AuditEntry, Job
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import post, sign_in
from tests.contacts.tag_support import add_contacts

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def owner(client, db, make_workspace, make_user):
    clock.set_clock(clock.FrozenClock(NOW))
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com", name="Olivia")
    assert sign_in(client, "owner@example.com").status_code == 303
    return ws


def refresh_jobs(db, ws) -> list[Job]:
    bind_workspace(db, ws.id)
    return list(db.execute(select(Job).where(Job.kind == lifecycle.REFRESH, Job.workspace_id == ws.id)).scalars())


def test_the_page_charts_stages_and_shows_rfm_scores(client, db, owner, make_workspace):
    ids = add_contacts(db, owner.id, 4)
    db.add_all([Contact(workspace_id=owner.id, stage="repeat", order_count=3, rfm_recency=5, rfm_frequency=5,
                        rfm_monetary=4),
                Contact(workspace_id=owner.id, stage="customer", order_count=1, rfm_recency=2, rfm_frequency=1,
                        rfm_monetary=1),
                Contact(workspace_id=owner.id, stage="dormant", order_count=1, rfm_recency=1, rfm_frequency=1,
                        rfm_monetary=2)])
    other = make_workspace("Elsewhere")
    add_contacts(db, other.id, 3, stage="churned")
    db.commit()
    bind_workspace(db, None)

    page = client.get("/console/lifecycle")

    assert page.status_code == 200
    assert ids
    chart = json.loads(re.search(r"data-chart='([^']+)'", page.text).group(1))
    assert chart == {"labels": ["New", "Engaged", "Customer", "Repeat", "Dormant", "Churned"],
                     "counts": [4, 0, 1, 1, 1, 0]}
    assert '/static/vendor/echarts/echarts.min.js' in page.text
    rows = dict(re.findall(r'<tr data-rfm="(\w+)"><th scope="row">\w+</th>((?:<td>\d+</td>){5})</tr>', page.text))
    cells = {k: [int(n) for n in re.findall(r"\d+", v)] for k, v in rows.items()}
    assert cells == {"recency": [1, 1, 0, 0, 1], "frequency": [2, 0, 0, 0, 1], "monetary": [1, 1, 0, 1, 0]}
    assert 'href="/console/lifecycle"' in client.get("/console/contacts").text


def test_bad_thresholds_show_field_errors_and_change_nothing(client, db, owner):
    before = len(refresh_jobs(db, owner))
    bind_workspace(db, None)
    form = {"customer_orders": "1", "repeat_orders": "2", "dormant_days": "90", "churned_days": "60"}

    backwards = post(client, "/console/lifecycle", form)
    not_a_number = post(client, "/console/lifecycle", {**form, "churned_days": "200", "customer_orders": "one"})

    assert backwards.status_code == 422
    assert 'id="rules.churned_days-error"' in backwards.text
    assert "more days than dormant" in backwards.text
    assert 'value="60"' in backwards.text  # what was typed stays in the form
    assert not_a_number.status_code == 422
    assert 'id="rules.customer_orders-error"' in not_a_number.text
    bind_workspace(db, owner.id)
    assert lifecycle.get_rules(db) == lifecycle.DEFAULT_RULES
    assert len(refresh_jobs(db, owner)) == before
    assert db.execute(select(func.count()).select_from(AuditEntry)
                      .where(AuditEntry.action == "contacts.lifecycle_rules")).scalar_one() == 0


def test_saving_rules_queues_a_refresh_and_the_button_queues_one_at_a_time(client, db, owner):
    form = {"customer_orders": "1", "repeat_orders": "3", "dormant_days": "30", "churned_days": "90"}

    saved = post(client, "/console/lifecycle", form)

    assert saved.status_code == 303
    bind_workspace(db, owner.id)
    assert lifecycle.get_rules(db) == {"customer_orders": 1, "repeat_orders": 3, "dormant_days": 30,
                                       "churned_days": 90}
    now_jobs = [j for j in refresh_jobs(db, owner) if not j.payload.get("daily")]
    assert len(now_jobs) == 1
    # The worker ran it: the button queues a new one, a second click finds it waiting.
    now_jobs[0].status, now_jobs[0].finished_at = "done", NOW
    db.commit()
    bind_workspace(db, None)
    clock.set_clock(clock.FrozenClock(NOW + timedelta(minutes=5)))

    first = post(client, "/console/lifecycle/refresh")
    second = post(client, "/console/lifecycle/refresh")

    assert (first.status_code, second.status_code) == (303, 303)
    assert "siyu_flash=lifecycle_queued" in first.headers["set-cookie"]
    assert "siyu_flash=lifecycle_waiting" in second.headers["set-cookie"]
    pending = [j for j in refresh_jobs(db, owner) if not j.payload.get("daily") and j.status == "pending"]
    assert len(pending) == 1
    bind_workspace(db, None)
    page = client.get("/console/lifecycle").text
    assert "2026-12-01 12:00 UTC" in page  # the last refresh
    assert "2026-12-01 19:00 UTC" in page  # the nightly one: 03:00 in Shanghai


def test_staff_see_the_page_but_may_not_change_rules(client, db, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, role="staff", email="staff@example.com", name="Sam")
    assert sign_in(client, "staff@example.com").status_code == 303

    page = client.get("/console/lifecycle")
    refused = post(client, "/console/lifecycle", {"customer_orders": "2", "repeat_orders": "3",
                                                  "dormant_days": "60", "churned_days": "180"})
    refresh = post(client, "/console/lifecycle/refresh")

    assert page.status_code == 200
    assert 'action="/console/lifecycle/refresh"' not in page.text
    assert (refused.status_code, refresh.status_code) == (403, 403)
