"""Import 1,000,000 CSV rows (5 % duplicates) into a fresh SQLite database; print rows/s, peak RSS.

Usage: .venv/bin/python bench/import_contacts.py [--rows N] [--keep DIR] [--phases]
Last line: rows/s (wall clock), cpu_rows/s (by the importer's CPU time), total_cpu_rows/s (by
the importer's and the reading process's together), peak_rss_mb, load (1-minute load average:
on shared cores, wall-clock rows/s falls as it rises).
The file looks like a Mailchimp export: a few thousand distinct domains, names, a city column
(becomes an attribute), tags on some rows, opt-in times; duplicates differ in case and spacing.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

from dealmail.contacts import (
    bulk_indexes,
    import_merge,
    import_optins,
    import_writes,
    importer,
)
from dealmail.contacts.importer import import_contacts
from dealmail.db import dispose_engines, make_engine, migrate, session_factory

FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hugo",
    "Inès",
    "Jonas",
    "Klara",
    "Léa",
    "Max",
    "Noah",
    "Olivia",
]
LAST = [
    "Müller",
    "Schmidt",
    "Dubois",
    "Martin",
    "Smith",
    "Jones",
    "García",
    "Rossi",
    "Novak",
    "Jansen",
    "Nielsen",
    "Weber",
]
CITIES = ["Berlin", "Lyon", "Paris", "Hamburg", "Köln", "Lille", "Wien", "Zürich", "Bern"]
BIG = [
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "gmx.de",
    "web.de",
    "orange.fr",
    "free.fr",
    "icloud.com",
]


def domains(count: int, rng: random.Random) -> list[str]:
    tlds = ["com", "de", "fr", "org", "net", "ch", "at", "co.uk", "nl", "be"]
    small = [
        f"{rng.choice(['mail', 'shop', 'post', 'net', 'web', 'home'])}{i}.{rng.choice(tlds)}"
        for i in range(count)
    ]
    return BIG * (count // 20) + small  # the big providers take about a third of addresses


def write_csv(path: Path, rows: int, duplicate_share: float, seed: int = 7) -> None:
    rng = random.Random(seed)
    pool = domains(3000, rng)
    unique = int(rows * (1 - duplicate_share))
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Email Address,First Name,Last Name,City,TAGS,OPTIN_TIME\r\n")
        emitted: list[str] = []
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            if i < unique:
                email = f"{first.lower()}.{last.lower()}{i}@{rng.choice(pool)}"
                email = email.encode("ascii", "ignore").decode()
                if len(emitted) < 200_000:
                    emitted.append(email)
                elif rng.random() < 0.2:
                    emitted[rng.randrange(len(emitted))] = email
            else:
                base = rng.choice(emitted)
                email = rng.choice([base.upper(), f"  {base} ", base.capitalize()])
            tags = (
                '"VIP,Newsletter"' if rng.random() < 0.05 else ("regulars" if i % 10 == 0 else "")
            )
            when = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} 10:{i % 60:02d}:00"
            out.write(f"{email},{first},{last},{rng.choice(CITIES)},{tags},{when}\r\n")


# (module, name): each step is wrapped where its callers look it up.
PHASES: list[tuple[ModuleType | type, str]] = [
    (importer, "stage_file"),
    (import_merge, "_fold_by_upsert"),
    (import_merge, "_block_forbidden_opt_ins"),
    (import_merge, "_count_outcomes"),
    (import_optins, "_note_blocked"),
    (import_writes, "upsert_customers"),
    (import_writes, "record_opt_ins"),
    (bulk_indexes, "_create_indexes"),
    (import_writes, "link_tags"),
    (import_merge, "_apply_withdrawals"),
    # The end of the transaction: SQLite's commit includes the WAL checkpoint (the import's
    # ~600 MB copied into the database file and synced).
    (Session, "commit"),
]


def time_phases() -> dict[str, list[float]]:
    """Wrap the importer's steps to add up wall and CPU seconds per step."""
    spent: dict[str, list[float]] = {}

    def wrap(name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return step(*args, **kwargs)
            finally:
                totals = spent.setdefault(name, [0.0, 0.0])
                totals[0] += time.perf_counter() - wall
                totals[1] += time.process_time() - cpu

        return timed

    for module, name in PHASES:
        setattr(module, name, wrap(name, getattr(module, name)))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="directory to keep the CSV and database in")
    parser.add_argument("--phases", action="store_true", help="print time spent per step")
    args = parser.parse_args()
    spent = time_phases() if args.phases else {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = folder / "customers.csv"
        if not csv_path.exists():
            write_csv(csv_path, args.rows, 0.05)
        db_path = folder / "bench.db"
        db_path.unlink(missing_ok=True)
        url = f"sqlite:///{db_path}"
        migrate(url)
        dispose_engines()
        engine = make_engine(url)
        with session_factory(engine)() as session:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_cpu_before = before.ru_utime + before.ru_stime
            started, cpu_started = time.perf_counter(), time.process_time()
            report = import_contacts(session, [csv_path])
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        engine.dispose()
        for name, (wall, cpu_s) in spent.items():
            print(f"  {name:28} wall {wall:7.2f} s  cpu {cpu_s:7.2f} s")
        own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # The import parses big files in a child process: count its peak too (an upper
        # bound: the two peaks need not coincide), and its CPU time.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_mb = children.ru_maxrss / 1024
        child_cpu = children.ru_utime + children.ru_stime - child_cpu_before
        peak_mb = own_mb + child_mb
        total_cpu = cpu + child_cpu
        print(f"peak RSS: importer {own_mb:.0f} MB + reading process {child_mb:.0f} MB")
        print(
            f"rows={report.rows} created={report.created} merged_duplicates="
            f"{report.merged_duplicates} invalid={report.invalid} seconds={elapsed:.2f} "
            f"cpu_seconds: importer={cpu:.2f} reading process={child_cpu:.2f}"
        )
        # Wall-clock rows/s depends on the machine's load (shared cores), so the last line also
        # gives rows/s by CPU time: by the importer's own, and by both processes' together.
        print(
            f"rows/s={report.rows / elapsed:.0f} cpu_rows/s={report.rows / cpu:.0f} "
            f"total_cpu_rows/s={report.rows / total_cpu:.0f} peak_rss_mb={peak_mb:.0f} "
            f"load={os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
