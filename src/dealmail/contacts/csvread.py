"""Reading the CSV files people really have, as a stream: encoding, delimiter, records.

Encodings: UTF-8 with or without BOM, UTF-16 (BOM, or NUL pattern), Windows-1252 as the fallback
when the bytes are not UTF-8. Delimiters: comma, semicolon or tab, chosen by which one makes a
consistent table with an email column. Line numbers are physical lines of the file where a
record starts (a quoted line break counts).
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dealmail.contacts.columns import ColumnMap, map_columns
from dealmail.contacts.emails import EmailNormaliser, InvalidEmail, clean_address
from dealmail.errors import InvalidInput

SAMPLE_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t")
_SAMPLE_RECORDS = 50
_CONTROL = bytes(range(0, 9)) + bytes(range(14, 32))


class UnreadableFile(InvalidInput):
    code = "unreadable_csv"


@dataclass(frozen=True)
class FileFormat:
    """What a file turned out to be: shown before an import, used by it."""

    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    header_line: int
    columns: ColumnMap

    def describe(self) -> dict[str, object]:
        return {
            "file": self.path.name,
            "encoding": self.encoding,
            "delimiter": {"\t": "tab"}.get(self.delimiter, self.delimiter),
            "header_line": self.header_line,
            "columns": self.columns.column_names(),
            "attributes": [name for _i, name in self.columns.attributes],
        }


def detect_encoding(path: Path, sample: bytes) -> str:
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\0" in sample:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) // 2
        # ASCII text in UTF-16 without a BOM: every other byte is NUL.
        if odd > 0.4 * half and even < 0.05 * half:
            return "utf-16-le"
        if even > 0.4 * half and odd < 0.05 * half:
            return "utf-16-be"
        raise UnreadableFile(f"{path.name}: a binary file, not CSV text")
    if sum(sample.count(c) for c in _CONTROL) > max(2, len(sample) // 200):
        raise UnreadableFile(f"{path.name}: a binary file, not CSV text")
    return "utf-8" if _is_utf8(path) else "cp1252"


def _is_utf8(path: Path) -> bool:
    """The whole file, in chunks (a fast C decode): a stray byte anywhere means Windows-1252."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _decode_sample(sample: bytes, encoding: str) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample)


def _records(lines: Iterator[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(physical start line, cells) for each record that is not blank."""
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    last = 0
    for cells in reader:
        start, last = last + 1, reader.line_num
        if cells and any(cells):
            yield start, cells


def _sample_table(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    lines = io.StringIO(text, newline="")
    rows: list[tuple[int, list[str]]] = []
    try:
        for record in _records(iter(lines), delimiter):
            rows.append(record)
            if len(rows) > _SAMPLE_RECORDS:
                break
    except csv.Error:
        pass
    # The sample may end inside a record: keep only records followed by another one.
    return rows[:-1] if len(rows) > 1 else rows


def _score(rows: list[tuple[int, list[str]]], delimiter: str) -> tuple[int, float, int]:
    if not rows:
        return (0, 0.0, 0)
    header = rows[0][1]
    has_email = int("email" in map_columns(header).fields)
    body = rows[1:]
    same_width = sum(1 for _line, cells in body if len(cells) == len(header))
    consistency = same_width / len(body) if body else 1.0
    return (has_email, consistency if len(header) > 1 else 0.0, len(header))


def detect_format(path: Path, overrides: dict[str, str | None] | None = None) -> FileFormat:
    """Encoding, delimiter, header and column mapping of a file, without importing it."""
    try:
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None
    if not sample.strip(b" \t\r\n\0" + codecs.BOM_UTF8):
        raise UnreadableFile(f"{path.name}: the file is empty")
    encoding = detect_encoding(path, sample)
    text = _decode_sample(sample, encoding)
    if "\0" in text:
        raise UnreadableFile(f"{path.name}: a binary file, not CSV text")
    tables = {d: _sample_table(text, d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: _score(tables[d], d))
    rows = tables[delimiter]
    if not rows:
        raise UnreadableFile(f"{path.name}: no CSV header found")
    header_line, header = rows[0]
    columns = map_columns(header, overrides)
    address_at = _address_column(header)
    if "email" not in columns.fields and address_at is not None and not overrides:
        # No header row, just data (a plain list of addresses): name the columns by number.
        header = [f"column {i + 1}" for i in range(max(len(cells) for _l, cells in rows))]
        header_line -= 1
        columns = map_columns(header, {"email": header[address_at]})
    if "email" not in columns.fields:
        shown = ", ".join(h.strip() for h in header if h.strip())[:300]
        raise UnreadableFile(
            f"{path.name}: no email column found (columns: {shown}); "
            "name one with --map email=COLUMN"
        )
    return FileFormat(path, encoding, delimiter, header, header_line, columns)


def _address_column(cells: list[str]) -> int | None:
    for i, cell in enumerate(cells):
        try:
            EmailNormaliser().normalise(clean_address(cell))
        except InvalidEmail:
            continue
        return i
    return None


def read_records(
    fmt: FileFormat, on_bytes: Callable[[int], None] | None = None, every: int = 20_000
) -> Iterator[tuple[int, list[str]]]:
    """Data records after the header, NFC-normalised, streamed; `on_bytes(position)` now and
    then. csv errors become UnreadableFile naming the line."""
    with fmt.path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=fmt.encoding, errors="replace", newline="")
        # NFC per physical line is exact: nothing composes across a line break.
        lines = map(partial(unicodedata.normalize, "NFC"), text)
        # _records' loop, inlined: a generator layer less on the per-row hot path.
        reader = csv.reader(
            lines, delimiter=fmt.delimiter, quotechar='"', doublequote=True, strict=False
        )
        header_line = fmt.header_line
        countdown = every
        line = last = 0
        try:
            for cells in reader:
                start, last = last + 1, reader.line_num
                if not (cells and any(cells)):
                    continue
                line = start
                if line <= header_line:
                    continue
                yield line, cells
                countdown -= 1
                if not countdown:
                    countdown = every
                    if on_bytes is not None:
                        on_bytes(raw.tell())
        except csv.Error as exc:
            raise UnreadableFile(f"{fmt.path.name}: after line {line}: {exc}") from None
        if on_bytes is not None:
            on_bytes(raw.tell())
