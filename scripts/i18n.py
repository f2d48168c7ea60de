"""Extract translatable messages into messages.pot and merge them into each locale's messages.po.

    uv run python scripts/i18n.py            extract + update every catalog
    uv run python scripts/i18n.py --check    exit 1 listing messages without a zh_Hans or es translation

New messages arrive in the .po files with an empty msgstr; translate them there (never fuzzy: the
suite refuses fuzzy entries because the runtime ignores them).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "src" / "siyu" / "locale"
POT = LOCALE_DIR / "messages.pot"
TRANSLATED = ("zh_Hans", "es")
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


def _only_src(dirpath: str) -> bool:
    rel = Path(dirpath).resolve().relative_to(ROOT).as_posix()
    name = Path(dirpath).name
    return (rel == "." or rel == "src" or rel.startswith("src/")) and not name.startswith((".", "_"))


def extract() -> Catalog:
    """Every message marked in the source tree, as a template catalog."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    catalog = Catalog(
        project="siyu",
        domain="messages",
        charset="utf-8",
        copyright_holder="siyu contributors",
        msgid_bugs_address="",
        version=_version(),
    )
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, directory_filter=_only_src, strip_comment_tags=True
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _version() -> str:
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def _read(path: Path, locale: str) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale.replace("_Hans", ""))


def update(template: Catalog) -> None:
    """Write the template and merge it into every locale's catalog (no fuzzy guesses)."""
    POT.parent.mkdir(parents=True, exist_ok=True)
    with POT.open("wb") as fh:
        write_po(fh, template, width=100, omit_header=False)
    for locale in TRANSLATED:
        path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            catalog = _read(path, locale)
        else:
            catalog = Catalog(
                locale=locale.replace("_Hans", ""),
                project="siyu",
                domain="messages",
                copyright_holder="siyu contributors",
                version=template.version,
            )
        catalog.update(template, no_fuzzy_matching=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, ignore_obsolete=True)


def _strings(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def problems(template: Catalog) -> list[str]:
    """One line per message that lacks a usable translation in some locale, or drops a placeholder."""
    found: list[str] = []
    for locale in TRANSLATED:
        path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
        catalog = _read(path, locale) if path.exists() else Catalog(locale=locale.replace("_Hans", ""))
        for msg in template:
            if not msg.id:
                continue
            found.extend(_check(locale, msg, catalog.get(msg.id, context=msg.context)))
    return found


def _check(locale: str, msg: Message, translated: Message | None) -> list[str]:
    ids = _strings(msg.id)
    label = f"{locale}: {ids[0]!r}"
    if translated is None:
        return [f"{label} is missing"]
    if translated.fuzzy:
        return [f"{label} is fuzzy"]
    strs = _strings(translated.string)
    if not strs or not all(s.strip() for s in strs):
        return [f"{label} has no translation"]
    wanted = set(_PLACEHOLDER.findall(" ".join(ids)))
    for s in strs:
        kept = set(_PLACEHOLDER.findall(s))
        if kept != wanted:
            return [f"{label} changes the placeholders {sorted(wanted)} into {sorted(kept)}"]
    return []


def main(argv: list[str] | None = None) -> int:
    """Extract and update, or check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report untranslated messages")
    args = parser.parse_args(argv)
    template = extract()
    if not args.check:
        update(template)
        print(f"{len(template)} messages → {POT.relative_to(ROOT)} and {', '.join(TRANSLATED)}")
    missing = problems(template)
    for line in missing:
        print(line, file=sys.stderr)
    return 1 if (missing and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
