"""Point the process-wide settings, engine and sessions at a database of a test's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support import fresh_database


def _clear_caches() -> None:
    from siyu.core.db import get_engine, get_sessionmaker
    from siyu.settings import get_settings

    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_sessionmaker.cache_clear()
    get_engine.cache_clear()
    get_settings.cache_clear()


@contextmanager
def configured_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated database that SIYU_DATABASE_URL (and so every CLI command) points at."""
    with fresh_database() as url:
        monkeypatch.setenv("SIYU_DATABASE_URL", url)
        _clear_caches()
        try:
            yield url
        finally:
            _clear_caches()
