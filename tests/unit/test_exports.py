"""Cell neutralisation and the export writers, without a database."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dealmail.analytics.exports import (
    RedemptionRow,
    neutralise,
    write_csv,
    write_redemptions_xlsx,
)


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+33 6 12", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://e.vil","x")'],
)
def test_formula_triggers_get_an_apostrophe(value: str) -> None:
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", " =x", "", "10%", "'quoted"])
def test_harmless_text_is_kept(value: str) -> None:
    assert neutralise(value) == value


def test_numbers_are_not_text() -> None:
    assert neutralise(-5) == -5
    assert neutralise(Decimal("-1.50")) == Decimal("-1.50")
    assert neutralise(None) is None


def test_csv_writer_neutralises_every_cell() -> None:
    out = io.StringIO()
    assert write_csv(["a", "b"], iter([["=cmd", "ok"], ["x", "@y"]]), out) == 2
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["a", "b"],
        ["'=cmd", "ok"],
        ["x", "'@y"],
    ]


def test_xlsx_writer_never_stores_a_formula(tmp_path: Path) -> None:
    row = RedemptionRow(
        date=date(2026, 1, 2),
        time="10:11:12",
        location="=1+2",
        device="+dev",
        campaign="-camp",
        deal="@deal",
        discount_value=Decimal("2.50"),
        customer="=cmd|' /C calc'!A0",
        voided=True,
    )
    target = tmp_path / "x.xlsx"
    assert write_redemptions_xlsx([row], target) == 1
    workbook = load_workbook(target)
    sheet = workbook.active
    assert sheet is not None
    cells = [cell for line in sheet.iter_rows(min_row=2) for cell in line]
    assert all(cell.data_type != "f" for cell in cells)
    assert [cell.value for cell in cells] == [
        datetime(2026, 1, 2),
        "10:11:12",
        "'=1+2",
        "'+dev",
        "'-camp",
        "'@deal",
        2.5,
        "'=cmd|' /C calc'!A0",
        "yes",
    ]
