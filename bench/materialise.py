"""Materialising a campaign: one message row per mailable recipient, resumable batches.

Builds a throw-away database (SQLite by default, PostgreSQL with --database-url) holding
1,000,000 subscribed customers (100 of them suppressed), then times `materialise` of an
every-subscriber campaign. Prints the customer load time, the materialisation time and rate;
the last line is `materialise_rows/s=… seconds=… rows=…`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

WORKDIR_PREFIX = "dealmail-materialise-bench-"


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    try:
        run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default SQLite)")
    args = parser.parse_args()

    os.environ["DEALMAIL_DATA_DIR"] = str(workdir)
    os.environ["DEALMAIL_DATABASE_URL"] = args.database_url or f"sqlite:///{workdir / 'b.db'}"
    os.environ["DEALMAIL_SECRET_KEY"] = secrets.token_urlsafe(48)

    from sqlalchemy import func, insert, select

    from dealmail.config import get_settings
    from dealmail.contacts.consent import add_suppression
    from dealmail.contacts.identity import email_hash, email_key
    from dealmail.db import get_engine, migrate, session_scope
    from dealmail.delivery.materialise import materialise
    from dealmail.models import Campaign, Customer, Message

    settings = get_settings()
    migrate(settings.resolved_database_url)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with session_scope(get_engine(settings)) as session:
        chunk = 50_000
        for first in range(0, args.recipients, chunk):
            rows = []
            for n in range(first, min(first + chunk, args.recipients)):
                email = f"customer{n:07d}@example.com"
                rows.append(
                    {
                        "email": email,
                        "email_key": email_key(email),
                        "email_hash": email_hash(email),
                        "status": "subscribed",
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            session.execute(insert(Customer), rows)
            session.commit()
        for n in range(0, args.recipients, max(1, args.recipients // 100)):
            add_suppression(session, f"customer{n:07d}@example.com", "manual", "bench")
        campaign = Campaign(name="bench", subject="Hello", status="sending", audience={})
        session.add(campaign)
        session.commit()
        print(f"loaded {args.recipients:,} customers in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        rows_added = materialise(session, campaign.id, batch_size=args.batch)
        seconds = time.perf_counter() - started
        stored = session.scalar(select(func.count()).select_from(Message))
    assert stored == rows_added
    print(f"materialised {rows_added:,} messages in {seconds:.2f} s ({args.batch:,} a batch)")
    print(f"materialise_rows/s={rows_added / seconds:.0f} seconds={seconds:.2f} rows={rows_added}")


if __name__ == "__main__":
    main()
