"""`siyu contacts import|export` against a real database: chunks committed, refused rows listed, round trip."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from siyu.contacts.models import Contact, ContactImport, Identity
from siyu.core.models import AuditEntry
from tests.cli_support import configured_database
from tests.test_cli import siyu


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    with configured_database(monkeypatch) as url:
        made = siyu("workspace", "create", "Acme")
        assert made.exit_code == 0, made.output
        yield url, made.output.split("#")[1].split()[0]


def _count(url: str, model: type) -> int:
    engine = create_engine(url)
    with Session(engine) as session:
        n = session.execute(select(func.count()).select_from(model)).scalar_one()
    engine.dispose()
    return n


def test_import_prints_the_summary_and_the_refused_rows_and_writes_them_to_a_file(workspace, tmp_path):
    url, ws = workspace
    file = tmp_path / "客户.csv"
    file.write_bytes("姓名,手机,备注\n张三,13800138000,a\n坏行,12345,b\n李四,13900139000,c\n".encode("gbk"))
    errors = tmp_path / "errors.csv"

    result = siyu("contacts", "import", str(file), "--workspace", ws, "--map", "备注=ignore",
                  "--errors-csv", str(errors))

    assert result.exit_code == 0, result.output
    assert "3 rows; 2 contacts were created, 0 were updated, 1 rows refused" in result.output
    assert "手机" in result.output
    assert "12345" in result.output
    rows = list(csv.reader(errors.open(encoding="utf-8-sig")))
    assert rows[0][:3] == ["row", "column", "problem"]
    assert rows[1][:2] == ["3", "手机"]
    assert _count(url, Contact) == 2
    engine = create_engine(url)
    with Session(engine) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "contacts.import")).scalar_one()
        assert audit.actor_type == "cli"
        assert audit.after["created"] == 2
    engine.dispose()


def test_dry_run_writes_no_contact(workspace, tmp_path):
    url, ws = workspace
    file = tmp_path / "people.csv"
    file.write_text("phone\n13800138000\n13800138000\n")

    result = siyu("contacts", "import", str(file), "--workspace", ws, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "1 contacts would be created, 1 would be updated" in result.output
    assert _count(url, Contact) == 0
    assert _count(url, ContactImport) == 1


def test_bad_mapping_and_unknown_workspace_exit_2_with_the_field(workspace, tmp_path):
    _, ws = workspace
    file = tmp_path / "people.csv"
    file.write_text("name,phone\nAna,13800138000\n")

    unknown_target = siyu("contacts", "import", str(file), "--workspace", ws, "--map", "phone=telephone")
    unknown_workspace = siyu("contacts", "import", str(file), "--workspace", "999")

    assert unknown_target.exit_code == 2
    assert "mapping.phone" in unknown_target.output
    assert unknown_workspace.exit_code == 2


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_the_file_again_changes_no_one(workspace, tmp_path, fmt):
    url, ws = workspace
    source = tmp_path / "people.csv"
    source.write_text("name,phone,email,openid,tags\n"
                      "=Ana,13800138000,ana@example.com,o-1,\"vip, interest/tea\"\n"
                      "Ben,13900139000,,,\n")
    assert siyu("contacts", "import", str(source), "--workspace", ws).exit_code == 0
    exported = tmp_path / f"out.{fmt}"

    result = siyu("contacts", "export", "--workspace", ws, "--format", fmt, "-o", str(exported))
    again = siyu("contacts", "import", str(exported), "--workspace", ws)

    assert result.exit_code == 0, result.output
    assert "2 contacts written" in result.output
    assert again.exit_code == 0, again.output
    assert "0 contacts were created, 2 were updated, 0 rows refused" in again.output
    assert _count(url, Contact) == 2
    assert _count(url, Identity) == 4
    engine = create_engine(url)
    with Session(engine) as session:
        assert session.execute(select(Contact.name).order_by(Contact.id)).scalars().all() == ["=Ana", "Ben"]
    engine.dispose()


def test_export_refuses_an_unknown_format(workspace, tmp_path):
    _, ws = workspace

    result = siyu("contacts", "export", "--workspace", ws, "--format", "pdf", "-o", str(tmp_path / "x.pdf"))

    assert result.exit_code == 2
    assert "format" in result.output
