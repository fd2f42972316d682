"""Reading CSV files as people have them: encodings, delimiters, line breaks, bad files."""

from __future__ import annotations

import codecs
import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealmail.contacts.csvread import UnreadableFile, detect_format, read_records
from dealmail.contacts.rows import staged_rows
from dealmail.errors import DomainError
from dealmail.models import utcnow

TABLE = (
    "Email;Vorname;Nachname;Stadt\r\n"
    "anna@example.de;Anna;Müller;Köln\r\n"
    "zoë@example.fr;Zoë;Lefèvre;Lyon\r\n"
)


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16"),
        ("utf-16-le", b"", "utf-16-le"),
        ("cp1252", b"", "cp1252"),
    ],
)
def test_encodings(tmp_path: Path, encoding: str, bom: bytes, expected: str) -> None:
    path = tmp_path / "list.csv"
    text = TABLE if encoding != "cp1252" else TABLE.replace("zoë@", "zoe@")
    path.write_bytes(bom + text.encode(encoding))
    fmt = detect_format(path)
    assert fmt.encoding == expected
    assert fmt.delimiter == ";"
    records = list(read_records(fmt))
    assert records[0] == (2, ["anna@example.de", "Anna", "Müller", "Köln"])
    assert records[1][1][1:3] == ["Zoë", "Lefèvre"]


def test_windows_1252_detected_even_when_the_odd_byte_comes_late(tmp_path: Path) -> None:
    rows = "".join(f"user{i}@example.com,Name{i}\r\n" for i in range(5000))
    path = tmp_path / "late.csv"
    path.write_bytes(("email,name\r\n" + rows + "x@example.com,Ren\u00e9\r\n").encode("cp1252"))
    fmt = detect_format(path)
    assert fmt.encoding == "cp1252"
    assert list(read_records(fmt))[-1][1] == ["x@example.com", "René"]


@pytest.mark.parametrize(("delimiter", "name"), [(",", ","), (";", ";"), ("\t", "tab")])
def test_delimiters(tmp_path: Path, delimiter: str, name: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        delimiter.join(["E-mail", "First name", "Notes"])
        + "\n"
        + delimiter.join(["a@example.com", "Ann", '"x, y; z"'])
        + "\n",
        encoding="utf-8",
    )
    fmt = detect_format(path)
    assert fmt.describe()["delimiter"] == name
    assert [cells for _line, cells in read_records(fmt)] == [["a@example.com", "Ann", "x, y; z"]]


def test_physical_line_numbers_count_quoted_breaks_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_bytes(
        b'\r\nemail,note\r\na@example.com,"two\r\nlines"\r\n\r\n,,\r\nb@example.com,x\rc@example.com\n'
    )
    fmt = detect_format(path)
    assert fmt.header_line == 2
    assert [(line, cells[0]) for line, cells in read_records(fmt)] == [
        (3, "a@example.com"),
        (7, "b@example.com"),
        (8, "c@example.com"),
    ]


def test_ragged_rows_are_read(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("email,first,last\na@example.com\nb@example.com,B,C,extra,more\n")
    fmt = detect_format(path)
    rows = list(
        staged_rows(fmt, utcnow(), first_seq=0, naive_times=True, invalid=_fail, tags_out=[])
    )
    assert [(r[1], r[4], r[5]) for r in rows] == [
        ("a@example.com", None, None),
        ("b@example.com", "B", "C"),
    ]


def _fail(file: str, line: int, reason: str) -> None:
    raise AssertionError(f"{file}:{line}: {reason}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\r\n\r\n  \r\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 40, "binary"),
        (bytes(range(256)) * 20, "binary"),
        (b"name,city\r\nAnn,Lyon\r\n", "no email column"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"\x01\x02" * 300, "binary"),
    ],
)
def test_files_that_are_not_csv_say_so(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=message):
        detect_format(path)


def test_missing_file_is_a_domain_error(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        detect_format(tmp_path / "nope.csv")


def _consume(path: Path) -> None:
    """Everything an import does to a file before the database."""
    fmt = detect_format(path)
    for _ in staged_rows(
        fmt, utcnow(), first_seq=0, naive_times=True, invalid=lambda *a: None, tags_out=[]
    ):
        pass


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_raise_anything_but_a_domain_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.csv"
    path.write_bytes(data)
    with contextlib.suppress(DomainError):
        _consume(path)


cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["a@example.com", "B@Example.COM ", "bad@", '"quoted, cell"', "x\r\ny", ""]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.lists(
        st.sampled_from(["email", "E-Mail", "first name", "Tags", "OPTIN_TIME", "Status", "x"]),
        min_size=1,
        max_size=5,
    ),
    rows=st.lists(st.lists(cells, max_size=6), max_size=8),
    delimiter=st.sampled_from([",", ";", "\t"]),
    quote_all=st.booleans(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_generated_tables_never_raise_anything_but_a_domain_error(
    tmp_path: Path,
    header: list[str],
    rows: list[list[str]],
    delimiter: str,
    quote_all: bool,
    encoding: str,
    newline: str,
) -> None:
    def render(row: list[str]) -> str:
        if quote_all:
            return delimiter.join('"' + c.replace('"', '""') + '"' for c in row)
        return delimiter.join(row)

    text = newline.join(render(r) for r in [header, *rows]) + newline
    path = tmp_path / "generated.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    with contextlib.suppress(DomainError):
        _consume(path)


def test_a_plain_list_of_addresses_needs_no_header(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("ann@example.com;Ann\nbob@example.com;Bob\n")
    fmt = detect_format(path)
    assert fmt.columns.column_names() == {"email": ["column 1"]}
    assert [line for line, _cells in read_records(fmt)] == [1, 2]
