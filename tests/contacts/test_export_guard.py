"""Properties of exports: no CSV cell is a formula, and what is exported reads back as it was."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from siyu.contacts.exports import guard
from siyu.contacts.import_files import open_table
from siyu.contacts.import_mapping import read_row

# Cell text as a contact's field holds it: no NUL, no surrounding blanks, no lone surrogates.
cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40,
).map(str.strip).filter(bool)


@given(cell_text)
def test_a_guarded_cell_never_starts_like_a_formula(value):
    assert not guard(value).startswith(("=", "+", "-", "@", "\t", "\r"))
    assert guard(value).endswith(value)


@given(st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=8))
def test_exported_csv_reads_back_to_the_same_values(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "city"])
    for name, city in rows:
        writer.writerow([guard(name), guard(city)])
    content = ("\ufeff" + buffer.getvalue()).encode("utf-8")

    table = open_table(content, "contacts.csv")
    read = [read_row(number, cells, table.columns, {"name": "name", "city": "city"})
            for number, cells in table.rows()]

    assert table.columns == ["name", "city"]
    assert [(r.fields.get("name"), r.fields.get("city")) for r in read] == rows
