"""CSV import on real databases: export flavours, encodings, dedupe, consent, atomicity."""

from __future__ import annotations

import contextlib
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from dealmail.contacts import bulk_indexes, import_merge, import_report, import_writes
from dealmail.contacts.consent import ConsentProof
from dealmail.contacts.identity import email_hash
from dealmail.contacts.importer import ImportReport, import_contacts
from dealmail.contacts.queries import customer_by_email
from dealmail.contacts.service import delete_customer, resubscribe, unsubscribe
from dealmail.db import make_engine, session_factory
from dealmail.errors import DomainError
from dealmail.models import ConsentEvent, Customer, Suppression, Tag, customer_tags
from dealmail.models.base import Base

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

MAILCHIMP_HEADER = (
    '"Email Address","First Name","Last Name","Address","Phone Number",MEMBER_RATING,'
    "OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,"
    "REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS"
)
MAILCHIMP_SUBSCRIBED = (
    MAILCHIMP_HEADER
    + "\r\n"
    + 'ana@example.com,Ana,Lima,"12 Rue X  Lyon  69001 FR",+33 6 12 34 56 78,3,'
    '"2021-03-04 10:11:12",192.0.2.1,"2021-03-04 10:15:00",192.0.2.1,,,,,,FR,,'
    '"2023-01-01 00:00:00",123,abc,,"""VIP"",""Newsletter"""\r\n'
    'ben@example.com,Ben,,,,2,,,"2022-05-06 07:08:09",198.51.100.7,,,,,,DE,,'
    '"2023-01-01 00:00:00",124,abd,"likes ""cheese""",\r\n'
)
MAILCHIMP_UNSUBSCRIBED = (
    MAILCHIMP_HEADER
    + ",UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,UNSUB_REASON_OTHER\r\n"
    'ana@example.com,Ana,Lima,,,3,,,"2021-03-04 10:15:00",,,,,,,FR,,"2023-06-01 00:00:00",'
    '123,abc,,,"2023-06-01 00:00:00",Spring sale,c1,"I no longer want to receive these emails",\r\n'
    'carl@example.com,Carl,,,,1,,,"2020-01-01 00:00:00",,,,,,,,,"2023-06-01 00:00:00",'
    '125,abe,,,"2023-06-02 00:00:00",Spring sale,c1,Other,too many\r\n'
)
MAILCHIMP_CLEANED = (
    MAILCHIMP_HEADER + ",CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID\r\n"
    'ben@example.com,Ben,,,,1,,,"2022-05-06 07:08:09",,,,,,,,,"2023-07-01 00:00:00",'
    '124,abd,,,"2023-07-01 00:00:00",Summer,c2\r\n'
    'dora@example.com,Dora,,,,1,,,"2022-05-06 07:08:09",,,,,,,,,"2023-07-01 00:00:00",'
    '126,abf,,,"2023-07-01 00:00:00",Summer,c2\r\n'
)
SHOPIFY = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,"
    "Default Address Address1,Default Address Address2,Default Address City,"
    "Default Address Province Code,Default Address Country Code,Default Address Zip,"
    "Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,"
    "Tax Exempt,Tags\n"
    "'7001,Eva,Stone,eva@shop.example,yes,,1 Main St,,Portland,OR,US,'97201,,+15035550100,no,"
    '120.50,3,,no,"vip, regulars"\n'
    "'7002,Finn,Ray,finn@shop.example,no,,2 Main St,,Portland,OR,US,'97201,,,no,10.00,1,,no,\n'"
    "'7003,Gus,,GUS@Shop.Example,yes,,,,,,,,,,,0.00,0,,no,\n"
)
SQUARE = (
    '"First Name","Last Name","Email Address","Phone Number","Nickname","Company Name",'
    '"Street Address 1","Street Address 2","City","State","Postal Code","Birthday","Memo",'
    '"Square Customer ID","Creation Source","First Visit","Last Visit","Transaction Count",'
    '"Total Spend","Email Subscription Status","Instant Profile"\r\n'
    '"Hana","Kim","hana@cafe.example","(555) 010-2000","","","","","Austin","TX","78701","",'
    '"","SQ1","Directory","2023-02-01","2024-05-01","12","$98.00","subscribed","No"\r\n'
    '"Ivo","","ivo@cafe.example","","","","","","","","","","","SQ2","Payment",'
    '"2023-02-01","2024-05-01","1","$5.00","unsubscribed","Yes"\r\n'
)
GERMAN = (
    "Vorname;Nachname;E-Mail-Adresse;Telefon;Stadt;Newsletter;Anmeldedatum\r\n"
    "Jürgen;Weiß;juergen@beispiel.de;0221 123456;Köln;ja;04.05.2023\r\n"
    "Käthe;Groß;kaethe@beispiel.de;;München;nein;\r\n"
)
FRENCH = (
    "Prénom;Nom;Adresse e-mail;Téléphone;Ville\r\n"
    "Élodie;Château;elodie@exemple.fr;06 12 34 56 78;Besançon\r\n"
)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(session: Session, *paths: Path, **options: Any) -> ImportReport:
    report = import_contacts(session, list(paths), now=NOW, **options)
    accounted = (
        report.invalid
        + report.merged_duplicates
        + report.created
        + report.updated
        + report.skipped_consent
        + report.skipped_suppressed
    )
    assert accounted == report.rows, report
    return report


