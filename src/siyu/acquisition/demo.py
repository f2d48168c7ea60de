"""Demo data of acquisition: three sources (parcel cards, a store poster, a live stream) with their cost
models, a channel code for each on the demo Official Account plus a tracked link for the live stream's
SMS, and eight weeks of arrivals through them, so the console's code pages have something to chart.

No network: the demo Official Account is a stand-in on a closed port, so its codes are written as they
would be after the platform made them, without a QR (their `sync_error` says so; a real account makes
them through `create_code`). Their states are the scenes the channels demo's followers arrived with, so
those follows become arrivals; other demo contacts scan the codes over the weeks, and anonymous people
click the link. It runs after the channels demo. A second run adds nothing (sources by name, arrivals
by a deterministic key).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.acquisition import arrivals, codes, sources
from siyu.acquisition.models import ChannelCode, ChannelCodeStaff
from siyu.channels import service as channels
from siyu.channels.demo import ACCOUNT_NAME
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.models import Event, Workspace

ACTOR = Actor.cli("demo")
WEEKS = 8
SCANNERS = 150
CLICKS = 240
NO_PLATFORM = "demo code: written without the platform (the demo account is a stand-in), so it has no QR image"
# (source name, type, cost model in fen, code name, state (= the channels demo's follow scene), rotation)
SOURCES: tuple[tuple[str, str, dict[str, Any], str, str, str], ...] = (
    ("包裹卡 Parcel cards", "parcel_card", {"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000},
     "包裹卡二维码 Parcel card QR", "parcel_card", "round_robin"),
    ("门店海报 Store poster", "store_poster", {"kind": "per_period", "amount": 30000, "period": "month"},
     "门店海报 Store poster QR", "store_poster", "weighted"),
    ("直播间 Live stream", "live_stream", {"kind": "per_acquired", "unit_cost": 300},
     "直播间二维码 Live stream QR", "live_stream", "random"),
)
LINK = ("直播预告短信 Live stream SMS", "live-sms", "https://shop.example.com/live")


def _source(session: Session, name: str, type_: str, cost: dict[str, Any]) -> Any:
    for source in sources.list_sources(session, archived=None):
        if source.name == name:
            return source
    return sources.create_source(session, name=name, type=type_, currency="CNY", cost_model=cost, actor=ACTOR)


def _oa_code(session: Session, workspace: Workspace, source: Any, account_id: int, name: str, state: str,
             rotation: str, staff_ids: list[int]) -> ChannelCode:
    """An Official Account code as `create_code` leaves it, without asking the platform for its QR."""
    found = codes.code_by_state(session, state)
    if found is not None:
        return found
    code = ChannelCode(workspace_id=workspace.id, name=name, source_id=source.id, kind="wechat_oa",
                       account_id=account_id, state=state, status="active", rotation=rotation,
                       welcome={}, tag_ids=[], sync_error=NO_PLATFORM, created_by=ACTOR.label)
    session.add(code)
    session.flush()
    for position, staff_id in enumerate(staff_ids, start=1):
        session.add(ChannelCodeStaff(workspace_id=workspace.id, code_id=code.id, staff_id=staff_id,
                                     weight=1 + position % 3, daily_cap=40 if position == 1 else None,
                                     backup=position == len(staff_ids) and len(staff_ids) > 2, position=position))
    session.flush()
    return code


def add_demo_acquisition(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """Sources, codes and eight weeks of arrivals (see the module's docstring)."""
    account = next((a for a in channels.list_accounts(session, kind="wechat_oa") if a.name == ACCOUNT_NAME), None)
    staff_ids = [s.id for s in staff_service.list_staff(session, active=True)][:4]
    made: list[ChannelCode] = []
    link_source = None
    for source_name, type_, cost, code_name, state, rotation in SOURCES:
        source = _source(session, source_name, type_, cost)
        if account is not None:
            made.append(_oa_code(session, workspace, source, account.id, code_name, state, rotation, staff_ids))
        if type_ == "live_stream":
            link_source = source
    link = codes.code_by_state(session, LINK[1])
    if link is None and link_source is not None:
        link = codes.create_code(session, name=LINK[0], source_id=link_source.id, kind="link", state=LINK[1],
                                 target_url=LINK[2], actor=ACTOR)
    now = clock.now()
    task = progress.add_task("Acquisition", total=SCANNERS + CLICKS)
    arrivals.set_draw(rng.random)  # the random rotation draws from the demo's seed
    try:
        _arrive(session, account.id if account is not None else None, made, link, rng, now, progress, task)
    finally:
        arrivals.set_draw(None)


def _arrive(session: Session, account_id: int | None, made: list[ChannelCode], link: ChannelCode | None,
            rng: random.Random, now: Any, progress: Progress, task: Any) -> None:
    by_state = {c.state: c for c in made}
    # The channels demo's followers came through these scenes: their follows are arrivals.
    if account_id is not None:
        follows = session.execute(select(Event).where(Event.type == "channel.joined").order_by(Event.id)).scalars()
        for event in follows:
            props = event.properties or {}
            code = by_state.get(str(props.get("scene") or ""))
            if code is not None and props.get("account_id") == account_id and event.contact_id is not None:
                arrivals.record_arrival(session, code, kind="add", dedupe_key=f"demo:follow:{event.id}",
                                        contact_id=event.contact_id, occurred_at=event.occurred_at)
    # Other demo contacts scanned a code some day in the last weeks; their first scan made them "new".
    if made:
        people = contacts.list_contacts(session, limit=SCANNERS)[0]
        for n, person in enumerate(people):
            code = rng.choices(made, weights=[5, 2, 3][: len(made)])[0]
            at = now - timedelta(days=rng.triangular(0, WEEKS * 7, 3), hours=rng.uniform(0, 12))
            arrivals.record_arrival(session, code, kind=rng.choice(("scan", "add", "add")),
                                    dedupe_key=f"demo:scan:{n}", contact_id=person.id, new_contact=n % 3 == 0,
                                    occurred_at=at)
            progress.advance(task)
    if link is not None:
        for n in range(CLICKS):
            at = now - timedelta(days=rng.triangular(0, WEEKS * 7, 0), hours=rng.uniform(0, 12))
            arrivals.record_arrival(session, link, kind="click", dedupe_key=f"demo:click:{n}", contact_id=None,
                                    occurred_at=at)
            progress.advance(task)
