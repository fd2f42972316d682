"""Render 10,000 complete messages (fields, coupon, QR, MIME, DKIM) for distinct customers.

Builds a throw-away SQLite database with 10,000 customers, one message and one coupon each, a
campaign on the classic theme with a deal, and an RSA-2048 DKIM key; then loads recipients in
batches of 500 (one query each) and composes every message on one core. Prints the per-step
costs first and `messages/s=N` last: messages per second of this process's CPU time (one core),
so other processes on a shared machine do not distort it; the wall-clock rate is printed too.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

N = int(os.environ.get("BENCH_MESSAGES", "10000"))
BATCH = 500


def per_call_ms(fn: Callable[[], object], repeat: int = 2000) -> float:
    """CPU time per call: the machine is shared, so wall time would count other processes."""
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1000


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dealmail-bench-"))
    os.environ["DEALMAIL_DATA_DIR"] = str(workdir)
    os.environ["DEALMAIL_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"
    os.environ["DEALMAIL_SECRET_KEY"] = secrets.token_urlsafe(48)
    os.environ["DEALMAIL_DKIM_SELECTOR"] = "bench"
    os.environ["DEALMAIL_DKIM_DOMAIN"] = "shop.example"

    from dealmail.campaigns.service import CampaignInput, create_campaign
    from dealmail.config import get_settings
    from dealmail.contacts.identity import email_hash, email_key
    from dealmail.coupons.issue import coupon_row
    from dealmail.coupons.qr import png_from_modules, qr_png, scale_for
    from dealmail.coupons.tokens import derive_short_code, derive_token
    from dealmail.db import get_engine, migrate, session_scope
    from dealmail.deals.service import DealInput, create_deal
    from dealmail.delivery import dkim, mime
    from dealmail.delivery.compose import Composer
    from dealmail.models import Coupon, Customer, Message
    from dealmail.shop import set_settings

    settings = get_settings()
    migrate(settings.resolved_database_url)
    dkim.generate_key(dkim.default_key_path(settings, "bench"))
    secret = settings.secret_key_bytes()
    now = datetime.now(UTC)
    with session_scope(get_engine(settings)) as session:
        set_settings(
            session,
            {
                "shop_name": "Corner Bakery",
                "sender_name": "Corner Bakery",
                "sender_email": "hello@shop.example",
                "postal_address": "1 High Street, Springfield",
                "public_url": "https://deals.shop.example",
            },
        )
        deal = create_deal(
            session,
            DealInput(
                name="pastry",
                kind="percent_off",
                value="20",
                title="20% off any pastry",
                terms="One per visit.",
                valid_days=14,
            ),
        )
        campaign = create_campaign(
            session,
            "bench",
            CampaignInput(
                subject="{{ first_name | default('Hello') }}, a treat from the bakery",
                preheader="20% off for {{ first_name | default('you') }}",
                deal="pastry",
                heading="Spring pastries are back",
                body_markdown=(
                    "Hello **{{ first_name | default('there') }}**,\n\n"
                    "our spring pastries are back in the window{% if attributes.city %} "
                    "of our {{ attributes.city }} shop{% endif %}. Show the code below at "
                    "the till.\n\n* croissants\n* cinnamon buns\n* rye bread\n"
                ),
                button_text="See what is baking",
                button_url="https://shop.example/today",
            ),
        )
        rows = []
        for n in range(N):
            address = f"customer{n:05d}@example.org"
            rows.append(
                {
                    "email": address,
                    "email_key": email_key(address),
                    "email_hash": email_hash(address),
                    "first_name": f"Zoë{n}" if n % 5 == 0 else f"Name{n}",
                    "last_name": "Müller" if n % 7 == 0 else "Smith",
                    "attributes": {"city": "Springfield"},
                    "status": "subscribed",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(Customer), rows)
        ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        session.execute(
            insert(Message),
            [
                {
                    "campaign_id": campaign.id,
                    "customer_id": cid,
                    "email": f"customer{i:05d}@example.org",
                    "status": "queued",
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, cid in enumerate(ids)
            ],
        )
        message_ids = list(session.scalars(select(Message.id).order_by(Message.id)))
        coupons = []
        for mid, cid in zip(message_ids, ids, strict=True):
            row = coupon_row(
                secret,
                deal,
                campaign_id=campaign.id,
                customer_id=cid,
                message_id=mid,
                is_test=False,
                issued_at=now,
            )
            coupons.append(
                {
                    c.key: getattr(row, c.key)
                    for c in Coupon.__table__.columns
                    if c.key != "id" and getattr(row, c.key) is not None
                }
            )
        session.execute(insert(Coupon), coupons)
        session.commit()
        campaign_id = campaign.id

        started = time.perf_counter()
        composer = Composer.for_campaign(session, campaign_id, settings)
        prepare_ms = (time.perf_counter() - started) * 1000
        assert composer.dkim_key is not None

        load_s = compose_s = compose_cpu = 0.0
        total_bytes = 0
        for start in range(0, N, BATCH):
            batch = message_ids[start : start + BATCH]
            t0 = time.perf_counter()
            recipients = composer.load_recipients(session, batch)
            t1, c1 = time.perf_counter(), time.process_time()
            for message_id in batch:
                total_bytes += len(composer.compose(recipients[message_id]).raw)
            t2, c2 = time.perf_counter(), time.process_time()
            load_s += t1 - t0
            compose_s += t2 - t1
            compose_cpu += c2 - c1

        # Per-step costs, each measured alone on one recipient.
        sample = composer.load_recipients(session, message_ids[:1])[message_ids[0]]
    nonce = sample.coupon_nonce
    assert nonce is not None
    coupon = composer.coupon_for(sample)
    assert coupon is not None
    context = composer.context_for(sample, coupon, qr_src="cid:x@y")
    html, text = composer.compiled.html.render(context), composer.compiled.text.render(context)
    import numpy as np
    import zxingcpp

    barcode = zxingcpp.create_barcode(coupon.url, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    modules = np.asarray(barcode.to_image(scale=1)) < 128
    body = mime.assemble_body(
        composer.skeleton, html=html, text=text, png=coupon.png, content_id="x@y"
    )
    headers = [("From", "a@b"), ("To", "c@d"), ("Subject", "s")]
    steps = {
        "token + short code (HMAC)": per_call_ms(
            lambda: (derive_token(secret, nonce), derive_short_code(secret, nonce))
        ),
        "fields: context + html + text render": per_call_ms(
            lambda: (
                composer.compiled.html.render(composer.context_for(sample, coupon, qr_src="c")),
                composer.compiled.text.render(context),
            )
        ),
        "QR encode (zxing-cpp, level M)": per_call_ms(
            lambda: zxingcpp.create_barcode(coupon.url, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
        ),
        "QR PNG (1-bit, zlib)": per_call_ms(
            lambda: png_from_modules(modules, scale_for(modules.shape[0]))
        ),
        "QR total (qr_png)": per_call_ms(lambda: qr_png(coupon.url)),
        "MIME from skeleton (QP + base64)": per_call_ms(
            lambda: mime.assemble_body(
                composer.skeleton, html=html, text=text, png=coupon.png, content_id="x@y"
            )
        ),
        "DKIM rsa-sha256 relaxed (OpenSSL)": per_call_ms(
            lambda: dkim.sign(composer.dkim_key, headers, body),
            repeat=500,  # type: ignore[arg-type]
        ),
        "compose() complete": per_call_ms(lambda: composer.compose(sample), repeat=1000),
    }
    print(f"messages: {N}, average size {total_bytes / N / 1024:.1f} KiB, DKIM RSA-2048")
    print(f"per campaign, once: compile + inline CSS + key load {prepare_ms:.1f} ms")
    for name, ms in steps.items():
        print(f"  {name:40} {ms:7.3f} ms")
    print(f"load recipients ({BATCH} a query): {load_s / N * 1000:.3f} ms/message")
    print(
        f"wall clock (shared machine): compose {N / compose_s:.0f} messages/s, "
        f"with loading {N / (compose_s + load_s):.0f} messages/s"
    )
    print(f"python {sys.version.split()[0]}, one process; figure below = per CPU-second of it")
    print(f"messages/s={N / compose_cpu:.0f}")


if __name__ == "__main__":
    main()
