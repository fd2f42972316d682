"""Big files are parsed in a second process: same report, same rows, errors still clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.contacts import import_staging
from dealmail.contacts.csvread import UnreadableFile
from dealmail.contacts.importer import import_contacts
from dealmail.models import Customer, Tag

ROWS = 12_000  # more than two chunks


def _listing(path: Path) -> Path:
    lines = ["email,first name,tags,status,city"]
    for i in range(ROWS):
        status = "unsubscribed" if i % 97 == 0 else "yes"
        tag = "vip" if i % 10 == 0 else ""
        lines.append(f"user{i % 11_000}@Example.com,Name {i},{tag},{status},C{i % 7}")
        if i % 1000 == 0:
            lines.append(f"broken{i},x,,yes,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _state(session: Session) -> list[Any]:
    session.expire_all()
    customers = session.execute(
        select(
            Customer.email_key, Customer.first_name, Customer.status, Customer.attributes
        ).order_by(Customer.email_key)
    ).all()
    return [tuple(c) for c in customers] + sorted(session.scalars(select(Tag.name_key)))


def test_worker_and_in_process_imports_agree(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _listing(tmp_path / "big.csv")
    monkeypatch.setattr(import_staging, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = import_contacts(session, [path], dry_run=True)
    monkeypatch.setattr(import_staging, "PARALLEL_MIN_BYTES", 0)
    positions: list[int] = []
    parallel = import_contacts(session, [path], progress=positions.append)
    for report in (alone, parallel):
        report.seconds = 0.0
        report.dry_run = False
    assert parallel == alone
    assert parallel.invalid == 12
    assert parallel.invalid_rows[1]["line"] == 1004  # header, 1001 rows, 2 broken before it
    assert positions[-1] == path.stat().st_size
    state = _state(session)
    assert len(state) == 11_000 - parallel.skipped_consent + 1  # customers + the one tag
    assert state[-1] == "vip"


def test_worker_errors_reach_the_caller_and_nothing_is_written(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_staging, "PARALLEL_MIN_BYTES", 0)
    path = tmp_path / "huge-field.csv"
    huge = b'"' + b"x" * 200_000 + b'"'
    path.write_bytes(
        b"email,note\n" + b"a@example.com,\n" * 7000 + b"b@example.com," + huge + b"\n"
    )
    with pytest.raises(UnreadableFile, match="field larger than field limit"):
        import_contacts(session, [path])
    assert _state(session) == []
