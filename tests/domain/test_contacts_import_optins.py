"""Files whose every row opts in take a shorter merge on SQLite: it must end exactly where the
general merge (fold by consent, then upsert) ends, and keep every consent promise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.contacts import import_writes, importer
from dealmail.contacts.consent import ConsentProof
from dealmail.contacts.importer import ImportReport, import_contacts
from dealmail.contacts.service import delete_customer, resubscribe, unsubscribe
from dealmail.models import ConsentEvent, Customer, Suppression, Tag, customer_tags

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

EXISTING = (
    "email,first name,last name,phone,tags,city,signup date\n"
    "keep@example.com,Kim,,,old,Lyon,2022-02-02\n"
    "gone@example.com,Gus,,,old,,\n"
    "deleted@example.com,Dee,,,,,\n"
    "later@example.com,,Late,,,Bern,2023-03-03\n"
)
# Repeats in case and spacing, tags on some rows, an attribute that both rows set, opt-in times
# earlier and later than the customer's, an invalid row, a suppressed address with no customer.
INCOMING = (
    "Email,First Name,Last Name,Phone,Tags,City,Signup Date\n"
    "KEEP@example.com,Other,Kern,,new,Paris,2023-01-01\n"
    'new@example.com,,,,"VIP, Newsletter",Wien,2021-01-01\n'
    " New@Example.com ,Nia,,0123,vip,Köln,2020-06-06\n"
    "gone@example.com,Gus,Gone,,new,,\n"
    "deleted@example.com,Dee,,,new,,\n"
    "never@example.com,Nev,,,new,,\n"
    "not-an-address,x,,,,,\n"
    "later@example.com,Lou,,,,Zürich,2024-01-01\n"
    "new@example.com,Nina,Neu,,,,2019-01-01\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _state(session: Session) -> dict[str, Any]:
    session.expire_all()
    customers = [
        (
            c.email,
            c.email_key,
            c.email_hash,
            c.status,
            c.first_name,
            c.last_name,
            c.phone,
            c.attributes,
            c.consent_at,
            c.consent_source,
            c.consent_ip,
            c.consent_wording,
            sorted(t.name_key for t in c.tags),
        )
        for c in session.scalars(select(Customer).order_by(Customer.email_key))
    ]
    events = session.execute(
        select(
            ConsentEvent.email_hash,
            ConsentEvent.kind,
            ConsentEvent.at,
            ConsentEvent.source,
            ConsentEvent.ip,
            ConsentEvent.detail,
        ).order_by(ConsentEvent.email_hash, ConsentEvent.kind, ConsentEvent.at)
    ).all()
    return {
        "customers": customers,
        "events": [tuple(e) for e in events],
        "tags": sorted(session.execute(select(Tag.name, Tag.name_key)).all()),
        "links": session.scalar(select(func.count()).select_from(customer_tags)),
        "suppressions": sorted(session.execute(select(Suppression.email_hash)).scalars()),
    }


def _note_state_after_merge(
    session: Session, patched: pytest.MonkeyPatch, seen: list[dict[str, Any]]
) -> None:
    """Whichever merge runs appends the database state to `seen` inside the import's
    transaction, before it ends."""
    for name in ("merge", "merge_opt_ins"):
        step = getattr(importer, name)

        def noted(*args: Any, step: Any = step) -> None:
            step(*args)
            seen.append(_state(session))

        patched.setattr(importer, name, noted)


def _import_both_ways(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> tuple[ImportReport, dict[str, Any], ImportReport, dict[str, Any]]:
    """The incoming file imported by the general merge (then rolled back), and for real by
    whichever merge the importer picks (the opt-in one on SQLite)."""
    run = import_contacts(session, [_write(tmp_path, "a.csv", EXISTING)], now=NOW)
    assert run.created == 4
    unsubscribe(session, "gone@example.com", source="test")
    unsubscribe(session, "never@example.com", source="test")  # no customer, suppressed
    delete_customer(session, "deleted@example.com")
    incoming = _write(tmp_path, "b.csv", INCOMING)
    seen: list[dict[str, Any]] = []
    with monkeypatch.context() as patched:
        patched.setattr(importer, "every_row_opts_in", lambda fmt: False)
        _note_state_after_merge(session, patched, seen)
        general = import_contacts(session, [incoming], now=NOW, dry_run=True, **options)
    general.dry_run = False
    shortcuts: list[bool] = []
    merge_opt_ins = importer.merge_opt_ins

    def counted(*args: Any) -> None:
        shortcuts.append(True)
        merge_opt_ins(*args)

    monkeypatch.setattr(importer, "merge_opt_ins", counted)
    chosen = import_contacts(session, [incoming], now=NOW, **options)
    assert shortcuts == ([True] if session.bind.dialect.name == "sqlite" else [])
    return general, seen[0], chosen, _state(session)


def test_all_opt_in_files_end_where_the_general_merge_ends(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    general, general_state, chosen, chosen_state = _import_both_ways(
        session, tmp_path, monkeypatch, tags=["Summer"]
    )
    general.seconds = chosen.seconds = 0.0
    assert chosen == general
    assert chosen_state == general_state
    assert (chosen.created, chosen.updated, chosen.merged_duplicates) == (1, 2, 2)
    assert (chosen.invalid, chosen.skipped_suppressed, chosen.skipped_consent) == (1, 3, 0)
    by_key = {c[1]: c for c in chosen_state["customers"]}
    assert set(by_key) == {"keep@example.com", "gone@example.com", "later@example.com", "new@"
                           "example.com"}  # fmt: skip
    new = by_key["new@example.com"]
    # The first row's spelling and fields win; empty ones are filled by later rows; the
    # earliest opt-in is kept; attributes are united with the first value winning.
    assert new[0] == "new@example.com"
    assert (new[4], new[5], new[6]) == ("Nia", "Neu", "0123")
    assert new[7] == {"City": "Wien"}
    assert new[8] == datetime(2019, 1, 1, tzinfo=UTC)
    assert new[12] == ["newsletter", "summer", "vip"]
    keep = by_key["keep@example.com"]
    assert (keep[4], keep[5], keep[7]) == ("Kim", "Kern", {"city": "Lyon", "City": "Paris"})
    assert keep[8] == datetime(2022, 2, 2, tzinfo=UTC)  # the file's later opt-in leaves it
    assert keep[12] == ["new", "old", "summer"]
    # Never re-subscribed, never changed, never tagged: the unsubscribed one.
    gone = by_key["gone@example.com"]
    assert (gone[3], gone[5], gone[12]) == ("unsubscribed", None, ["old"])


def test_all_opt_in_import_into_an_empty_database_counts_repeats(
    session: Session, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "list.csv",
        "email\na@example.com\nA@example.com\nb@example.com\n a@EXAMPLE.com\nbad\n",
    )
    report = import_contacts(session, [path], now=NOW)
    assert (report.rows, report.created, report.merged_duplicates, report.invalid) == (5, 2, 2, 1)
    assert session.scalar(select(func.count(ConsentEvent.id))) == 2


def test_a_resubscribed_customer_is_updated_by_an_all_opt_in_file(
    session: Session, tmp_path: Path
) -> None:
    import_contacts(session, [_write(tmp_path, "a.csv", "email\nann@example.com\n")], now=NOW)
    unsubscribe(session, "ann@example.com", source="test")
    again = _write(tmp_path, "b.csv", "email,first name\nann@example.com,Ann\n")
    report = import_contacts(session, [again], now=NOW)
    assert (report.updated, report.skipped_suppressed) == (0, 1)
    resubscribe(session, "ann@example.com", ConsentProof(source="signup form"))
    report = import_contacts(session, [again], now=NOW)
    assert (report.updated, report.skipped_suppressed) == (1, 0)
    session.expire_all()
    ann = session.scalar(select(Customer).where(Customer.email_key == "ann@example.com"))
    assert ann is not None
    assert (ann.status, ann.first_name) == ("subscribed", "Ann")


@pytest.mark.parametrize("step", ["upsert_customers", "record_opt_ins", "link_tags"])
def test_a_failure_in_an_all_opt_in_merge_leaves_the_database_unchanged(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    import_contacts(session, [_write(tmp_path, "a.csv", EXISTING)], now=NOW)
    before = _state(session)
    original = getattr(import_writes, step)

    def half_done(connection: Any, *args: Any) -> Any:
        original(connection, *args)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(import_writes, step, half_done)
    incoming = _write(tmp_path, "b.csv", INCOMING)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_contacts(session, [incoming], now=NOW, tags=["Summer"])
    assert _state(session) == before
    monkeypatch.setattr(import_writes, step, original)
    assert import_contacts(session, [incoming], now=NOW).created == 2  # nothing left behind


def test_an_all_opt_in_dry_run_reports_and_writes_nothing(session: Session, tmp_path: Path) -> None:
    import_contacts(session, [_write(tmp_path, "a.csv", EXISTING)], now=NOW)
    before = _state(session)
    incoming = _write(tmp_path, "b.csv", INCOMING)
    dry = import_contacts(session, [incoming], now=NOW, dry_run=True, tags=["Summer"])
    assert _state(session) == before
    real = import_contacts(session, [incoming], now=NOW, tags=["Summer"])
    dry.seconds = real.seconds = 0.0
    dry.dry_run = False
    assert dry == real
    assert (real.created, real.updated, real.merged_duplicates) == (2, 4, 2)


def _captured(session: Session, monkeypatch: pytest.MonkeyPatch, path: Path, general: bool) -> Any:
    """(report, state inside the transaction) of a dry run by the general or the chosen merge."""
    seen: list[dict[str, Any]] = []
    with monkeypatch.context() as patched:
        if general:
            patched.setattr(importer, "every_row_opts_in", lambda fmt: False)
        _note_state_after_merge(session, patched, seen)
        report = import_contacts(session, [path], now=NOW, dry_run=True, tags=["T"])
    report.seconds = 0.0
    return report, seen[0]


_people = st.sampled_from(["ann", "bo", "cy", "gone", "deleted", "never", "keep", "zed"])
_cells = st.tuples(
    _people,
    st.sampled_from(["@example.com", "@EXAMPLE.com", "@example.COM "]),
    st.sampled_from(["", "Ann", "Bo", "  Cy  Lee "]),
    st.sampled_from(["", "vip", "VIP, news", "news;old"]),
    st.sampled_from(["", "Lyon", "Paris"]),
    st.sampled_from(["", "2020-01-01", "2023-06-01 10:00:00", "garbage", "2099-01-01"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_cells, min_size=1, max_size=12))
def test_random_all_opt_in_files_end_where_the_general_merge_ends(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[Any]
) -> None:
    if session.scalar(select(func.count(Customer.id))) == 0:
        import_contacts(session, [_write(tmp_path, "a.csv", EXISTING)], now=NOW)
        unsubscribe(session, "gone@example.com", source="test")
        unsubscribe(session, "never@example.com", source="test")
        delete_customer(session, "deleted@example.com")
    lines = ["email,first name,tags,city,signup date"]
    lines += [
        f'{who}{at},{first},"{tags}",{city},{when}' for who, at, first, tags, city, when in rows
    ]
    path = _write(tmp_path, "r.csv", "\n".join(lines) + "\n")
    assert _captured(session, monkeypatch, path, general=False) == _captured(
        session, monkeypatch, path, general=True
    )
