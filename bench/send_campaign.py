"""End-to-end sending rate against plain smtplib, to the same aiosmtpd sink, same connections.

Builds a throw-away database (SQLite, or PostgreSQL with --database-url) with 20,000 customers,
a deal and a campaign on the classic theme, an RSA-2048 DKIM key; `campaigns send` materialises
it; then N `dealmail worker --until-idle` processes (one SMTP connection each) claim, render
(unique QR coupon each), DKIM-sign and send everything to an aiosmtpd sink running in its own
process. Then, in the same run, N plain-smtplib processes send prebuilt messages of the same
campaign (composed beforehand, cycled to the same count) to the same sink over N connections.

Prints the materialisation time, both rates and memory, sampled from /proc every 0.5 s while
the workers run: the peak RSS of any one worker process (its VmHWM; not RUSAGE_CHILDREN's
ru_maxrss, which also counts this script's own pages, shared at fork before the exec), and the
peak of one worker together with its children (its composing process) as RSS summed (shared
pages counted twice) and as PSS summed (shared pages split: what the worker really holds).
The default is one worker over one connection, the issue's reference (plain smtplib's ~680/s
over one connection). With --workers 2 on a 2-core machine the two workers, their composing
processes and the sink share two cores, while plain smtplib's two connections leave the sink a
whole core: that ratio measures the machine more than our code.

The last line is
`e2e_msgs/s=… smtplib_msgs/s=… ratio=… peak_worker_rss_mb=… peak_worker_tree_rss_mb=…
peak_worker_tree_pss_mb=…`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

SINK = """
import asyncio, signal, sys, threading
from aiosmtpd.controller import Controller
class Count:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 OK"
c = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=10_000_000)
c.start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
print("ready", flush=True)
done.wait()
c.stop()
print(Count.n, flush=True)
"""


WORKDIR_PREFIX = "dealmail-send-bench-"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"sink did not start on port {port}")


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(pid: int) -> list[int]:
    """The process and its descendants (Linux /proc)."""
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found += tree(int(child))
    return found


class MemorySampler:
    """Peak RSS and PSS of each worker's process tree, sampled while the workers run."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_kb = 0  # the largest VmHWM of any one process
        self.rss_kb = 0
        self.pss_kb = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.5):
            for pid in self.pids:
                members = tree(pid)
                peaks = [_kb(f"/proc/{p}/status", "VmHWM:") for p in members]
                self.peak_kb = max(self.peak_kb, *peaks)
                rss = sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in members)
                pss = sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in members)
                self.rss_kb = max(self.rss_kb, rss)
                self.pss_kb = max(self.pss_kb, pss)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def smtplib_sender(port: int, messages: list[tuple[str, str, bytes]], start: float) -> None:
    while time.time() < start:  # all senders begin together
        time.sleep(0.001)
    client = smtplib.SMTP("127.0.0.1", port)
    for sender, rcpt, raw in messages:
        client.sendmail(sender, [rcpt], raw)
    client.quit()


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    try:
        run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes = connections (default 1)"
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default SQLite)")
    parser.add_argument("--prebuilt", type=int, default=2_000, help="distinct smtplib messages")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALMAIL_")}
    sink_port = free_port()
    env.update(
        {
            "DEALMAIL_DATA_DIR": str(workdir),
            "DEALMAIL_DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'bench.db'}",
            "DEALMAIL_SECRET_KEY": secrets.token_urlsafe(48),
            "DEALMAIL_DKIM_SELECTOR": "bench",
            "DEALMAIL_DKIM_DOMAIN": "shop.example",
            "DEALMAIL_EMAIL_BACKEND": "smtp",
            "DEALMAIL_SMTP_HOST": "127.0.0.1",
            "DEALMAIL_SMTP_PORT": str(sink_port),
            "DEALMAIL_WORKER_POLL_SECONDS": "0.2",
        }
    )
    os.environ.update(env)

    from sqlalchemy import insert, select

    from dealmail.config import get_settings
    from dealmail.contacts.identity import email_hash, email_key
    from dealmail.db import get_engine, migrate, session_scope
    from dealmail.delivery import control, dkim
    from dealmail.delivery.compose import Composer
    from dealmail.models import Campaign, Customer, Deal, Message
    from dealmail.shop import set_settings

    settings = get_settings()
    migrate(settings.resolved_database_url)
    dkim.generate_key(dkim.default_key_path(settings, "bench"))
    now = datetime.now(UTC)
    with session_scope(get_engine(settings)) as session:
        set_settings(
            session,
            {
                "shop_name": "Corner Shop",
                "sender_email": "shop@shop.example",
                "postal_address": "1 High Street, Town",
                "public_url": "https://shop.example",
                "max_connections": args.workers,
            },
        )
        session.execute(
            insert(Customer),
            [
                {
                    "email": f"customer{n:07d}@example.com",
                    "email_key": email_key(f"customer{n:07d}@example.com"),
                    "email_hash": email_hash(f"customer{n:07d}@example.com"),
                    "first_name": f"Name{n}",
                    "status": "subscribed",
                    "attributes": {},
                    "consent_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(args.recipients)
            ],
        )
        deal = Deal(
            name="spring", kind="percent_off", value=Decimal(20), title="20% off", valid_days=30
        )
        session.add(deal)
        session.flush()
        campaign = Campaign(
            name="bench",
            subject="Spring deals, {{ first_name }}",
            theme="classic",
            deal_id=deal.id,
            audience={},
            content={
                "heading": "Spring is here",
                "body_markdown": "Twenty percent off **everything** this week.\n\nSee you soon!",
                "button_text": "Visit us",
                "button_url": "https://shop.example/visit",
            },
        )
        session.add(campaign)
        session.commit()
        started = time.perf_counter()
        control.send_campaign(session, "bench", settings)
        materialise_s = time.perf_counter() - started
        total = session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1))
    print(f"materialised {args.recipients:,} messages in {materialise_s:.2f} s", flush=True)

    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(sink_port)], stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None
    sink.stdout.readline()
    wait_for_port(sink_port)

    # --- end to end: N worker processes ---------------------------------------------------
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "dealmail", "worker", "--until-idle"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]
    sampler = MemorySampler([worker.pid for worker in workers])
    codes = [worker.wait() for worker in workers]
    e2e_s = time.perf_counter() - started
    sampler.stop()
    peak_kb = sampler.peak_kb
    with session_scope(get_engine(settings)) as session:
        status = control.campaign_status(session, "bench")
    if codes != [0] * args.workers or status["sent"] != args.recipients:
        raise SystemExit(f"workers exited {codes}; status {status}")
    e2e_rate = args.recipients / e2e_s
    print(
        f"end to end: {args.recipients:,} messages by {args.workers} workers in {e2e_s:.1f} s "
        f"(worker start-up included) = {e2e_rate:.0f} msgs/s",
        flush=True,
    )

    # --- plain smtplib: the same campaign's messages, prebuilt ---------------------------
    with session_scope(get_engine(settings)) as session:
        composer = Composer.for_campaign(session, 1, settings)
        ids = list(session.scalars(select(Message.id).order_by(Message.id).limit(args.prebuilt)))
        recipients = composer.load_recipients(session, ids)
        prebuilt = [composer.compose(recipients[i]) for i in ids]
    assert total is not None
    wire = [(m.envelope_from, m.recipients[0], m.raw) for m in prebuilt]
    size = sum(len(raw) for _f, _t, raw in wire) / len(wire)
    print(f"prebuilt {len(wire):,} messages, {size / 1024:.1f} KB on average", flush=True)
    messages = [wire[n % len(wire)] for n in range(args.recipients)]
    shares = [messages[n :: args.workers] for n in range(args.workers)]
    context = multiprocessing.get_context("fork")
    begin = time.time() + 0.5
    senders = [
        context.Process(target=smtplib_sender, args=(sink_port, share, begin)) for share in shares
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    smtplib_s = time.time() - begin
    smtplib_rate = args.recipients / smtplib_s
    print(
        f"plain smtplib: {args.recipients:,} messages over {args.workers} connections in "
        f"{smtplib_s:.1f} s = {smtplib_rate:.0f} msgs/s",
        flush=True,
    )
    sink.send_signal(signal.SIGTERM)
    received = int(sink.communicate(timeout=30)[0].strip() or 0)
    print(f"sink received {received:,} messages in all", flush=True)
    print(
        f"e2e_msgs/s={e2e_rate:.0f} smtplib_msgs/s={smtplib_rate:.0f} "
        f"ratio={e2e_rate / smtplib_rate:.2f} peak_worker_rss_mb={peak_kb / 1024:.0f} "
        f"peak_worker_tree_rss_mb={sampler.rss_kb / 1024:.0f} "
        f"peak_worker_tree_pss_mb={sampler.pss_kb / 1024:.0f}"
    )


if __name__ == "__main__":
    main()
