"""Rows the spend and metrics tests need, written straight into the acquisition tables (the source and
code service and the arrival pipeline are built beside them); contacts through the contacts service and
orders as `order.paid` events."""

from __future__ import annotations

from datetime import date, datetime
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.acquisition.models import Arrival, Attribution, ChannelCode, Source
from siyu.contacts import service as contacts
from siyu.core.audit import Actor
from siyu.core.events import record_event
from siyu.core.tenancy import bound_workspace

ACTOR = Actor(type="user", id="1", label="marketer@example.com", via="console")
_serial = count(1)


def make_source(
    db: Session, name: str = "Parcel cards", *, currency: str = "CNY", cost_model: dict[str, Any] | None = None,
    type: str = "parcel_card",
) -> Source:
    """A source of the bound workspace."""
    source = Source(workspace_id=bound_workspace(db), name=name, type=type, currency=currency,
                    cost_model=cost_model or {})
    db.add(source)
    db.flush()
    return source


def make_code(db: Session, source: Source, name: str | None = None) -> ChannelCode:
    """A link code of a source."""
    n = next(_serial)
    code = ChannelCode(workspace_id=bound_workspace(db), name=name or f"code {n}", source_id=source.id,
                       kind="link", state=f"s{n}")
    db.add(code)
    db.flush()
    return code


def acquire(
    db: Session, source: Source, at: datetime, *, code: ChannelCode | None = None, staff_id: int | None = None,
    tz: str = "Asia/Shanghai", contact_id: int | None = None,
) -> int:
    """A new contact whose first touch is `source` (through `code`) at `at`: its attribution and arrival."""
    if contact_id is None:
        contact_id = contacts.create_contact(db, fields={"name": f"c{next(_serial)}"}, actor=ACTOR).id
    local_day: date = at.astimezone(ZoneInfo(tz)).date()
    code_id = code.id if code is not None else None
    db.add(Attribution(workspace_id=bound_workspace(db), contact_id=contact_id, first_code_id=code_id,
                       first_source_id=source.id, first_staff_id=staff_id, first_at=at, latest_code_id=code_id,
                       latest_source_id=source.id, latest_at=at))
    if code is not None:
        db.add(Arrival(workspace_id=bound_workspace(db), code_id=code.id, source_id=source.id, contact_id=contact_id,
                       staff_id=staff_id, kind="add", new_contact=True, dedupe_key=f"add:{next(_serial)}",
                       occurred_at=at, local_day=local_day))
    db.flush()
    return contact_id


def order(db: Session, contact_id: int, amount: int, at: datetime, *, currency: str = "CNY") -> None:
    """A paid order of a contact."""
    n = next(_serial)
    record_event(db, type="order.paid", contact_id=contact_id, occurred_at=at, idempotency_key=f"order-{n}",
                 properties={"order_id": f"o{n}", "amount": amount, "currency": currency,
                             "items": [{"sku": "tea", "qty": 1, "price": amount}]})