def customer(session: Session, key: str) -> Customer:
    session.expire_all()
    found = session.scalar(select(Customer).where(Customer.email_key == key))
    assert found is not None, key
    return found


def keys(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(Customer.email_key).order_by(Customer.email_key)))


def snapshot(session: Session) -> dict[str, Any]:
    session.expire_all()
    return {
        "customers": [
            (c.email_key, c.status, c.first_name, c.last_name, c.phone, c.attributes)
            for c in session.scalars(select(Customer).order_by(Customer.id))
        ],
        "tags": list(session.scalars(select(Tag.name_key).order_by(Tag.name_key))),
        "links": session.scalar(select(func.count()).select_from(customer_tags)),
        "events": session.scalar(select(func.count(ConsentEvent.id))),
        "suppressions": list(
            session.scalars(select(Suppression.email_hash).order_by(Suppression.id))
        ),
    }


def test_mailchimp_subscribed_export(session: Session, tmp_path: Path) -> None:
    path = write(tmp_path, "subscribed_members_export_1a2b.csv", MAILCHIMP_SUBSCRIBED)
    report = run(session, path)
    assert (report.rows, report.created, report.invalid) == (2, 2, 0)
    ana = customer(session, "ana@example.com")
    assert (ana.first_name, ana.last_name, ana.phone) == ("Ana", "Lima", "+33 6 12 34 56 78")
    assert ana.consent_at == datetime(2021, 3, 4, 10, 11, 12, tzinfo=UTC)  # OPTIN_TIME
    assert ana.consent_ip == "192.0.2.1"
    assert ana.consent_source == "import:subscribed_members_export_1a2b.csv"
    assert sorted(t.name for t in ana.tags) == ["Newsletter", "VIP"]
    assert ana.attributes["MEMBER_RATING"] == "3"
    assert ana.attributes["CC"] == "FR"
    ben = customer(session, "ben@example.com")
    assert ben.consent_at == datetime(2022, 5, 6, 7, 8, 9, tzinfo=UTC)  # CONFIRM_TIME fallback
    assert ben.attributes["NOTES"] == 'likes "cheese"'
    history = customer_by_email(session, "ana@example.com").history
    assert [(e.kind, e.source) for e in history] == [
        ("import", "import:subscribed_members_export_1a2b.csv")
    ]


def test_mailchimp_unsubscribed_and_cleaned_exports_withdraw_and_suppress(
    session: Session, tmp_path: Path
) -> None:
    run(session, write(tmp_path, "subscribed_members_export_1a2b.csv", MAILCHIMP_SUBSCRIBED))
    report = run(
        session, write(tmp_path, "unsubscribed_members_export.csv", MAILCHIMP_UNSUBSCRIBED)
    )
    assert (report.created, report.skipped_consent, report.withdrawn) == (0, 2, 1)
    assert customer(session, "ana@example.com").status == "unsubscribed"
    assert "carl@example.com" not in keys(session)
    # Renamed file: the CLEAN_TIME column alone says so.
    report = run(session, write(tmp_path, "export.csv", MAILCHIMP_CLEANED))
    assert (report.created, report.skipped_consent, report.withdrawn) == (0, 2, 1)
    assert customer(session, "ben@example.com").status == "bounced"
    assert "dora@example.com" not in keys(session)
    hashes = set(session.scalars(select(Suppression.email_hash)))
    for address in ("ana@example.com", "carl@example.com", "ben@example.com", "dora@example.com"):
        assert email_hash(address) in hashes
    history = [e.kind for e in customer_by_email(session, "ana@example.com").history]
    assert history == ["import", "unsubscribe"]
    # The subscribed export again: nobody comes back.
    report = run(
        session, write(tmp_path, "subscribed_members_export_1a2b.csv", MAILCHIMP_SUBSCRIBED)
    )
    assert (report.created, report.updated, report.skipped_suppressed) == (0, 0, 2)
    assert customer(session, "ana@example.com").status == "unsubscribed"
    assert customer(session, "ben@example.com").status == "bounced"


