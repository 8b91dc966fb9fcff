"""The desk's CSV: RFC 4180 quoting, a byte-order mark, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from journal.desk.csv_export import cell, csv_document


@pytest.mark.parametrize("text", ["=1+1", "+33 1 23", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_that_a_spreadsheet_would_compute_is_kept_as_text(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize(("value", "expected"), [
    (None, ""), ("Parvis nord", "Parvis nord"), (12, "12"), (True, "oui"), (["a", "=b"], "a, '=b"),
    (datetime(2026, 12, 3, 5, 30, tzinfo=UTC), "2026-12-03T05:30:00+00:00"),
])
def test_values_become_plain_cells(value: object, expected: str) -> None:
    assert cell(value) == expected


def test_the_document_quotes_separators_quotes_and_line_breaks() -> None:
    body = csv_document(["Motif", "Détails"], [['dit "stop", puis\nrien', "=cmd|' /C calc'!A0"]])
    text = body.decode("utf-8")
    assert text.startswith("\ufeffMotif,Détails\r\n")
    assert list(csv.reader(io.StringIO(text[1:]))) == [
        ["Motif", "Détails"], ['dit "stop", puis\nrien', "'=cmd|' /C calc'!A0"]]
