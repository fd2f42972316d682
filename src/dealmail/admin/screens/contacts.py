"""Contacts: upload a CSV/TSV, check what was detected, fix the mapping, dry run, import;
find a customer; export."""

from __future__ import annotations

import io
import secrets
import shutil
from pathlib import Path
from typing import Any

import streamlit as st

from dealmail.admin import customers_view
from dealmail.admin._ui import attempt, db, reading, require_login, settings, table
from dealmail.contacts.columns import FIELD_HEADERS
from dealmail.contacts.csvread import FileFormat
from dealmail.contacts.export import write_csv
from dealmail.contacts.importer import ImportReport, import_contacts, inspect_files
from dealmail.contacts.queries import counts_by_tag, export_rows
from dealmail.contacts.segments import list_segments
from dealmail.models import CustomerStatus

UPLOAD_KEY = "contacts_upload"
ROUND_KEY = "contacts_upload_round"
NO_COLUMN = "(not in this file)"
ANY = "(any)"
FIELD_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
    "tags": "Tags",
    "opt_in_time": "Opt-in time",
    "opt_in_ip": "Opt-in IP",
    "consent": "Consent / status",
    "unsubscribed_at": "Unsubscribed at",
    "cleaned_at": "Cleaned (bounced) at",
}
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _saved_upload(uploaded: Any) -> Path:
    """The upload as a file under its own name (the import records `import:<file name>`)."""
    held = st.session_state.get(UPLOAD_KEY)
    if held and held[0] == uploaded.file_id and Path(held[1]).exists():
        return Path(held[1])
    if held:
        shutil.rmtree(Path(held[1]).parent, ignore_errors=True)
    # Inside the data directory (not /tmp): an upload holds personal data.
    folder = settings().resolved_data_dir / "uploads" / secrets.token_hex(8)
    folder.mkdir(parents=True, mode=0o700)
    path = folder / Path(uploaded.name).name
    path.write_bytes(uploaded.getvalue())
    st.session_state[UPLOAD_KEY] = (uploaded.file_id, str(path))
    st.session_state.pop("contacts_dry_run", None)
    return path


def _mapping(detected: FileFormat, file_id: str) -> dict[str, str | None]:
    """One picker per field, preset to what was detected; returns only the changes."""
    header = [h for h in detected.header if h.strip()]
    found = detected.columns.column_names()
    overrides: dict[str, str | None] = {}
    columns = st.columns(4)
    for index, field in enumerate(FIELD_HEADERS):
        current = found.get(field, [])
        options = [NO_COLUMN, *header]
        preset = options.index(current[0]) if current and current[0] in options else 0
        chosen = columns[index % 4].selectbox(
            FIELD_LABELS.get(field, field.replace("_", " ").capitalize()),
            options,
            index=preset,
            key=f"map_{field}_{file_id}",
        )
        if chosen != options[preset]:
            overrides[field] = None if chosen == NO_COLUMN else chosen
    return overrides


def _report(report: ImportReport) -> None:
    cols = st.columns(6)
    cols[0].metric("Rows", report.rows)
    cols[1].metric("New", report.created)
    cols[2].metric("Updated", report.updated)
    cols[3].metric("Duplicates merged", report.merged_duplicates)
    cols[4].metric(
        "Skipped (consent / suppressed)", report.skipped_consent + report.skipped_suppressed
    )
    cols[5].metric("Invalid", report.invalid)
    if report.invalid_rows:
        st.markdown("**Invalid rows**")
        table(report.invalid_rows)