def test_shopify_customers_export(session: Session, tmp_path: Path) -> None:
    report = run(session, write(tmp_path, "customers_export.csv", SHOPIFY))
    assert (report.rows, report.created, report.skipped_consent) == (3, 2, 1)
    assert keys(session) == ["eva@shop.example", "gus@shop.example"]
    eva = customer(session, "eva@shop.example")
    assert eva.phone == "+15035550100"
    assert sorted(t.name for t in eva.tags) == ["regulars", "vip"]
    assert eva.attributes["Default Address City"] == "Portland"
    assert eva.attributes["Accepts SMS Marketing"] == "no"
    assert customer(session, "gus@shop.example").email == "GUS@shop.example"


def test_square_customer_directory(session: Session, tmp_path: Path) -> None:
    report = run(session, write(tmp_path, "export-20240601.csv", SQUARE))
    assert (report.created, report.skipped_consent) == (1, 1)
    hana = customer(session, "hana@cafe.example")
    assert (hana.first_name, hana.last_name, hana.phone) == ("Hana", "Kim", "(555) 010-2000")
    assert hana.attributes["Square Customer ID"] == "SQ1"
    assert email_hash("ivo@cafe.example") in set(session.scalars(select(Suppression.email_hash)))


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("cp1252", b""), ("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe")],
)
def test_german_spreadsheet_in_every_encoding(
    session: Session, tmp_path: Path, encoding: str, bom: bytes
) -> None:
    path = tmp_path / "Kunden.csv"
    path.write_bytes(bom + GERMAN.encode(encoding))
    report = run(session, path)
    assert (report.created, report.skipped_consent) == (1, 1)
    juergen = customer(session, "juergen@beispiel.de")
    assert (juergen.first_name, juergen.last_name, juergen.phone) == (
        "Jürgen",
        "Weiß",
        "0221 123456",
    )
    assert juergen.attributes == {"Stadt": "Köln", "Anmeldedatum": "04.05.2023"}


def test_french_spreadsheet_and_an_excel_unicode_text_file(
    session: Session, tmp_path: Path
) -> None:
    run(session, write(tmp_path, "clients.csv", "\ufeff" + FRENCH))
    elodie = customer(session, "elodie@exemple.fr")
    assert (elodie.first_name, elodie.last_name) == ("Élodie", "Château")
    assert elodie.phone == "06 12 34 56 78"
    unicode_text = "E-mail\tFirst Name\tSurname\r\nzoe@example.com\tZoë\tÅberg\r\n"
    run(session, write(tmp_path, "Book1.txt", "\ufeff" + unicode_text, "utf-16-le"))
    assert customer(session, "zoe@example.com").last_name == "Åberg"


def test_decomposed_unicode_is_stored_nfc(session: Session, tmp_path: Path) -> None:
    run(session, write(tmp_path, "nfd.csv", "email,first name\nzoe\u0301@example.com,Zoe\u0301\n"))
    zoe = customer(session, "zo\u00e9@example.com")
    assert zoe.first_name == "Zo\u00e9"


