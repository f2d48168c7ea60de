"""Acquisition's public face: sources, channel codes, arrivals and their reports.

The work is split by concept — `sources`, `codes`, `arrivals`, `reports`, `tasks` — and re-exported
here, so other modules call `siyu.acquisition.service.<function>` and never the tables.
"""

from __future__ import annotations

from siyu.acquisition.arrivals import ARRIVED, Landed, day_counts, local_now, record_arrival, set_draw
from siyu.acquisition.codes import (
    check_state,
    code_by_state,
    create_code,
    delete_code,
    get_code,
    list_codes,
    live_status,
    members_of,
    public_link,
    set_status,
    sync_wecom_members,
    update_code,
)
from siyu.acquisition.reports import Series, daily_series, list_arrivals, totals
from siyu.acquisition.sources import (
    clean_cost_model,
    code_count,
    create_source,
    delete_source,
    get_source,
    list_sources,
    update_source,
)
from siyu.acquisition.tasks import expire_due, queue_member_sync, schedule_tick

__all__ = [
    "ARRIVED", "Landed", "Series", "check_state", "clean_cost_model", "code_by_state", "code_count", "create_code",
    "create_source", "daily_series", "day_counts", "delete_code", "delete_source", "expire_due", "get_code",
    "get_source", "list_arrivals", "list_codes", "list_sources", "live_status", "local_now", "members_of",
    "public_link", "queue_member_sync", "record_arrival", "schedule_tick", "set_draw", "set_status",
    "sync_wecom_members", "totals", "update_code", "update_source",
]
