"""The audience picker of the Campaigns form: everyone, a saved segment, or tags."""

from __future__ import annotations

from typing import Any

import streamlit as st

EVERYONE, SEGMENT, TAGS = "Every subscribed customer", "A saved segment", "Customers with tags"


def picker(
    current: dict[str, Any], segments: list[str], tags: list[str], suffix: str = ""
) -> dict[str, Any]:
    """Widgets inside the caller's form; returns the audience rule they describe. `suffix` keeps
    each campaign's widgets apart."""
    kinds = [EVERYONE, SEGMENT, TAGS]
    preset = SEGMENT if current.get("segment") else TAGS if current.get("tags") else EVERYONE
    kind = st.radio(
        "Audience", kinds, index=kinds.index(preset), horizontal=True, key="c_aud" + suffix
    )
    left, middle, right = st.columns([2, 2, 1])
    segment_options = segments or ["(no segment yet)"]
    chosen_segment = current.get("segment")
    segment = left.selectbox(
        "Segment",
        segment_options,
        index=segment_options.index(chosen_segment) if chosen_segment in segment_options else 0,
    )
    chosen_tags = middle.multiselect(
        "Tags",
        tags,
        default=[t for t in current.get("tags") or [] if t in tags],
        key="c_aud_tags" + suffix,
    )
    match = right.radio(
        "Match",
        ["any", "all"],
        index=1 if current.get("match") == "all" else 0,
        key="c_aud_match" + suffix,
    )
    if kind == SEGMENT:
        return {"segment": segment if segments else ""}
    if kind == TAGS:
        return {"tags": chosen_tags, "match": match}
    return {}
