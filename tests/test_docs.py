"""The documents that are generated or enumerate the code fail the suite when they go stale."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import typer.main

from siyu.cli import app
from siyu.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _gen_permissions():
    spec = importlib.util.spec_from_file_location("gen_permissions", ROOT / "scripts" / "gen_permissions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(group: Any, prefix: str = "siyu") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            names += _commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_permissions_doc_matches_the_matrix():
    gen = _gen_permissions()

    assert gen.DOC.read_text(encoding="utf-8") == gen.render(), (
        "docs/permissions.md is stale: run `uv run python scripts/gen_permissions.py`"
    )


def test_permissions_doc_has_a_row_per_module_and_a_column_per_role():
    from siyu.core.permissions import MATRIX, MODULES, Role

    text = _gen_permissions().render()

    header = next(line for line in text.splitlines() if line.startswith("| module |"))
    assert header.split("|")[2:-1] == [f" {r.value} " for r in Role]
    for module in MODULES:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{module}` |"))
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert ["write" in c if c != "—" else None for c in cells] == [
            None if MATRIX[r].get(module) is None else MATRIX[r][module] == "write" for r in Role
        ]


def test_readme_starts_with_the_two_commands():
    first_block = README.split("```")[1]

    assert "make run" in first_block
    assert "make test" in first_block
    assert README.index("make run") < README.index("## What siyu is")


def test_readme_names_every_cli_command():
    commands = _commands(typer.main.get_command(app))

    assert len(commands) >= 10
    missing = [c for c in commands if f"`{c}" not in README]
    assert not missing, f"README's command table lacks {missing}"


def test_readme_names_every_setting():
    names = [f"SIYU_{name.upper()}" for name in Settings.model_fields]

    missing = [n for n in names if f"`{n}`" not in README]
    assert not missing, f"README's configuration table lacks {missing}"


def test_every_adr_has_context_decision_and_consequences():
    adrs = sorted((ROOT / "docs" / "adr").glob("[0-9][0-9][0-9][0-9]-*.md"))

    assert len(adrs) >= 6
    for number, path in enumerate(adrs, start=1):
        text = path.read_text(encoding="utf-8")
        assert path.name.startswith(f"{number:04d}-"), f"ADR numbers have a gap before {path.name}"
        assert re.match(rf"# {number}\. \S", text), f"{path.name} should start with '# {number}. <title>'"
        for section in ("## Context", "## Decision", "## Consequences"):
            assert section in text, f"{path.name} lacks {section}"


def test_agents_md_is_the_contributing_guide():
    agents, contributing = ROOT / "AGENTS.md", ROOT / "CONTRIBUTING.md"

    assert agents.read_text(encoding="utf-8") == contributing.read_text(encoding="utf-8")


def test_readme_lists_every_module_of_the_console_nav():
    from siyu.console.nav import PRODUCT_MODULES

    table = README.split("## Modules", 1)[1].split("\n## ", 1)[0]

    missing = [m.key for m in PRODUCT_MODULES if f"| `{m.key}` | {m.title} |" not in table]
    assert not missing, f"README's module table lacks {missing}"


def test_the_contacts_guide_follows_the_code():
    from siyu.contacts.consent import CHANNELS
    from siyu.contacts.identities import IDENTITY_TYPES
    from siyu.contacts.lifecycle import DEFAULT_RULES, STAGES
    from siyu.contacts.service import DEFAULT_ONE_PERSON_KEYS

    text = (ROOT / "docs" / "contacts.md").read_text(encoding="utf-8")
    stages = text.split("## Lifecycle", 1)[1].split("\n## ", 1)[0]

    assert [s for s in STAGES if f"| {s} |" not in stages] == []
    assert f"at least {DEFAULT_RULES['customer_orders']} paid order" in stages
    assert f"at least {DEFAULT_RULES['repeat_orders']} paid orders" in stages
    assert f"nothing done for {DEFAULT_RULES['dormant_days']} days" in stages
    assert f"nothing done for {DEFAULT_RULES['churned_days']} days" in stages
    assert [t for t in (*IDENTITY_TYPES, *DEFAULT_ONE_PERSON_KEYS, *CHANNELS) if f"`{t}`" not in text] == []
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / "docs" / link).exists(), f"docs/contacts.md links to a missing {link}"
    assert "(segment-rules.md)" in text
