"""The supervisor restarts a child that dies and stops every child when asked."""

from __future__ import annotations

import sys
import time

from dealmail.supervisor import Child, supervise


def test_restarts_a_dead_child_and_stops_all() -> None:
    sleeper = Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    crasher = Child("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    lines: list[str] = []
    deadline = time.monotonic() + 4

    supervise(
        [sleeper, crasher],
        log=lines.append,
        poll_interval=0.05,
        should_stop=lambda: time.monotonic() > deadline,
    )

    assert any("crasher exited with code 3" in line for line in lines)
    assert any("restarting crasher" in line for line in lines)
    assert not any("sleeper exited" in line for line in lines)
    assert sleeper.process is not None
    assert sleeper.process.poll() is not None  # stopped at the end
