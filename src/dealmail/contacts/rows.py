"""One CSV record → one staging row: validated address, key, hash, names, consent (pure).

This is the per-row hot path of an import (a file may hold a million rows), so it is one
tight loop with the column positions resolved up front.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from dealmail.contacts.columns import TAG_MAX, Consent, consent_of, parse_loose_time, split_tags
from dealmail.contacts.csvread import FileFormat, read_records
from dealmail.contacts.emails import EmailNormaliser, InvalidEmail
from dealmail.contacts.identity import tag_key

NAME_MAX, PHONE_MAX, IP_MAX, SOURCE_MAX = 200, 64, 64, 255
_ABSENT = 1 << 30  # a column index no row reaches: "this file has no such column"

# (ord, email, email_key, email_hash, first_name, last_name, phone, attributes JSON,
#  consent, consent_at, consent_ip, file_no): ord is the row's place across all files.
StagedRow = tuple[Any, ...]
TagRow = tuple[str, str, str]  # (email_key, tag_key, tag_name)
InvalidSink = Callable[[str, int, str], None]

_encode_json = json.JSONEncoder(ensure_ascii=False).encode


def _attribute_encoder(columns: tuple[tuple[int, str], ...]) -> Callable[[list[str], int], Any]:
    """Row cells → attributes JSON text (None if all empty). Plain values (printable, no quote
    or backslash: nearly all) are spliced in directly, a few times faster than json."""
    keys = [(i, _encode_json(name) + ': "') for i, name in columns]
    if len(keys) == 1:  # one extra column (a city, a note): no loop
        [(only, key)] = keys

        def encode_one(cells: list[str], n: int) -> str | None:
            if only < n and (value := cells[only].strip()):
                if '"' in value or "\\" in value or not value.isprintable():
                    return _encode_json({columns[0][1]: value})
                return "{" + key + value + '"}'
            return None

        return encode_one

    def encode(cells: list[str], n: int) -> str | None:
        parts = []
        for i, key in keys:
            if i < n and (value := cells[i].strip()):
                if '"' in value or "\\" in value or not value.isprintable():
                    return _encode_json(dict(_pairs(columns, cells, n)))
                parts.append(key + value + '"')
        return "{" + ", ".join(parts) + "}" if parts else None

    return encode


def _pairs(
    columns: tuple[tuple[int, str], ...], cells: list[str], n: int
) -> Iterator[tuple[str, str]]:
    for i, name in columns:
        if i < n and (value := cells[i].strip()):
            yield name, value


def _forced_consent(file_name: str) -> Consent | None:
    """Mailchimp names its exports by status (unsubscribed_members_export_….csv)."""
    lowered = file_name.lower()
    if lowered.startswith("unsubscribed"):
        return Consent.UNSUBSCRIBE
    if lowered.startswith("cleaned"):
        return Consent.BOUNCE
    return None


def every_row_opts_in(fmt: FileFormat) -> bool:
    """No column speaks of consent and the file name sets none: every valid row is an opt-in
    (the owner vouches for the list)."""
    fields = fmt.columns.fields
    return _forced_consent(fmt.path.name) is None and not any(
        name in fields for name in ("consent", "unsubscribed_at", "cleaned_at")
    )


def time_reader(now: datetime, *, naive_text: bool) -> Callable[[str], Any]:
    """Opt-in time cell → stored value (naive UTC text for SQLite, aware datetime otherwise);
    the import time when empty, unreadable or in the future."""
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    default: Any = now_naive.isoformat(" ", "microseconds") if naive_text else now
    fromisoformat = datetime.fromisoformat

    def read(value: str) -> Any:
        try:
            parsed: datetime | None = fromisoformat(value)
        except ValueError:
            parsed = parse_loose_time(value)
        if parsed is None:
            return default
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        elif naive_text and len(value) == 19 and value[4] == value[7] == "-" and value[10] == " ":
            # Already "YYYY-MM-DD HH:MM:SS" (Mailchimp): no need to format it again.
            return value + ".000000" if parsed <= now_naive else default
        if parsed > now_naive:
            return default
        return parsed.isoformat(" ", "microseconds") if naive_text else parsed.replace(tzinfo=UTC)

    read.default = default  # type: ignore[attr-defined]
    return read


def staged_rows(
    fmt: FileFormat,
    now: datetime,
    *,
    first_seq: int,
    file_no: int = 0,
    naive_times: bool,
    invalid: InvalidSink,
    tags_out: list[TagRow],
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[StagedRow]:
    """Valid rows of one file as staging tuples; invalid ones go to `invalid(file, line, why)`;
    tags found in a tags column are appended to `tags_out`. Row order numbers continue from
    `first_seq` (so several files fold in order)."""
    fields = fmt.columns.fields

    def at(name: str) -> int:
        return fields.get(name, (_ABSENT,))[0]

    email_i, first_i, last_i, phone_i = at("email"), at("first_name"), at("last_name"), at("phone")
    tags_i, consent_i, unsub_i, cleaned_i = (
        at("tags"),
        at("consent"),
        at("unsubscribed_at"),
        at("cleaned_at"),
    )
    time_cols = fields.get("opt_in_time", ())
    ip_cols = fields.get("opt_in_ip", ())
    attribute_cols = fmt.columns.attributes
    encode_attributes = _attribute_encoder(attribute_cols)
    forced = _forced_consent(fmt.path.name)
    has_consent_column = consent_i != _ABSENT
    read_time = time_reader(now, naive_text=naive_times)
    default_time = read_time.default  # type: ignore[attr-defined]
    normaliser = EmailNormaliser()
    normalise, quick = normaliser.normalise, normaliser.quick()
    sha256 = hashlib.sha256
    name = fmt.path.name
    opt_in = int(Consent.OPT_IN)
    plain_opt_in = every_row_opts_in(fmt)
    seq = first_seq
    for line, cells in read_records(fmt, on_bytes):
        seq += 1
        n = len(cells)
        raw = cells[email_i].strip() if email_i < n else ""
        if not raw:
            invalid(name, line, "no email address")
            continue
        if (found := quick(raw)) is not None:
            email, key = found
        else:
            try:
                email, key = normalise(raw)
            except InvalidEmail as exc:
                invalid(name, line, f"{raw[:80]}: {exc}")
                continue
        if plain_opt_in:
            consent = opt_in
        elif forced is not None:
            consent = int(forced)
        else:
            if has_consent_column:
                consent = consent_of(cells[consent_i]) if consent_i < n else Consent.NONE
            else:
                consent = Consent.OPT_IN
            if unsub_i < n and cells[unsub_i].strip():
                consent = max(consent, Consent.UNSUBSCRIBE)
            if cleaned_i < n and cells[cleaned_i].strip():
                consent = max(consent, Consent.BOUNCE)
            consent = int(consent)
        consent_at = consent_ip = None
        if consent == opt_in:
            consent_at = default_time
            for i in time_cols:
                if i < n and (value := cells[i].strip()):
                    consent_at = read_time(value)
                    break
            for i in ip_cols:
                if i < n and (value := cells[i].strip()):
                    consent_ip = value[:IP_MAX]
                    break
        attributes = encode_attributes(cells, n) if attribute_cols else None
        if tags_i < n and (cell := cells[tags_i].strip()):
            for tag in split_tags(cell):
                tags_out.append((key, tag_key(tag), tag[:TAG_MAX]))
        # split() trims and folds inner runs of spaces and line breaks in one go; a name of
        # letters only (most) has nothing to fold.
        first = cells[first_i] if first_i < n else ""
        if not first.isalpha():
            first = " ".join(first.split())
        last = cells[last_i] if last_i < n else ""
        if not last.isalpha():
            last = " ".join(last.split())
        phone = " ".join(cells[phone_i].split()) if phone_i < n else ""
        yield (
            seq,
            email,
            key,
            sha256(key.encode()).hexdigest(),
            first[:NAME_MAX] or None,
            last[:NAME_MAX] or None,
            phone[:PHONE_MAX] or None,
            attributes,
            consent,
            consent_at,
            consent_ip,
            file_no,
        )
