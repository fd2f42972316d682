"""Customer services and reads on real databases: consent changes, delete, tags, queries."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.contacts import consent, queries, segments, service
from dealmail.contacts.audience import count_audience
from dealmail.contacts.consent import ConsentProof, is_suppressed
from dealmail.contacts.export import write_csv
from dealmail.contacts.identity import email_hash
from dealmail.contacts.importer import import_contacts
from dealmail.errors import AlreadyExists, InvalidInput, NotFound
from dealmail.models import ConsentEvent, Customer, Suppression, customer_tags

PEOPLE = (
    "email,first name,last name,phone,tags,city,opt-in ip\n"
    "ana@example.com,Ana,Lima,+331,vip,Lyon,192.0.2.1\n"
    "ben@example.com,Ben,Okafor,,,Paris,\n"
    "cem@example.com,Cem,Yilmaz,,VIP;Lyon,Lyon,\n"
    "=cmd@example.com,=HYPERLINK(1),@SUM(2),,,-3,\n"
)


@pytest.fixture
def people(session: Session, tmp_path: Path) -> Session:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    import_contacts(session, [path])
    return session


def test_history_includes_events_no_customer_holds_by_hash(people: Session) -> None:
    """Events recorded for the address without a customer (before it existed, or left by an
    erased one) belong to its history; another address's unowned events do not."""
    consent.record_event(people, None, "ANA@example.com", "unsubscribe", source="old list")
    consent.record_event(people, None, "zed@example.com", "unsubscribe", source="old list")
    people.commit()
    kinds = [e.kind for e in queries.customer_by_email(people, "ana@example.com").history]
    assert sorted(kinds) == ["import", "unsubscribe"]
    assert [e.kind for e in queries.customer_by_email(people, "ben@example.com").history] == [
        "import"
    ]


def test_unsubscribe_suppresses_and_records_once(people: Session) -> None:
    assert service.unsubscribe(
        people, "ANA@example.com", source="link", ip="203.0.113.5", campaign_id=7
    )
    assert not service.unsubscribe(people, "ana@example.com", source="link")
    view = queries.customer_by_email(people, "ana@example.com")
    assert (view.status, view.suppressed) == ("unsubscribed", True)
    assert [(e.kind, e.source, e.ip) for e in view.history] == [
        ("import", "import:people.csv", "192.0.2.1"),
        ("unsubscribe", "link", "203.0.113.5"),
    ]
    detail = people.scalar(select(ConsentEvent.detail).where(ConsentEvent.kind == "unsubscribe"))
    assert detail == {"campaign_id": 7}
    assert count_audience(people, {}) == 3


def test_unsubscribing_an_unknown_address_still_suppresses_it(people: Session) -> None:
    assert service.unsubscribe(people, "Stranger@Example.com", source="mailto")
    assert is_suppressed(people, "stranger@example.com")
    assert not service.unsubscribe(people, "stranger@example.com", source="mailto")


def test_unsubscribe_accepts_a_customer_object(people: Session) -> None:
    ben = people.scalar(select(Customer).where(Customer.email_key == "ben@example.com"))
    assert ben is not None
    assert service.unsubscribe(people, ben, source="webhook")
    assert ben.status == "unsubscribed"


def test_resubscribe_needs_new_consent(people: Session) -> None:
    service.unsubscribe(people, "ben@example.com", source="link")
    with pytest.raises(InvalidInput):
        service.resubscribe(people, "ben@example.com", ConsentProof(source=" "))
    with pytest.raises(NotFound):
        service.resubscribe(people, "who@example.com", ConsentProof(source="form"))
    service.resubscribe(
        people, "ben@example.com", ConsentProof(source="paper form", wording="Yes, deals please")
    )
    view = queries.customer_by_email(people, "ben@example.com")
    assert (view.status, view.suppressed, view.consent_source) == (
        "subscribed",
        False,
        "paper form",
    )
    assert view.history[-1].kind == "resubscribe"
    assert view.consent_wording == "Yes, deals please"


