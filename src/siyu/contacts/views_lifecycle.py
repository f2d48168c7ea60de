"""Console: lifecycle stages and RFM scores — how many contacts are where, the rules, a refresh on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, redirect
from siyu.contacts import lifecycle, lifecycle_overview
from siyu.contacts.views import STAGE_NAMES, can_manage, require_manager
from siyu.contacts.views_tags import EXPLAINED, explain_here
from siyu.core.errors import SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

RULE_LABELS = {
    "customer_orders": N_("Orders to become a customer"),
    "repeat_orders": N_("Orders to become a repeat customer"),
    "dormant_days": N_("Quiet days before dormant"),
    "churned_days": N_("Quiet days before churned"),
}
RFM_NAMES = {"recency": N_("Recency"), "frequency": N_("Frequency"), "monetary": N_("Monetary")}
FLASHES.update({
    "lifecycle_saved": N_("Lifecycle rules saved. Stages follow at the refresh queued now."),
    "lifecycle_queued": N_("Refresh queued: the worker recomputes every stage and score shortly."),
    "lifecycle_waiting": N_("A refresh is already waiting for the worker."),
})
EXPLAINED.update({
    ("invalid", "customer_orders"): N_("Enter a whole number from 1 to 3650."),
    ("invalid", "repeat_orders"): N_("Enter a whole number from 1 to 3650, more than the orders of a customer."),
    ("invalid", "dormant_days"): N_("Enter a whole number from 1 to 3650."),
    ("invalid", "churned_days"): N_("Enter a whole number from 1 to 3650, more days than dormant."),
})


def _page(console: Console, *, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
          status: int = 200) -> Response:
    db = console.db
    counts = lifecycle.stage_counts(db)
    chart = {"labels": [console.gettext(STAGE_NAMES[s]) for s in lifecycle.STAGES],
             "counts": [counts[s] for s in lifecycle.STAGES]}
    rules = lifecycle.get_rules(db)
    return console.page(
        "contacts/lifecycle.html",
        status=status,
        stages=lifecycle.STAGES,
        stage_names=STAGE_NAMES,
        counts=counts,
        total=sum(counts.values()),
        chart=chart,
        rules=rules,
        values=values or {k: str(v) for k, v in rules.items()},
        rule_labels=RULE_LABELS,
        defaults=lifecycle.DEFAULT_RULES,
        rfm=lifecycle_overview.rfm_distribution(db),
        rfm_names=RFM_NAMES,
        scores=lifecycle_overview.SCORES,
        state=lifecycle_overview.refresh_state(db),
        editable=can_manage(console),
        errors=errors or {},
    )


@router.get("/console/lifecycle")
def lifecycle_page(console: ConsoleDep) -> Response:
    """Contacts per stage (chart and table), the stage rules, RFM scores and the refresh state."""
    console.auth.require("contacts", "read")
    return _page(console)


def _number(text: str) -> int | str:
    # Whole numbers go to the service as numbers; anything else as typed, for it to refuse by name.
    return int(text) if text.isdigit() and len(text) <= 6 else text


@router.post("/console/lifecycle")
def save_rules(console: ConsoleDep, form: FormDep) -> Response:
    """Save the stage thresholds; a refused value re-renders the form with its error and changes nothing."""
    require_manager(console)
    values = {k: str(form.get(k) or "").strip() for k in lifecycle.DEFAULT_RULES}
    try:
        with console.db.begin_nested():
            lifecycle.update_rules(console.db, {k: _number(v) for k, v in values.items()}, actor=console.actor)
    except SiyuError as exc:
        errors = {f"rules.{exc.field or '_form'}": explain_here(exc, console)}
        return _page(console, errors=errors, values=values, status=exc.status)
    return redirect("/console/lifecycle", flash="lifecycle_saved")


@router.post("/console/lifecycle/refresh")
def refresh(console: ConsoleDep, form: FormDep) -> Response:
    """Queue a refresh of every contact's stage and RFM scores."""
    require_manager(console)
    queued = lifecycle_overview.refresh_now(console.db, actor=console.actor)
    return redirect("/console/lifecycle", flash="lifecycle_queued" if queued else "lifecycle_waiting")
