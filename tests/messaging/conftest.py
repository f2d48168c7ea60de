"""Fixtures of the messaging tests: recording adapters with the kinds and rules of the OA, WeCom and
WeChat Customer Service, and an account of each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from siyu.channels import base, service
from siyu.channels.base import Inbound, PlatformRules, SendResult
from siyu.core.audit import Actor
from tests.channels.conftest import _person_resolver, frozen_now, run_jobs, ws

__all__ = ["_person_resolver", "frozen_now", "run_jobs", "ws"]
ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


class Recording:
    """Stands in for a channel's adapter: records what it is asked to send."""

    label = "Recording"
    fields = ()
    accepts_idempotency_key = False

    def __init__(self, kind: str, rules: PlatformRules) -> None:
        self.kind, self.rules = kind, rules
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def validate_config(self, config, secrets) -> None:
        return None

    async def check_connection(self, account) -> str:
        return "ok"

    async def send(self, account, address, content, *, idempotency_key) -> SendResult:
        self.sent.append((address, dict(content)))
        return SendResult(external_id=f"ext-{len(self.sent)}")


KINDS = {
    "wechat_oa": PlatformRules(identity_type="wechat_openid", consent_channel="wechat_oa",
                               reply_window_hours=48, window_sends=5,
                               content_types=("text", "link", "image", "miniprogram")),
    "wecom": PlatformRules(identity_type="wecom_external_userid", consent_channel="wecom",
                           content_types=("text", "link", "image", "miniprogram")),
    "wecom_kf": PlatformRules(identity_type="wechat_openid", consent_channel=None,
                              content_types=("text", "link", "image", "miniprogram")),
}


@pytest.fixture
def adapters() -> Iterator[dict[str, Recording]]:
    before = {kind: base.adapter_for(kind) for kind in KINDS}
    made = {kind: Recording(kind, rules) for kind, rules in KINDS.items()}
    for adapter in made.values():
        base.register_adapter(adapter)
    yield made
    for kind, previous in before.items():
        if previous is None:
            base._ADAPTERS.pop(kind, None)
        else:
            base.register_adapter(previous)


def make_account(db, kind: str, name: str | None = None):
    return service.create_account(db, kind=kind, name=name or f"{kind} account", config={}, secrets={},
                                  actor=ACTOR)


@pytest.fixture
def oa(db, ws, adapters):
    return make_account(db, "wechat_oa", "Shop OA")


def follow(sender: str = "o-1", key: str = "f1", nickname: str | None = "小明", **details: Any) -> Inbound:
    return Inbound(dedupe_key=key, sender=sender, kind="event", event="joined", details=details, nickname=nickname)


def text(said: str, sender: str = "o-1", key: str = "m1", **kw: Any) -> Inbound:
    return Inbound(dedupe_key=key, sender=sender, kind="text", text=said, external_id=key, **kw)
