"""Demo data of templates, welcome messages and keyword replies for the demo shop."""

from __future__ import annotations

import random
from typing import Any

from rich.progress import Progress
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.messaging import keywords, message_templates, welcome

WELCOME = {"type": "text", "text": "{{ nickname | default('朋友', true) }}，欢迎来到茶与肌！回复「价格」看本周特价。",
           "attachments": [{"type": "link", "title": "新人礼：满 99 减 20", "url": "https://shop.example.com/welcome",
                            "description": "3 天内有效"}]}
TEMPLATES: tuple[tuple[str, list[str], dict[str, Any]], ...] = (
    ("本周特价", ["wechat_oa", "wecom_kf"],
     {"type": "link", "title": "{{ nickname | default('朋友', true) }}，本周特价来了", "url": "https://shop.example.com/deals",
      "description": "龙井、普洱限时 8 折"}),
    ("门店地址", [], {"type": "text", "text": "门店：杭州市西湖区龙井路 1 号，10:00–21:00 营业。"}),
    ("生日祝福", ["sms"], {"type": "sms", "template_code": "SMS_000001", "params": {"name": "{{ name }}"}}),
)


def add_demo_messaging(session: Session, workspace: Workspace, rng: random.Random, progress: Progress) -> None:
    """Templates, keyword replies for every account, and a welcome on each account already configured; what
    an earlier run made is kept as it is."""
    actor = Actor.cli("demo")
    made = {t.name: t for t in message_templates.list_templates(session)}
    for name, kinds, content in TEMPLATES:
        if name not in made:
            made[name] = message_templates.create_template(
                session, values={"name": name, "channels": kinds, "content": content}, actor=actor)
    rules = (
        {"name": "价格", "match_type": "contains", "keywords": ["价格", "多少钱", "特价"], "priority": 10,
         "reply": {"template_id": made["本周特价"].id}},
        {"name": "地址", "match_type": "contains", "keywords": ["地址", "门店", "在哪"], "priority": 20,
         "reply": {"template_id": made["门店地址"].id}},
        {"name": "订单查询", "match_type": "regex", "keywords": [r"^订单\s*\d{6,}$"], "priority": 5,
         "reply": {"type": "text", "text": "收到，客服会在 10 分钟内回复您的订单情况。"}},
        {"name": "下班时间", "match_type": "default", "priority": 100,
         "windows": [{"days": [1, 2, 3, 4, 5, 6, 7], "start": "21:00", "end": "24:00"}],
         "reply": {"type": "text", "text": "客服 10:00–21:00 在线，明早第一时间回复您。"}},
    )
    existing = {r.name for r in keywords.list_rules(session)}
    for values in rules:
        if values["name"] not in existing:
            keywords.create_rule(session, values=values, actor=actor)
    for account in channels.list_accounts(session):
        if account.kind in ("wechat_oa", "wecom") and welcome.get_welcome(session, account) is None:
            welcome.save_welcome(session, account, content=WELCOME, enabled=True, actor=actor)
