"""Segments: build rules with a live member count, save, load a saved one to change it, delete."""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from dealmail.admin._ui import attempt, db, reading, require_login, table
from dealmail.analytics.customers import count_matching
from dealmail.contacts.queries import counts_by_tag
from dealmail.contacts.segments import create_segment, delete_segment, list_segments
from dealmail.models import CustomerStatus


def _rules(tags: list[str]) -> dict[str, Any]:
    """The rule builder's widgets (outside any form, so the count follows every change)."""
    rules: dict[str, Any] = {}
    left, middle, right = st.columns(3)
    any_of = left.multiselect("Has any of these tags", tags, key="seg_tags_any")
    all_of = middle.multiselect("Has all of these tags", tags, key="seg_tags_all")
    none_of = right.multiselect("Has none of these tags", tags, key="seg_tags_none")
    statuses = left.multiselect(
        "Status", [s.value for s in CustomerStatus if s != CustomerStatus.DELETED], key="seg_status"
    )
    after: date | None = middle.date_input("Opted in on or after", value=None, key="seg_after")
    before: date | None = right.date_input("Opted in before", value=None, key="seg_before")
    attribute = left.text_input("Attribute (an imported column)", key="seg_attr")
    attribute_value = middle.text_input("equals", key="seg_attr_value")
    if any_of:
        rules["tags_any"] = any_of
    if all_of:
        rules["tags_all"] = all_of
    if none_of:
        rules["tags_none"] = none_of
    if statuses:
        rules["status"] = statuses
    if after:
        rules["opted_in_after"] = after.isoformat()
    if before:
        rules["opted_in_before"] = before.isoformat()
    if attribute.strip():
        rules["attrs"] = {attribute.strip(): attribute_value}
    return rules


def _load(name: str, rules: dict[str, Any], tags: list[str]) -> None:
    """on_click: put a saved segment's rules into the builder (before its widgets exist)."""
    state = st.session_state
    known = {tag.casefold(): tag for tag in tags}
    for kind in ("tags_any", "tags_all", "tags_none", "status"):
        value = rules.get(kind, [])
        values = [value] if isinstance(value, str) else list(value)
        if kind != "status":  # as the tag is spelt now (tags match whatever the case)
            values = [known[v.casefold()] for v in values if v.casefold() in known]
        state[f"seg_{kind}"] = values
    for kind, key in (("opted_in_after", "seg_after"), ("opted_in_before", "seg_before")):
        value = rules.get(kind)
        state[key] = date.fromisoformat(str(value)[:10]) if value else None
    attribute, wanted = next(iter((rules.get("attrs") or {"": ""}).items()))
    state["seg_attr"], state["seg_attr_value"] = attribute, "" if wanted is None else str(wanted)
    state["seg_name"], state["seg_replace"] = name, True


def main() -> None:
    require_login()
    st.title("Segments")
    with reading() as session:
        tags = list(counts_by_tag(session))
        rules_of = {segment.name: segment.rules for segment in list_segments(session)}
    if rules_of:
        left, right = st.columns([3, 1])
        chosen = left.selectbox("Change a saved segment", list(rules_of))
        right.button(
            "Load its rules",
            on_click=_load,
            args=(chosen, rules_of.get(chosen, {}), tags),
            key="seg_load_button",
        )
    st.subheader("Build a segment")
    rules = _rules(tags)
    with reading() as session:
        counted = attempt(lambda: count_matching(session, rules))
    if counted is not None:
        cols = st.columns(2)
        cols[0].metric("Customers matching", counted.members)
        cols[1].metric("Of whom a campaign would reach", counted.mailable)
    with st.form("save_segment"):
        name = st.text_input("Segment name", key="seg_name")
        replace = st.checkbox("Replace a segment of that name", key="seg_replace")
        submitted = st.form_submit_button("Save segment", type="primary")
    if submitted:
        with db() as session:
            attempt(
                lambda: create_segment(session, name, rules, replace=replace),
                success=f"Segment {name.strip()!r} saved.",
            )
    st.subheader("Saved segments")
    with reading() as session:
        saved = list_segments(session)
    table(
        [
            {"name": s.name, "rules": str(s.rules), "members": s.members, "reachable": s.mailable}
            for s in saved
        ],
        empty="No segment yet.",
    )
    if saved:
        with st.form("delete_segment"):
            doomed = st.selectbox("Delete a segment", [s.name for s in saved])
            sure = st.checkbox("Yes, delete it", key="seg_delete_sure")
            if st.form_submit_button("Delete segment"):
                if not sure:
                    st.error("Tick the box to confirm.")
                else:
                    with db() as session:
                        attempt(lambda: delete_segment(session, doomed), success="Segment deleted.")


main()
