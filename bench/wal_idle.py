"""What the WAL checkpointer costs while nothing is written: CPU time and wake-ups per second.

Usage: .venv/bin/python bench/wal_idle.py [--seconds S] [--idle-interval I]
Last line: idle_interval, cpu_ms_per_s (this process, the checkpointer thread being all it runs),
wakeups_per_s (voluntary context switches). --idle-interval 0.02 gives the fixed 20 ms of before.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from dealmail.db import make_engine
from dealmail.wal import IDLE_INTERVAL_S, WalCheckpointer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle-interval", type=float, default=IDLE_INTERVAL_S)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'idle.db'}")
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        checkpointer = WalCheckpointer(engine, idle_interval=args.idle_interval).start()
        time.sleep(2)  # past the back-off, to the steady idle state
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(args.seconds)
        after = resource.getrusage(resource.RUSAGE_SELF)
        checkpointer.stop()
        engine.dispose()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    wakeups = after.ru_nvcsw - before.ru_nvcsw
    print(
        f"idle_interval={args.idle_interval} cpu_ms_per_s={cpu * 1000 / args.seconds:.2f} "
        f"wakeups_per_s={wakeups / args.seconds:.1f}"
    )


if __name__ == "__main__":
    main()
