"""Every message of the source tree has a real zh_Hans and es translation that keeps its placeholders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from babel.messages.catalog import Catalog

from siyu.core.i18n import translations

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "i18n.py"


def _i18n():
    spec = importlib.util.spec_from_file_location("siyu_i18n_script", _SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_message_is_translated_into_chinese_and_spanish():
    i18n = _i18n()
    template = i18n.extract()

    missing = i18n.problems(template)

    assert len([m for m in template if m.id]) > 100
    assert not missing, "untranslated messages (run scripts/i18n.py, then translate):\n" + "\n".join(missing)


def test_the_check_catches_a_missing_fuzzy_or_placeholder_dropping_translation(tmp_path, monkeypatch):
    i18n = _i18n()
    template = Catalog()
    template.add("Hello %(name)s")
    template.add("Goodbye")
    template.add("Fresh")
    for locale, entries in {
        "zh_Hans": [("Hello %(name)s", "你好", False), ("Goodbye", "再见", True)],
        "es": [("Hello %(name)s", "Hola %(name)s", False), ("Goodbye", "Adiós", False), ("Fresh", "", False)],
    }.items():
        catalog = Catalog(locale=locale.replace("_Hans", ""))
        for msgid, msgstr, fuzzy in entries:
            catalog.add(msgid, msgstr, flags=["fuzzy"] if fuzzy else [])
        path = tmp_path / locale / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True)
        with path.open("wb") as fh:
            from babel.messages.pofile import write_po

            write_po(fh, catalog)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)

    found = i18n.problems(template)

    assert any(line.startswith("zh_Hans: 'Hello %(name)s' changes the placeholders") for line in found)
    assert "zh_Hans: 'Goodbye' is fuzzy" in found
    assert "zh_Hans: 'Fresh' is missing" in found
    assert "es: 'Fresh' has no translation" in found
    assert not any(line.startswith("es: 'Hello") or line.startswith("es: 'Goodbye") for line in found)


def test_runtime_catalogs_translate_and_format():
    assert translations("zh_Hans").gettext("Audit log") == "审计日志"
    assert translations("es").gettext("Audit log") == "Registro de auditoría"
    assert translations("es").ngettext(
        "Too many failed sign-ins. Try again in %(num)d minute.",
        "Too many failed sign-ins. Try again in %(num)d minutes.",
        3,
    ) % {"num": 3} == ("Demasiados inicios de sesión fallidos. Vuelve a intentarlo dentro de 3 minutos.")