def _import_section() -> None:
    st.subheader("Import customers")
    uploaded = st.file_uploader(
        "A CSV or TSV file (spreadsheet, Mailchimp, Shopify, Square...)",
        type=["csv", "tsv", "txt"],
        # A new key after each import empties the uploader, so the same file is not offered again.
        key=f"contacts_file:{st.session_state.get(ROUND_KEY, 0)}",
    )
    if uploaded is None:
        return
    path = _saved_upload(uploaded)
    first = attempt(lambda: inspect_files([path])[0])
    if first is None:
        return
    st.markdown(
        f"Detected: encoding **{first.encoding}**, delimiter "
        f"**{DELIMITERS.get(first.delimiter, repr(first.delimiter))}**, "
        f"header on line {first.header_line}."
    )
    st.markdown("**Columns** (change a field's column if it was guessed wrong)")
    overrides = _mapping(first, uploaded.file_id)
    detected = attempt(lambda: inspect_files([path], overrides)[0]) if overrides else first
    if detected is None:
        return
    if detected.columns.attributes:
        names = ", ".join(name for _i, name in detected.columns.attributes)
        st.caption(f"Kept as customer attributes: {names}")
    tags_text = st.text_input(
        "Tag every imported customer with (comma-separated)", key="import_tags"
    )
    tags = [t.strip() for t in tags_text.split(",") if t.strip()]
    signature = (uploaded.file_id, tuple(sorted(overrides.items(), key=str)), tuple(tags))
    left, right = st.columns(2)
    if left.button("Dry run (changes nothing)", key="contacts_dry_run_button"):
        with db() as session:
            report = attempt(
                lambda: import_contacts(
                    session, [path], tags=tags, overrides=overrides, dry_run=True
                )
            )
        if report is not None:
            st.session_state["contacts_dry_run"] = (signature, report)
    dry = st.session_state.get("contacts_dry_run")
    if dry is None or dry[0] != signature:
        right.button("Import", disabled=True, key="contacts_import_disabled", help="Dry run first")
        return
    st.markdown("**Dry run**")
    _report(dry[1])
    if right.button("Import", type="primary", key="contacts_import_button"):
        with db() as session:
            report = attempt(
                lambda: import_contacts(session, [path], tags=tags, overrides=overrides)
            )
        if report is not None:
            st.session_state.pop("contacts_dry_run", None)
            shutil.rmtree(path.parent, ignore_errors=True)
            st.session_state.pop(UPLOAD_KEY, None)
            st.session_state[ROUND_KEY] = st.session_state.get(ROUND_KEY, 0) + 1
            st.session_state["dealmail_flash"] = (
                f"Imported: {report.created} new, {report.updated} updated, "
                f"{report.invalid} invalid rows."
            )
            st.rerun()


def _export_section() -> None:
    with reading() as session:
        tags = list(counts_by_tag(session))
        segments = [segment.name for segment in list_segments(session)]
    st.markdown("Customers with their tags and consent, as CSV (formula-safe for spreadsheets).")
    cols = st.columns(3)
    status = cols[0].selectbox(
        "Status", [ANY, *(s.value for s in CustomerStatus)], key="export_status"
    )
    tag = cols[1].selectbox("Tag", [ANY, *tags], key="export_tag")
    segment = cols[2].selectbox("Segment", [ANY, *segments], key="export_segment")

    def contacts_csv() -> bytes:
        text = io.StringIO()
        with reading() as session:
            rows = export_rows(
                session,
                status=None if status == ANY else status,
                tag=None if tag == ANY else tag,
                segment=None if segment == ANY else segment,
            )
            write_csv(rows, text)
        return text.getvalue().encode("utf-8")

    st.download_button(
        "Download contacts.csv",
        contacts_csv,
        file_name="contacts.csv",
        mime="text/csv",
        key="download_contacts",
        # No rerun on click: a rerun could drop the generated file before the browser fetched
        # it (seen as a download that never came), and it reset the tabs to Import.
        on_click="ignore",
    )


def main() -> None:
    require_login()
    st.title("Contacts")
    importing, finding, exporting = st.tabs(["Import", "Find a customer", "Export"])
    with importing:
        _import_section()
    with finding:
        customers_view.render()
    with exporting:
        _export_section()


main()
