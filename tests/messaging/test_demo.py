"""The demo's templates, welcome and keyword replies pass their own checks and answer like a shop would."""

from __future__ import annotations

import random

from rich.progress import Progress

from siyu.channels import service
from siyu.messaging import keywords, welcome
from siyu.messaging.demo import add_demo_messaging
from tests.messaging.conftest import text


def test_demo_replies_answer_prices_and_addresses_and_welcome_on_the_oa(db, ws, oa):
    add_demo_messaging(db, ws, random.Random(1), Progress(disable=True))
    add_demo_messaging(db, ws, random.Random(1), Progress(disable=True))  # a second run adds nothing

    assert welcome.get_welcome(db, oa).enabled
    price = service.receive(db, oa, text("现在多少钱", nickname="小明", key="a")).reply
    assert (price["type"], price["title"]) == ("link", "小明，本周特价来了")
    assert "龙井路" in service.receive(db, oa, text("门店在哪", key="b")).reply["text"]
    assert len(keywords.list_rules(db)) == 4


def test_the_demo_broadcast_ran_through_the_real_pipeline_and_its_report_has_a_shape(db, ws):
    from sqlalchemy import func, select

    from siyu.channels.service import DELIVER, DELIVER_IDEMPOTENT
    from siyu.contacts import segments
    from siyu.contacts import service as contacts
    from siyu.core.models import Job
    from siyu.messaging import broadcast_demo, broadcast_report, broadcasts
    from tests.messaging.conftest import ACTOR

    people = [contacts.create_contact(db, fields={"nickname": f"茶友{i}"}, actor=ACTOR).id for i in range(60)]
    segment = segments.create_segment(db, name=broadcast_demo.SEGMENT, kind="static", actor=ACTOR)
    segments.add_members(db, segment, contact_ids=people, actor=ACTOR)
    for _ in range(2):  # a second run adds nothing
        broadcast_demo.add_demo_broadcast(db, ws, random.Random(3), Progress(disable=True))

    (b,) = broadcasts.list_broadcasts(db)[0]
    assert (b.name, b.status, b.audience_count) == (broadcast_demo.NAME, "done", 60)
    assert b.started_at.astimezone(broadcasts.workspace_tz(db)).hour == 10  # a week ago, 10:00 local time
    counts = broadcast_report.status_counts(db, b)
    assert counts["sent"] + counts["clicked"] + counts["failed"] == 60
    assert counts["clicked"] > 0
    assert counts["failed"] > 0
    assert broadcast_report.reasons(db, b) == [("failed", broadcast_demo.LEFT_THE_APP, counts["failed"])]
    series = broadcast_report.over_time(db, b, broadcasts.workspace_tz(db))
    assert sum(series.sent) == 60 - counts["failed"]
    assert sum(series.clicked) == counts["clicked"]
    (_recipient, message), *_ = broadcast_report.list_recipients(db, b)[0]
    assert message.text == "双十二预售开始了"
    assert message.content["description"].startswith("茶友")  # rendered per person
    assert "/l/" in message.content["url"]  # a tracked link
    waiting = db.execute(select(func.count()).select_from(Job).where(
        Job.kind.in_((DELIVER, DELIVER_IDEMPOTENT)), Job.status == "pending")).scalar_one()
    assert waiting == 0  # nothing is left to post to the stand-in app
    (app,) = service.list_accounts(db, kind="webhook")
    assert app.status == "paused"
