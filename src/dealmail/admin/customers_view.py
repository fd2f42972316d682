"""The Contacts screen's search and customer page: consent history, tags, coupons, redemptions;
tag, untag, unsubscribe, resubscribe with proof, delete."""

from __future__ import annotations

import streamlit as st

from dealmail.admin._ui import attempt, db, local_time, reading, table
from dealmail.analytics.customers import customer_coupons, customer_redemptions
from dealmail.contacts.consent import ConsentProof
from dealmail.contacts.queries import CustomerView, counts_by_tag, customer_by_email, list_customers
from dealmail.contacts.service import (
    delete_customer,
    resubscribe,
    tag_customers,
    unsubscribe,
    untag_customers,
)
from dealmail.models import CustomerStatus
from dealmail.shop import get_shop_settings

ANY = "(any)"
PAGE = 50


def _search() -> str | None:
    with reading() as session:
        tags = list(counts_by_tag(session))
    cols = st.columns([3, 1, 1])
    text = cols[0].text_input("Search by address or name", key="customer_search")
    status = cols[1].selectbox(
        "Status", [ANY, *(s.value for s in CustomerStatus)], key="customer_status"
    )
    tag = cols[2].selectbox("Tag", [ANY, *tags], key="customer_tag")
    with reading() as session:
        found = attempt(
            lambda: list_customers(
                session,
                search=text or None,
                status=None if status == ANY else status,
                tag=None if tag == ANY else tag,
                limit=PAGE,
            )
        )
    if found is None:
        return None
    st.caption(
        f"{found.total} customers match"
        + (f"; the first {PAGE} are shown." if found.total > PAGE else ".")
    )
    table(
        [
            {
                "email": c.email,
                "name": " ".join(p for p in (c.first_name, c.last_name) if p),
                "status": c.status,
                "tags": ", ".join(c.tags),
            }
            for c in found.items
        ],
        empty="No customer matches.",
    )
    emails = [c.email for c in found.items]
    if not emails:
        return None
    return st.selectbox("Open a customer", emails)


def _details(view: CustomerView) -> None:
    with reading() as session:
        zone = get_shop_settings(session).zone
        coupons = customer_coupons(session, view.id)
        redemptions = customer_redemptions(session, view.id)
    st.subheader(view.email)
    cols = st.columns(4)
    cols[0].metric("Status", view.status)
    cols[1].metric("Tags", len(view.tags))
    cols[2].metric("Coupons", len(coupons))
    cols[3].metric("Redemptions", sum(1 for r in redemptions if not r["voided"]))
    name = " ".join(p for p in (view.first_name, view.last_name) if p) or "—"
    st.markdown(
        f"Name: **{name}** · phone: {view.phone or '—'} · tags: {', '.join(view.tags) or '—'}"
        + (" · **on the suppression list**" if view.suppressed else "")
    )
    st.markdown(
        f"Consent: {local_time(view.consent_at, zone)} from {view.consent_source or '—'}"
        + (f" (IP {view.consent_ip})" if view.consent_ip else "")
    )
    if view.attributes:
        st.json(view.attributes, expanded=False)
    st.markdown("**Consent history**")
    table(
        [
            {
                "when": local_time(e.at, zone),
                "what": e.kind,
                "source": e.source or "",
                "ip": e.ip or "",
                "wording": e.wording or "",
            }
            for e in view.history
        ],
        empty="No consent event recorded.",
    )
    st.markdown("**Coupons**")
    table(
        [
            {
                **c,
                "expires": local_time(c["expires"], zone),
                "issued": local_time(c["issued"], zone),
            }
            for c in coupons
        ],
        empty="No coupon yet.",
    )
    st.markdown("**Redemptions**")
    table([{**r, "when": local_time(r["when"], zone)} for r in redemptions], empty="None yet.")


def _actions(view: CustomerView) -> None:
    email = view.email
    left, right = st.columns(2)
    with left.form("tag_customer"):
        tag = st.text_input("Add a tag", key="customer_add_tag")
        if st.form_submit_button("Tag"):
            with db() as session:
                attempt(
                    lambda: tag_customers(session, tag, emails=[email]), success=f"Tagged {tag!r}."
                )
    if view.tags:
        with right.form("untag_customer"):
            old = st.selectbox("Remove a tag", view.tags)
            if st.form_submit_button("Remove tag"):
                with db() as session:
                    attempt(
                        lambda: untag_customers(session, old, emails=[email]),
                        success=f"Tag {old!r} removed.",
                    )
    left, right = st.columns(2)
    if view.status == CustomerStatus.SUBSCRIBED:
        with left.form("unsubscribe_customer"):
            st.markdown("**Unsubscribe** (also suppresses the address)")
            if st.form_submit_button("Unsubscribe"):
                with db() as session:
                    attempt(
                        lambda: unsubscribe(session, email, source="dashboard"),
                        success=f"{email} unsubscribed.",
                    )
    elif view.status == CustomerStatus.UNSUBSCRIBED:
        with left.form("resubscribe_customer"):
            st.markdown("**Resubscribe** (only with a new consent)")
            source = st.text_input("Where did they agree again? (required)", key="resub_source")
            wording = st.text_input("Wording they agreed to (optional)", key="resub_wording")
            if st.form_submit_button("Resubscribe"):
                proof = ConsentProof(source=source.strip(), wording=wording.strip() or None)
                with db() as session:
                    attempt(
                        lambda: resubscribe(session, email, proof), success=f"{email} resubscribed."
                    )
    with right.form("delete_customer"):
        st.markdown("**Delete** (erases the person; the address stays suppressed)")
        sure = st.checkbox(f"Yes, erase {email}", key="delete_sure")
        if st.form_submit_button("Delete customer"):
            if not sure:
                st.error("Tick the box to confirm.")
            else:
                with db() as session:
                    attempt(lambda: delete_customer(session, email), success=f"{email} deleted.")


def render() -> None:
    chosen = _search()
    if chosen is None:
        return
    with reading() as session:
        view = attempt(lambda: customer_by_email(session, chosen))
    if view is None:
        return
    _details(view)
    _actions(view)
