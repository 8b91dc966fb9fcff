"""CSV documents of a search or a register: RFC 4180 quoting, UTF-8 with a byte-order mark (spreadsheets then read
the accents right), and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection"); tab and carriage return
# too, since some spreadsheets drop them and then read what follows.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """The text of one cell, neutralised: a leading apostrophe keeps a formula as plain text."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, bool):
        text = "oui" if value else "non"
    elif isinstance(value, list | tuple):
        text = ", ".join(cell(v) for v in value)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_document(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode()
