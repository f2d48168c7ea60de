"""Two contacts merged: one attribution per person (the earlier first touch, the later latest touch), their
arrivals on the keeper, and a broadcast both were in keeps one recipient row, the keeper's."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from siyu.acquisition.models import Arrival, Attribution
from siyu.contacts import service as contacts
from siyu.core.tenancy import bound_workspace
from siyu.messaging.broadcast_models import Broadcast, BroadcastRecipient
from tests.acquisition.factories import ACTOR, acquire, make_code, make_source


def test_a_merge_keeps_one_attribution_with_the_earliest_first_and_latest_latest_touch(db, ws):
    posters, calls = make_source(db, "Posters", type="store_poster"), make_source(db, "Calls", type="phone_call")
    keeper = acquire(db, calls, datetime(2026, 5, 3, tzinfo=UTC), code=make_code(db, calls))
    merged = acquire(db, posters, datetime(2026, 5, 1, tzinfo=UTC), code=make_code(db, posters))
    later = make_code(db, posters)
    db.execute(Attribution.__table__.update().where(Attribution.contact_id == merged).values(
        latest_code_id=later.id, latest_at=datetime(2026, 5, 9, tzinfo=UTC)))
    broadcast = Broadcast(workspace_id=bound_workspace(db), name="Autumn", content={"type": "text", "text": "x"})
    db.add(broadcast)
    db.flush()
    db.add_all([BroadcastRecipient(workspace_id=bound_workspace(db), broadcast_id=broadcast.id, contact_id=c,
                                   status="sent") for c in (keeper, merged)])
    db.flush()

    contacts.merge_contacts(db, contacts.get_contact(db, keeper), contacts.get_contact(db, merged), actor=ACTOR,
                            automatic=False)
    db.expire_all()

    [attribution] = db.execute(select(Attribution)).scalars().all()
    assert attribution.contact_id == keeper
    assert (attribution.first_source_id, attribution.first_at) == (posters.id, datetime(2026, 5, 1, tzinfo=UTC))
    assert (attribution.latest_code_id, attribution.latest_at) == (later.id, datetime(2026, 5, 9, tzinfo=UTC))
    assert db.execute(select(Arrival.contact_id)).scalars().all() == [keeper, keeper]
    assert db.execute(select(BroadcastRecipient.contact_id)).scalars().all() == [keeper]