def test_duplicates_in_case_and_spacing_merge_within_and_across_files(
    session: Session, tmp_path: Path
) -> None:
    first = write(
        tmp_path,
        "a.csv",
        "email,first name,last name,phone,tags,city,signup date\n"
        "  Mia@Example.com ,Mia,,,vip,Lyon,2023-05-01\n"
        "mia@EXAMPLE.COM,Maria,Rossi,,Regulars,,2022-01-01\n"
        "MIA@example.com,,,0123,,,2024-01-01\n",
    )
    second = write(tmp_path, "b.csv", "Email;Vorname;Land\nmia@example.com ;Mimi;IT\n")
    report = run(session, first, second)
    assert (report.rows, report.created, report.merged_duplicates) == (4, 1, 3)
    mia = customer(session, "mia@example.com")
    assert mia.email == "Mia@example.com"  # as first given, domain normalised
    assert (mia.first_name, mia.last_name, mia.phone) == ("Mia", "Rossi", "0123")
    assert sorted(t.name for t in mia.tags) == ["Regulars", "vip"]
    assert mia.attributes == {"city": "Lyon", "Land": "IT"}
    assert mia.consent_at == datetime(2022, 1, 1, tzinfo=UTC)  # earliest consent kept
    # Against existing customers: fill empty fields only, earliest consent, tags united.
    third = write(
        tmp_path,
        "c.csv",
        "email,first name,last name,phone,tags,city,opt-in date\n"
        "MIA@example.com,Other,Other,999,newcomer,Paris,2020-01-01\n",
    )
    report = run(session, third, tags=["Summer 2024"])
    assert (report.created, report.updated) == (0, 1)
    mia = customer(session, "mia@example.com")
    assert (mia.first_name, mia.last_name, mia.phone) == ("Mia", "Rossi", "0123")
    assert mia.attributes == {"city": "Lyon", "Land": "IT"}
    assert mia.consent_at == datetime(2020, 1, 1, tzinfo=UTC)
    assert mia.consent_source == "import:c.csv"
    assert sorted(t.name for t in mia.tags) == ["Regulars", "Summer 2024", "newcomer", "vip"]
    assert session.scalar(select(func.count(Customer.id))) == 1


def test_invalid_rows_are_reported_with_their_line_numbers(
    session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "list.csv",
        "email,name\n"  # line 1
        'ok1@example.com,"two\nlines"\n'  # 2-3
        "not-an-address,x\n"  # 4
        "\n"  # 5
        ",no address\n"  # 6
        "someone@localhost,x\n"  # 7
        "ok2@example.com,y\n",  # 8
    )
    report = run(session, path)
    assert (report.created, report.invalid) == (2, 3)
    assert [(r["line"], r["file"]) for r in report.invalid_rows] == [
        (4, "list.csv"),
        (6, "list.csv"),
        (7, "list.csv"),
    ]
    assert "no email address" in report.invalid_rows[1]["reason"]
    assert "@-sign" in report.invalid_rows[0]["reason"]


def test_invalid_row_list_is_capped_but_counted(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_report, "INVALID_ROWS_KEPT", 5)
    path = write(tmp_path, "bad.csv", "email\n" + "".join(f"bad{i}\n" for i in range(12)))
    report = run(session, path)
    assert report.invalid == 12
    assert len(report.invalid_rows) == 5


def test_nobody_unsubscribed_or_suppressed_is_resubscribed(
    session: Session, tmp_path: Path
) -> None:
    listing = "email,first name,accepts email marketing\n"
    run(
        session,
        write(tmp_path, "a.csv", listing + "ann@example.com,Ann,yes\nbo@example.com,Bo,yes\n"),
    )
    unsubscribe(session, "ann@example.com", source="test")
    unsubscribe(session, "never@example.com", source="test")  # no customer, suppressed anyway
    delete_customer(session, "bo@example.com")
    again = write(
        tmp_path,
        "b.csv",
        listing + "ANN@example.com,Annie,yes\nnever@example.com,N,yes\nbo@example.com,Bo,yes\n",
    )
    report = run(session, again)
    assert (report.created, report.updated, report.skipped_suppressed) == (0, 0, 3)
    ann = customer(session, "ann@example.com")
    assert (ann.status, ann.first_name) == ("unsubscribed", "Ann")
    assert keys(session) == ["ann@example.com"]
    # Only new, explicit consent brings someone back; imports still do not touch them.
    resubscribe(session, "ann@example.com", ConsentProof(source="signup form", ip="203.0.113.9"))
    assert customer(session, "ann@example.com").status == "subscribed"
    report = run(session, again)
    assert (report.updated, report.skipped_suppressed) == (1, 2)


