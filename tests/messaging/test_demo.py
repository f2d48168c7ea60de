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
