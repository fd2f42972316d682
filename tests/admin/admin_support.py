"""Helpers for the dashboard tests: read what a page shows."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dealmail.models import (
    Campaign,
    Coupon,
    Customer,
    Deal,
    Device,
    Location,
    Message,
    Redemption,
    utcnow,
)

PASSWORD = "correct horse battery"


def texts(at: AppTest) -> str:
    """Everything readable on the page, to search in."""
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption]
    parts += [e.value for e in at.title] + [e.value for e in at.subheader]
    parts += [e.value for e in at.success] + [e.value for e in at.error]
    parts += [e.value for e in at.warning] + [e.value for e in at.info]
    return "\n".join(str(p) for p in parts)


def button(at: AppTest, label: str) -> Any:
    """The (form submit) button with this label."""
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def submit(at: AppTest, label: str) -> AppTest:
    button(at, label).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def image_captions(at: AppTest) -> list[str]:
    """Captions of the images on the page (AppTest has no accessor for st.image)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if getattr(node, "type", None) == "image":
            found.extend(img.caption for img in node.proto.imgs)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def seed_results(session: Session) -> None:
    """A sent campaign ('Spring', amount-off deal of 5 EUR) to three customers; two coupons
    redeemed at 'Main St' by 'till-1', one of them today."""
    now = utcnow()
    main = Location(name="Main St", timezone="UTC")
    session.add(main)
    session.flush()
    till = Device(name="till-1", location_id=main.id, key_hash=secrets.token_hex(32))
    deal = Deal(name="five", kind="amount_off", value=Decimal(5), currency="EUR", title="5 off")
    session.add_all([till, deal])
    session.flush()
    spring = Campaign(
        name="Spring",
        subject="Hi",
        deal_id=deal.id,
        status="sent",
        started_at=now - timedelta(days=2),
    )
    customers = [
        Customer(email=f"c{i}@example.com", email_key=f"c{i}@example.com") for i in range(3)
    ]
    session.add_all([spring, *customers])
    session.flush()
    for number, customer in enumerate(customers):
        message = Message(
            campaign_id=spring.id, customer_id=customer.id, email=customer.email, status="sent"
        )
        session.add(message)
        session.flush()
        coupon = Coupon(
            message_id=message.id,
            campaign_id=spring.id,
            customer_id=customer.id,
            deal_id=deal.id,
            nonce=secrets.token_hex(8),
            token_hash=secrets.token_hex(32),
            short_code_hash=secrets.token_hex(32),
        )
        session.add(coupon)
        session.flush()
        if number < 2:
            session.add(
                Redemption(
                    coupon_id=coupon.id,
                    campaign_id=spring.id,
                    location_id=main.id,
                    device_id=till.id,
                    redeemed_at=now - timedelta(days=number),
                    discount_value=Decimal(5),
                )
            )
    session.commit()


PASSWORD = "correct horse battery"