def test_a_subscribed_customer_is_unsubscribed_by_an_export_saying_so(
    session: Session, tmp_path: Path
) -> None:
    run(session, write(tmp_path, "a.csv", "email\nsam@example.com\n"))
    report = run(
        session,
        write(
            tmp_path,
            "b.csv",
            "Email Address,Email Subscription Status\nsam@example.com,Opted out\n",
        ),
    )
    assert (report.withdrawn, report.skipped_consent) == (1, 1)
    assert customer(session, "sam@example.com").status == "unsubscribed"


def test_no_consent_rows_leave_existing_customers_alone(session: Session, tmp_path: Path) -> None:
    run(session, write(tmp_path, "a.csv", "email,first name\nlu@example.com,\n"))
    report = run(
        session,
        write(
            tmp_path, "b.csv", "Email,First Name,Accepts Email Marketing\nlu@example.com,Lu,no\n"
        ),
    )
    assert (report.skipped_consent, report.updated) == (1, 0)
    lu = customer(session, "lu@example.com")
    assert (lu.status, lu.first_name) == ("subscribed", None)


def test_map_overrides_and_unknown_map_columns(session: Session, tmp_path: Path) -> None:
    path = write(tmp_path, "odd.csv", "Kontakt,Rufname,Status\nodd@example.com,Odo,VIP\n")
    with pytest.raises(DomainError, match="no email column"):
        run(session, path)
    report = run(
        session, path, overrides={"email": "Kontakt", "first_name": "Rufname", "consent": None}
    )
    assert report.created == 1
    odd = customer(session, "odd@example.com")
    assert (odd.first_name, odd.attributes) == ("Odo", {"Status": "VIP"})
    with pytest.raises(DomainError, match="no such column"):
        run(session, path, overrides={"email": "Mail"})


def test_dry_run_reports_but_writes_nothing(session: Session, tmp_path: Path) -> None:
    run(session, write(tmp_path, "a.csv", "email\nexisting@example.com\n"))
    before = snapshot(session)
    path = write(
        tmp_path,
        "b.csv",
        "email,tags,status\nexisting@example.com,x,subscribed\nnew@example.com,y,subscribed\n"
        "gone@example.com,,unsubscribed\n",
    )
    report = run(session, path, dry_run=True, tags=["dry"])
    assert (report.dry_run, report.created, report.updated, report.skipped_consent) == (
        True,
        1,
        1,
        1,
    )
    assert snapshot(session) == before
    # The same import for real then does what the dry run said.
    real = run(session, path, tags=["dry"])
    assert (real.created, real.updated, real.skipped_consent) == (1, 1, 1)
    assert snapshot(session) != before


@pytest.mark.parametrize(
    ("module", "step"),
    [
        (import_writes, "upsert_customers"),
        (import_writes, "link_tags"),
        (import_merge, "_apply_withdrawals"),
    ],
    ids=["upsert_customers", "link_tags", "apply_withdrawals"],
)
def test_a_failure_in_the_middle_leaves_the_database_unchanged(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, step: str
) -> None:
    run(session, write(tmp_path, "a.csv", "email,tags\nkeep@example.com,old\n"))
    before = snapshot(session)
    original = getattr(module, step)

    def half_done(connection: Any, *args: Any) -> Any:
        original(connection, *args)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(module, step, half_done)
    path = write(
        tmp_path,
        "b.csv",
        "email,tags,status\nkeep@example.com,new,subscribed\nfresh@example.com,new,yes\n"
        "out@example.com,,unsubscribed\n",
    )
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_contacts(session, [path], now=NOW)
    assert snapshot(session) == before
    monkeypatch.setattr(module, step, original)
    report = run(session, path)  # staging left nothing behind
    assert report.created == 1


def test_one_unreadable_file_stops_the_whole_import_before_writing(
    session: Session, tmp_path: Path
) -> None:
    good = write(tmp_path, "good.csv", "email\ngood@example.com\n")
    bad = tmp_path / "photo.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(DomainError, match="binary"):
        run(session, good, bad)
    assert keys(session) == []


