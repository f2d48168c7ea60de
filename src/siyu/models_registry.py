"""Imports every module's tables so metadata (migrations, tests) sees them all."""

from __future__ import annotations

import importlib

# Each module with tables adds its models here, in dependency order.
MODEL_MODULES = (
    "siyu.core.models", "siyu.contacts.models", "siyu.channels.models", "siyu.channels.wechat_oa.models",
    "siyu.channels.chat_archive_models", "siyu.conversations.models", "siyu.messaging.models",
    "siyu.messaging.broadcast_models",
    "siyu.channels.ratelimit", "siyu.channels.wecom.models", "siyu.acquisition.models",
    "siyu.acquisition.group_models",
    "siyu.acquisition.poster_models",
)

# Engine-specific objects made by migrations outside the models (full-text indexes), which autogenerate
# and the migrations test leave alone.
ENGINE_OBJECTS: frozenset[str] = frozenset({
    "message_search_fts", "message_search_fts_data", "message_search_fts_idx", "message_search_fts_docsize",
    "message_search_fts_config", "ix_message_search_document", "ix_messages_text_trgm",
})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name` hook: everything but ENGINE_OBJECTS."""
    return name not in ENGINE_OBJECTS


def import_all_models() -> None:
    """Import every models module once."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