def test_delete_erases_the_person_but_keeps_the_suppression_and_trail(people: Session) -> None:
    service.delete_customer(people, "Ana@Example.com")
    people.expire_all()
    assert people.scalar(select(Customer).where(Customer.email_key == "ana@example.com")) is None
    assert (
        people.scalar(
            select(Suppression.reason).where(
                Suppression.email_hash == email_hash("ana@example.com")
            )
        )
        == "deleted"
    )
    trail = people.execute(
        select(ConsentEvent.kind, ConsentEvent.customer_id, ConsentEvent.ip)
        .where(ConsentEvent.email_hash == email_hash("ana@example.com"))
        .order_by(ConsentEvent.id)
    ).all()
    assert [tuple(t) for t in trail] == [("import", None, None), ("delete", None, None)]
    assert people.scalar(select(func.count()).select_from(customer_tags)) == 2  # cem's
    with pytest.raises(NotFound):
        service.delete_customer(people, "ana@example.com")


def test_tag_and_untag_by_address_and_by_segment(people: Session) -> None:
    result = service.tag_customers(people, "Summer", emails=["ana@example.com", "nobody@x.org"])
    assert (result.changed, result.not_found) == (1, ["nobody@x.org"])
    again = service.tag_customers(people, "summer", emails=["ANA@example.com", "ben@example.com"])
    assert again.changed == 1
    assert queries.count_customers(people, tag="SUMMER") == 2
    segments.create_segment(people, "lyon", {"attrs": {"city": "Lyon"}})
    assert service.tag_customers(people, "lyonnais", segment="lyon").changed == 2
    assert service.untag_customers(people, "Lyonnais", emails=["cem@example.com"]).changed == 1
    assert service.untag_customers(people, "summer", segment="lyon").changed == 1
    assert queries.count_customers(people, tag="summer") == 1
    with pytest.raises(NotFound):
        service.untag_customers(people, "never-made", emails=["ana@example.com"])
    with pytest.raises(InvalidInput):
        service.tag_customers(people, "x")


def test_queries_show_list_count(people: Session) -> None:
    view = queries.customer_by_email(people, " cem@EXAMPLE.com")
    assert view.tags == ["Lyon", "VIP"]
    assert view.attributes == {"city": "Lyon"}
    page = queries.list_customers(people, search="LIM", limit=10)
    assert [c.email for c in page.items] == ["ana@example.com"]
    page = queries.list_customers(people, limit=2, offset=1)
    assert (page.total, len(page.items)) == (4, 2)
    assert queries.count_customers(people, tag="vip") == 2
    assert queries.count_customers(people, status="subscribed", tag="lyon") == 1
    assert queries.counts_by_status(people) == {"subscribed": 4}
    assert queries.counts_by_tag(people) == {"Lyon": 1, "VIP": 2}
    with pytest.raises(InvalidInput):
        queries.count_customers(people, status="happy")
    with pytest.raises(NotFound):
        queries.count_customers(people, segment="nope")
    with pytest.raises(NotFound):
        queries.customer_by_email(people, "nope@example.com")


def test_export_neutralises_formulas(people: Session) -> None:
    out = io.StringIO()
    count = write_csv(queries.export_rows(people, tag="vip"), out)
    assert count == 2
    out = io.StringIO()
    write_csv(queries.export_rows(people, batch=2), out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("email,first_name,last_name")
    assert len(lines) == 5
    formula_row = next(line for line in lines if "cmd@example.com" in line)
    assert formula_row.startswith("'=cmd@example.com,'=HYPERLINK(1),'@SUM(2)")


def test_segments_create_show_count_list_delete(people: Session) -> None:
    service.unsubscribe(people, "cem@example.com", source="test")
    segments.create_segment(people, "vip", {"tags_any": ["vip"]})
    with pytest.raises(AlreadyExists):
        segments.create_segment(people, "vip", {})
    with pytest.raises(InvalidInput):
        segments.create_segment(people, "bad", {"tags_any": []})
    with pytest.raises(InvalidInput):
        segments.create_segment(people, " ", {})
    view = segments.show_segment(people, "vip")
    assert (view.members, view.mailable) == (2, 1)
    assert segments.count_segment(people, "vip") == 2
    assert segments.count_segment(people, "vip", mailable=True) == 1
    assert count_audience(people, {"segment": "vip"}) == 1
    segments.create_segment(people, "vip", {"tags_all": ["vip", "lyon"]}, replace=True)
    assert segments.count_segment(people, "vip") == 1
    assert [v.name for v in segments.list_segments(people)] == ["vip"]
    segments.delete_segment(people, "vip")
    with pytest.raises(NotFound):
        segments.count_segment(people, "vip")
