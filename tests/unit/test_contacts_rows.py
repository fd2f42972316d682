"""Staging-row building (pure): the fast attribute JSON equals json's, whatever the text."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dealmail.contacts.rows import _attribute_encoder

COLUMNS = ((1, "City"), (2, 'odd "key"'), (4, "Köln\\n"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=8), min_size=0, max_size=6))
def test_attribute_json_matches_json_module(cells: list[str]) -> None:
    encoded = _attribute_encoder(COLUMNS)(cells, len(cells))
    expected = {
        name: cells[i].strip() for i, name in COLUMNS if i < len(cells) and cells[i].strip()
    }
    if not expected:
        assert encoded is None
    else:
        assert encoded is not None
        assert json.loads(encoded) == expected
