"""Demo data of the conversations module: the sensitive-word rules a Chinese shop starts with.

Rules are found by name, so a second run adds nothing twice. Messages and conversations come from the
channels' demo (a message received or sent through the ORM is indexed and checked on its own).
"""

from __future__ import annotations

import random

from rich.progress import Progress
from sqlalchemy.orm import Session

from siyu.conversations import sensitive
from siyu.core.audit import Actor
from siyu.core.models import Workspace

ACTOR = Actor.cli("demo")
RULES: tuple[dict[str, object], ...] = (
    {"name": "绝对化用语 Absolute claims", "category": "forbidden_claim", "severity": "high", "direction": "out",
     "words": ["最便宜", "第一", "100%有效", "最好", "国家级", "万能"]},
    {"name": "过度营销 Over-marketing", "category": "over_marketing", "severity": "medium", "direction": "out",
     "words": ["限时秒杀仅剩", "不买后悔", "错过再等一年"]},
    {"name": "竞品 Competitors", "category": "competitor", "severity": "low", "direction": "both",
     "words": ["某宝", "拼夕夕"]},
    {"name": "辱骂 Abuse", "category": "abuse", "severity": "high", "direction": "both",
     "words": ["骗子", "垃圾", "scam"]},
)


def add_demo_rules(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """The starter sensitive-word rules, once."""
    existing = {rule.name for rule in sensitive.list_rules(session)}
    for values in RULES:
        if values["name"] not in existing:
            sensitive.create_rule(session, values=dict(values), actor=ACTOR)