def test_attributes_json_and_tags_are_case_insensitive(session: Session, tmp_path: Path) -> None:
    run(
        session,
        write(tmp_path, "a.csv", "email,tags\na@example.com,VIP\nb@example.com,vip ; Lyon\n"),
    )
    assert sorted(session.scalars(select(Tag.name_key))) == ["lyon", "vip"]
    counts = json.loads(json.dumps(snapshot(session)["links"]))
    assert counts == 3


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a@example.com", " A@EXAMPLE.com", "b@example.org", "bad", "", "c@x.fr"]),
        st.sampled_from(["", "yes", "no", "unsubscribed", "cleaned", "whatever"]),
        st.sampled_from(["", "t1", "T1, t2", '"q"']),
        st.text(max_size=5),
    ),
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, encoding=st.sampled_from(["utf-8", "utf-16", "cp1252"]))
def test_generated_imports_keep_every_promise(
    session: Session, tmp_path: Path, rows: list[tuple[str, str, str, str]], encoding: str
) -> None:
    # Examples share the database: each gets its own domain.
    domain = f"{secrets.token_hex(4)}.example"
    rows = [
        (r[0].replace("example.com", domain).replace("EXAMPLE.com", domain), *r[1:]) for r in rows
    ]
    lines = ["email,status,tags,note"] + [
        ",".join('"' + c.replace('"', '""') + '"' for c in row) for row in rows
    ]
    path = tmp_path / "gen.csv"
    path.write_bytes("\r\n".join(lines).encode(encoding, errors="replace"))
    with contextlib.suppress(DomainError):
        run(session, path)
    # Whatever the file said, only rows saying yes (or nothing) made subscribers.
    session.expire_all()
    for c in session.scalars(select(Customer).where(Customer.email_key.like(f"%@{domain}"))):
        assert c.status == "subscribed"
        statuses = {r[1] for r in rows if r[0].strip().lower() == c.email_key}
        assert statuses & {"yes"}
        assert not statuses & {"unsubscribed", "cleaned"}
    session.rollback()


def _index_names(session: Session) -> set[str]:
    inspector = inspect(session.connection())
    return {
        str(index["name"])
        for table in ("customers", "consent_events")
        for index in inspector.get_indexes(table)
    }


def test_bulk_fill_rebuilds_indexes_and_a_failure_gives_them_back(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexes = _index_names(session)
    assert {"ix_consent_events_unowned_hash", "ix_customers_consent_at"} <= indexes
    monkeypatch.setattr(bulk_indexes, "BULK_INDEX_ROWS", 1)
    original = import_writes.upsert_customers

    def fails(connection: Any, *args: Any) -> None:
        original(connection, *args)
        if connection.dialect.name == "sqlite":  # PostgreSQL keeps its indexes throughout
            assert "ix_customers_consent_at" not in _index_names(session)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(import_writes, "upsert_customers", fails)
    lines = "".join(f"p{i}@example.com,2023-01-0{i} 10:00:00\n" for i in range(1, 6))
    path = write(tmp_path, "bulk.csv", "email,optin_time\n" + lines)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_contacts(session, [path], now=NOW)
    assert keys(session) == []
    assert _index_names(session) == indexes
    monkeypatch.setattr(import_writes, "upsert_customers", original)
    assert run(session, path).created == 5
    assert _index_names(session) == indexes
    assert session.scalar(select(func.count(ConsentEvent.id))) == 5
    # The rebuilt index answers lookups.
    opted_in = datetime(2023, 1, 3, 10, tzinfo=UTC)
    found = session.scalar(select(Customer.email_key).where(Customer.consent_at == opted_in))
    assert found == "p3@example.com"


def _temp_tables(session: Session) -> set[str]:
    if session.bind.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_temp_master WHERE type = 'table'"
    else:
        query = (
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = pg_my_temp_schema()::regnamespace::text"
        )
    return set(session.scalars(text(query)))


def test_staging_tables_leave_with_the_import(session: Session, tmp_path: Path) -> None:
    """The import's connection closes after it (its TEMP tables go with it, undropped); the
    session goes on with another one."""
    path = write(tmp_path, "a.csv", "email,tags\nana@example.com,VIP\nben@example.com,\n")
    assert run(session, path).created == 2
    assert _temp_tables(session) == set()
    assert keys(session) == ["ana@example.com", "ben@example.com"]
    assert run(session, path, dry_run=True).updated == 2
    assert _temp_tables(session) == set()


def test_in_memory_database_keeps_its_connection_and_drops_staging(tmp_path: Path) -> None:
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as memory:
        path = write(tmp_path, "a.csv", "email\nana@example.com\n")
        assert run(memory, path).created == 1
        assert _temp_tables(memory) == set()
        assert keys(memory) == ["ana@example.com"]
    engine.dispose()
