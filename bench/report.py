"""Times every report query on SQLite with 1,000,000 messages and 100,000 redemptions seeded.

Usage: .venv/bin/python bench/report.py [--messages N] [--redemptions N] [--keep]
Prints one line per query: the first run, then over the next runs the median and best wall
time and the median CPU time, all in ms; last, `max_query_ms=<slowest median wall time>`.
Target: every query under 300 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, update

from dealmail.analytics._sql import RedemptionScope
from dealmail.analytics.campaigns import campaign_report, campaign_reports
from dealmail.analytics.exports import redemption_rows, write_redemptions_csv
from dealmail.analytics.overview import overview
from dealmail.analytics.redemptions import (
    discount_given,
    redemption_count,
    redemptions_by_device,
    redemptions_by_location,
    redemptions_over_time,
)
from dealmail.config import Settings
from dealmail.db import make_engine, migrate, read_only, session_factory
from dealmail.models import (
    Campaign,
    Coupon,
    Customer,
    Deal,
    Device,
    Event,
    Location,
    Message,
    Redemption,
    Setting,
)

OUT = Path(__file__).parent / ".out" / "report"
BATCH = 50_000
CAMPAIGNS = 5
ZONE = "Europe/London"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RUNS = 7


def batched(rows: Iterator[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk(connection: Connection, table: Any, rows: Iterator[dict[str, Any]]) -> int:
    total = 0
    for chunk in batched(rows):
        connection.execute(insert(table), chunk)
        total += len(chunk)
    return total


def seed(engine: Engine, messages: int, redemptions: int) -> dict[str, int]:
    """Customers, campaigns, messages, events, coupons, redemptions: plain Core bulk inserts."""
    rng = random.Random(7)
    customers = messages // CAMPAIGNS
    now = START
    with engine.begin() as connection:
        connection.execute(insert(Setting), [{"key": "timezone", "value": {"v": ZONE}}])
        connection.execute(
            insert(Location),
            [{"id": i, "name": f"Store {i}", "timezone": ZONE} for i in range(1, 5)],
        )
        connection.execute(
            insert(Device),
            [
                {"id": i, "name": f"till-{i}", "location_id": 1 + i % 4, "key_hash": f"{i:064x}"}
                for i in range(1, 11)
            ],
        )
        connection.execute(
            insert(Deal),
            [
                {
                    "id": 1,
                    "name": "five",
                    "kind": "amount_off",
                    "value": Decimal(5),
                    "currency": "GBP",
                    "title": "£5 off",
                },
                {
                    "id": 2,
                    "name": "tenpct",
                    "kind": "percent_off",
                    "value": Decimal(10),
                    "title": "10% off",
                    "currency": None,
                },
            ],
        )
        connection.execute(
            insert(Campaign),
            [
                {
                    "id": c,
                    "name": f"Campaign {c}",
                    "subject": "Hello",
                    "status": "sent" if c < CAMPAIGNS else "sending",
                    "deal_id": 1 + c % 2,
                    "started_at": START + timedelta(days=14 * (c - 1)),
                }
                for c in range(1, CAMPAIGNS + 1)
            ],
        )
        bulk(
            connection,
            Customer,
            (
                {
                    "id": i,
                    "email": f"customer{i:07d}@example.com",
                    "email_key": f"customer{i:07d}@example.com",
                    "email_hash": f"{i:064x}",
                    "status": "subscribed" if i % 50 else "unsubscribed",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, customers + 1)
            ),
        )

        def message_rows() -> Iterator[dict[str, Any]]:
            for c in range(1, CAMPAIGNS + 1):
                for i in range(1, customers + 1):
                    roll = rng.random()
                    if c == CAMPAIGNS and roll < 0.2:
                        status = "queued"
                    elif roll < 0.93 or c == CAMPAIGNS:
                        status = "sent"
                    elif roll < 0.96:
                        status = "bounced"
                    elif roll < 0.98:
                        status = "failed"
                    else:
                        status = "skipped"
                    yield {
                        "id": (c - 1) * customers + i,
                        "campaign_id": c,
                        "customer_id": i,
                        "email": f"customer{i:07d}@example.com",
                        "status": status,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }

        counts = {"messages": bulk(connection, Message, message_rows())}

        def coupon_rows() -> Iterator[dict[str, Any]]:
            for message_id in range(1, messages + 1):
                c = 1 + (message_id - 1) // customers
                yield {
                    "id": message_id,
                    "message_id": message_id,
                    "campaign_id": c,
                    "customer_id": 1 + (message_id - 1) % customers,
                    "deal_id": 1 + c % 2,
                    "nonce": "n",
                    "token_hash": f"t{message_id:063x}",
                    "short_code_hash": f"s{message_id:063x}",
                    "created_at": now,
                }

        counts["coupons"] = bulk(connection, Coupon, coupon_rows())

        def event_rows() -> Iterator[dict[str, Any]]:
            # Campaigns 1 and 2 went out through a provider that reports deliveries.
            for message_id in range(1, messages + 1):
                c = 1 + (message_id - 1) // customers
                customer = 1 + (message_id - 1) % customers
                roll = rng.random()
                if c <= 2 and roll < 0.9:
                    yield {"message_id": message_id, "campaign_id": c, "customer_id": customer,
                           "kind": "delivered", "at": now, "detail": {}}  # fmt: skip
                if roll > 0.995:
                    yield {"message_id": message_id, "campaign_id": c, "customer_id": customer,
                           "kind": "unsubscribed", "at": now, "detail": {}}  # fmt: skip
                if 0.3 < roll < 0.45:
                    yield {"message_id": message_id, "campaign_id": c, "customer_id": customer,
                           "kind": "opened", "at": now, "detail": {}}  # fmt: skip

        counts["events"] = bulk(connection, Event, event_rows())

        chosen = sorted(rng.sample(range(1, messages + 1), redemptions))

        def redemption_rows_() -> Iterator[dict[str, Any]]:
            for number, coupon_id in enumerate(chosen, start=1):
                c = 1 + (coupon_id - 1) // customers
                device = rng.randint(1, 10)
                yield {
                    "id": number,
                    "coupon_id": coupon_id,
                    "campaign_id": c,
                    "location_id": 1 + device % 4,
                    "device_id": device,
                    "redeemed_at": START
                    + timedelta(days=14 * (c - 1), seconds=rng.randint(3600, 40 * 86400)),
                    "discount_value": Decimal("5.00") if c % 2 == 0 else None,
                }

        counts["redemptions"] = bulk(connection, Redemption, redemption_rows_())
        # 1 % voided: a reversal row each, pointing back.
        voided = chosen[::100]
        voids = [
            {"id": redemptions + 1 + k, "coupon_id": coupon_id, "voids_id": 1 + k * 100,
             "redeemed_at": START + timedelta(days=60), "reason": "till error"}
            for k, coupon_id in enumerate(voided)
        ]  # fmt: skip
        connection.execute(insert(Redemption), voids)
        for row in voids:
            connection.execute(
                update(Redemption)
                .where(Redemption.id == row["voids_id"])
                .values(voided_by_id=row["id"])
            )
        counts["voids"] = len(voids)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return counts


def timed(label: str, work: Callable[[], object], results: dict[str, float]) -> None:
    """Wall time (what the owner waits) and this process's CPU time: SQLite runs in-process, so
    the gap between them is time spent waiting for a core that other programs held."""
    first_start = time.perf_counter()
    work()
    first = (time.perf_counter() - first_start) * 1000
    walls, cpus = [], []
    for _ in range(RUNS):
        start, cpu_start = time.perf_counter(), time.process_time()
        work()
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu_start) * 1000)
    median = statistics.median(walls)
    results[label] = median
    print(
        f"{label:34} first {first:7.1f}  median {median:7.1f}  best {min(walls):7.1f}  "
        f"cpu {statistics.median(cpus):6.1f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--redemptions", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="reuse a database seeded before")
    args = parser.parse_args()
    database = OUT / f"report_{args.messages}_{args.redemptions}.db"
    if not (args.keep and database.exists()):
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir(parents=True)
        url = f"sqlite:///{database}"
        migrate(url)
        started = time.perf_counter()
        counts = seed(make_engine(url), args.messages, args.redemptions)
        seconds = time.perf_counter() - started
        print(f"seeded {counts} in {seconds:.1f} s", flush=True)
    url = f"sqlite:///{database}"
    engine = read_only(make_engine(url))
    settings = Settings(database_url=url, data_dir=OUT)
    zone = ZoneInfo(ZONE)
    results: dict[str, float] = {}
    with session_factory(engine)() as session:
        busiest = 1
        home_now = START + timedelta(days=30)
        everything = RedemptionScope()
        one = RedemptionScope(campaign_id=busiest)
        store = RedemptionScope(location_id=2)
        queries: list[tuple[str, Callable[[], object]]] = [
            ("campaign_report (1 campaign)", lambda: campaign_report(session, busiest)),
            ("campaign_reports (comparison)", lambda: campaign_reports(session)),
            (
                "redemptions_over_time (all)",
                lambda: redemptions_over_time(session, everything, zone),
            ),
            ("redemptions_over_time (campaign)", lambda: redemptions_over_time(session, one, zone)),
            ("redemptions_by_location (all)", lambda: redemptions_by_location(session, everything)),
            ("redemptions_by_device (all)", lambda: redemptions_by_device(session, everything)),
            ("redemptions_by_device (campaign)", lambda: redemptions_by_device(session, one)),
            ("discount_given (all)", lambda: discount_given(session, everything)),
            ("redemption_count (one store)", lambda: redemption_count(session, store)),
            ("overview (home screen)", lambda: overview(session, settings, now=home_now)),
        ]
        for label, work in queries:
            timed(label, work, results)
        started = time.perf_counter()
        written = write_redemptions_csv(
            redemption_rows(session, date(2026, 1, 1), date(2026, 1, 31)), io.StringIO()
        )
        export_ms = (time.perf_counter() - started) * 1000
        print(f"(export, not a report query) CSV of {written} redemptions: {export_ms:.0f} ms")
    slowest = max(results, key=lambda key: results[key])
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    cores = os.cpu_count()
    print(f"slowest: {slowest}; target: each under 300 ms; load average {load} on {cores} cores")
    print(f"max_query_ms={results[slowest]:.0f}")


if __name__ == "__main__":
    main()
