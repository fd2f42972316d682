"""Runs child processes (web, worker, dashboard, dev inbox), restarts one that dies, stops all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RESTART_BACKOFF_MAX = 30.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv)  # noqa: S603 - argv is our own command line
        self.started_at = time.monotonic()


def dealmail_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "dealmail", *args]


def supervise(
    children: list[Child],
    log: Callable[[str], None],
    poll_interval: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Block until SIGINT/SIGTERM (or should_stop); then stop every child gracefully."""
    stopping = False

    def _request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for child in children:
            child.start()
        while not stopping and not should_stop():
            now = time.monotonic()
            for child in children:
                if child.process is None:
                    if now >= child.next_start:
                        log(f"restarting {child.name}")
                        child.start()
                    continue
                code = child.process.poll()
                if code is None:
                    continue
                # A child that lived a while gets restarted at once; a crash loop backs off.
                lived = now - child.started_at
                child.restarts = 0 if lived > RESTART_BACKOFF_MAX else child.restarts + 1
                delay = min(RESTART_BACKOFF_MAX, 0.5 * 2**child.restarts)
                log(f"{child.name} exited with code {code}; restarting in {delay:.1f} s")
                child.process = None
                child.next_start = now + delay
            time.sleep(poll_interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_all(children)


def stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process is not None and child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
