"""Staging-row building (pure): the fast attribute JSON equals json's, whatever the text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dealmail.contacts.rows import _attribute_encoder, time_reader

COLUMNS = ((1, "City"), (2, 'odd "key"'), (4, "Köln\\n"))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(max_size=8), min_size=0, max_size=6),
    st.sampled_from([COLUMNS, COLUMNS[:1], COLUMNS[1:2]]),  # one column has its own encoder
)
def test_attribute_json_matches_json_module(
    cells: list[str], columns: tuple[tuple[int, str], ...]
) -> None:
    encoded = _attribute_encoder(columns)(cells, len(cells))
    expected = {
        name: cells[i].strip() for i, name in columns if i < len(cells) and cells[i].strip()
    }
    if not expected:
        assert encoded is None
    else:
        assert encoded is not None
        assert json.loads(encoded) == expected


NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1)),
    style=st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y-W%W-%w %H"]),
)
def test_opt_in_time_text_for_sqlite_matches_datetime_formatting(
    moment: datetime, style: str
) -> None:
    text = moment.strftime(style)
    stored = time_reader(NOW, naive_text=True)(text)
    aware = time_reader(NOW, naive_text=False)(text)
    if aware == NOW:  # unreadable or in the future: the import time
        assert stored == NOW.replace(tzinfo=None).isoformat(" ", "microseconds")
    else:
        assert stored == aware.replace(tzinfo=None).isoformat(" ", "microseconds")
    assert aware <= NOW
    assert aware > NOW - timedelta(days=365 * 40)
