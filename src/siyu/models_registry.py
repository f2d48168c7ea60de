"""Imports every module's tables so metadata (migrations, tests) sees them all."""

from __future__ import annotations

import importlib

# Each module with tables adds its models here, in dependency order.
MODEL_MODULES = (
    "siyu.core.models", "siyu.contacts.models", "siyu.channels.models", "siyu.channels.wechat_oa.models",
    "siyu.channels.chat_archive_models", "siyu.conversations.models", "siyu.messaging.broadcast_models",
    "siyu.channels.ratelimit", "siyu.channels.wecom.models",
)


def import_all_models() -> None:
    """Import every models module once."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
