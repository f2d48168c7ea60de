"""Translations: gettext catalogs (.po) for English, 简体中文 and Español, loaded without a build step."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES: tuple[str, ...] = ("en", "zh_Hans", "es")
LOCALE_NAMES = {"en": "English", "zh_Hans": "简体中文", "es": "Español"}
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "messages"


def po_path(locale: str) -> Path:
    """Where a locale's catalog lives."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of a locale (English is the source language and needs none)."""
    path = po_path(locale)
    if locale == DEFAULT_LOCALE or not path.exists():
        return NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale.replace("_Hans", ""))
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


def negotiate(accept_language: str | None) -> str:
    """Pick one of our locales from an Accept-Language header."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_Hans"
        if tag.startswith("es"):
            return "es"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


def gettext(locale: str, message: str) -> str:
    """Translate one message."""
    return translations(locale).gettext(message)
