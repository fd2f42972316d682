"""CSV export that a spreadsheet cannot turn into a formula (CSV injection)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would evaluate gets a leading apostrophe (OWASP's advice)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def write_csv(rows: Iterable[list[str]], out: TextIO) -> int:
    """Writes every row neutralised; returns the number of data rows (after the header)."""
    writer = csv.writer(out, lineterminator="\r\n")
    count = -1
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
        count += 1
    return max(count, 0)
