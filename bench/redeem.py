"""Validate and redeem throughput and latency with 32 clients, beside the same server's /healthz.

Starts `dealmail web` (uvicorn, uvloop + httptools) on a fresh SQLite data directory seeded with
coupons and an API key, then drives 32 concurrent connections on loopback with wrk (`apt-get
install wrk`) or, without it, an httpx async client (slower: the client then limits the figures).
Each redeem uses a fresh coupon and Idempotency-Key. The last line holds the figures.

    .venv/bin/python bench/redeem.py [--seconds 5] [--rounds 3] [--connections 32] [--coupons 60000]

After a 2 s warm-up of each (not measured), each round runs healthz, validate and redeem in turn;
the summary pools the rounds (mean rate, median p50, worst p99) and the last line adds server CPU
per request and the load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from dealmail.coupons.tokens import (
    derive_short_code,
    derive_token,
    new_nonce,
    short_code_hash,
    token_hash,
)
from dealmail.db import make_engine, migrate, session_factory
from dealmail.locations import service as locations
from dealmail.models import Coupon, Deal

WRK_THREADS = 2
WRK_SCRIPT = """
local tokens = {}
local index = 0
local step = 1
local counter = 0
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  step = tonumber(args[2])
  index = id
  mode = args[3]
  key = args[4]
  run = args[5]
end

function request()
  local token = tokens[(index % #tokens) + 1]
  index = index + step
  counter = counter + 1
  local headers = {["Authorization"] = "Bearer " .. key}
  if mode == "healthz" then
    return wrk.format("GET", "/healthz", headers)
  end
  if mode == "redeem" then
    headers["Content-Type"] = "application/json"
    headers["Idempotency-Key"] = "bench-" .. run .. "-" .. id .. "-" .. counter
    return wrk.format("POST", "/api/v1/redemptions", headers, '{"code": "' .. token .. '"}')
  end
  return wrk.format("GET", "/api/v1/coupons/" .. token, headers)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def seed(url: str, secret: bytes, count: int) -> tuple[str, list[str]]:
    """A location, an API key and `count` single-use coupons; returns the key and tokens."""
    migrate(url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        locations.add_location(session, "Main St", timezone="UTC")
        key = locations.add_device(session, "Bench till", "Main St").key
        deal = Deal(name="Bench", kind="percent_off", title="10% off")
        session.add(deal)
        session.commit()
        tokens, rows = [], []
        for _ in range(count):
            nonce = new_nonce()
            token = derive_token(secret, nonce)
            tokens.append(token)
            rows.append(
                {
                    "deal_id": deal.id,
                    "nonce": nonce,
                    "token_hash": token_hash(token),
                    "short_code_hash": short_code_hash(secret, derive_short_code(secret, nonce)),
                    "max_uses": 1,
                }
            )
        for start in range(0, len(rows), 5000):
            session.execute(insert(Coupon), rows[start : start + 5000])
        session.commit()
    engine.dispose()
    return key, tokens


def start_server(data_dir: Path, url: str, secret: str, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "DEALMAIL_DATA_DIR": str(data_dir),
        "DEALMAIL_DATABASE_URL": url,
        "DEALMAIL_SECRET_KEY": secret,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "dealmail", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("dealmail web did not start")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (Linux), robust to other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    base: str, path: str, seconds: int, connections: int, script: Path | None, args: list[str]
) -> dict[str, float]:
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command += [base + path]
    if args:
        command += ["--", *args]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "non2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


async def _httpx_run(
    base: str, seconds: int, connections: int, mode: str, key: str, tokens: list[str]
) -> dict[str, float]:
    latencies: list[float] = []
    non2xx = 0
    stop = time.monotonic() + seconds
    cursor = iter(range(len(tokens) * 100))
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, headers=headers) as client:

        async def worker() -> None:
            nonlocal non2xx
            while time.monotonic() < stop:
                token = tokens[next(cursor) % len(tokens)]
                begin = time.perf_counter()
                if mode == "redeem":
                    response = await client.post(
                        "/api/v1/redemptions",
                        json={"code": token},
                        headers={"Idempotency-Key": secrets.token_hex(8)},
                    )
                elif mode == "validate":
                    response = await client.get(f"/api/v1/coupons/{token}")
                else:
                    response = await client.get("/healthz")
                latencies.append((time.perf_counter() - begin) * 1000)
                non2xx += response.status_code >= 300

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50": quantiles[49],
        "p99": quantiles[98],
        "non2xx": float(non2xx),
        "socket_errors": 0.0,
    }


def _summary(runs: list[dict[str, float]], seconds: int) -> dict[str, float]:
    """Rounds pooled: mean rate, median p50, the WORST p99, CPU per request over all requests."""
    requests = sum(run["rps"] * seconds for run in runs)
    return {
        "rps": statistics.mean(run["rps"] for run in runs),
        "p50": statistics.median(run["p50"] for run in runs),
        "p99": max(run["p99"] for run in runs),
        "non2xx": sum(run["non2xx"] for run in runs),
        "cpu_us": sum(run.get("cpu_s", 0.0) for run in runs) / max(requests, 1) * 1e6,
    }


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"{name:9} {figures['rps']:8.0f} req/s  p50 {figures['p50']:6.1f} ms  "
        f"p99 {figures['p99']:6.1f} ms  non-2xx {figures['non2xx']:.0f}  "
        f"server CPU {figures.get('cpu_us', 0):6.0f} us/request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per run")
    parser.add_argument("--rounds", type=int, default=3, help="healthz, validate, redeem each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--coupons", type=int, default=60_000)
    options = parser.parse_args()
    if options.connections < WRK_THREADS:
        parser.error(f"--connections must be at least {WRK_THREADS}")

    data_dir = Path(tempfile.mkdtemp(prefix="dealmail-bench-redeem-"))
    url = f"sqlite:///{data_dir / 'dealmail.db'}"
    secret = secrets.token_urlsafe(48)
    print(f"seeding {options.coupons} coupons in {data_dir} ...", flush=True)
    key, tokens = seed(url, secret.encode(), options.coupons)
    validate_tokens, redeem_tokens = tokens[:1000], tokens[1000:]
    # Each round (and the warm-up) redeems its own coupons, so every redeem is a real one.
    share = len(redeem_tokens) // (options.rounds + 1)
    chunks = [redeem_tokens[i * share : (i + 1) * share] for i in range(options.rounds + 1)]
    warm_tokens, redeem_rounds = chunks[0], chunks[1:]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(data_dir, url, secret, port)
    use_wrk = shutil.which("wrk") is not None
    print(
        f"server on {base}; load by {'wrk' if use_wrk else 'httpx (install wrk for truer figures)'}"
    )
    runs: dict[str, list[dict[str, float]]] = {"healthz": [], "validate": [], "redeem": []}
    try:
        script = data_dir / "bench.lua"
        script.write_text(WRK_SCRIPT)
        lists = {"validate": data_dir / "validate.txt"}
        lists["validate"].write_text("\n".join(validate_tokens) + "\n")
        for number, chunk in enumerate(redeem_rounds):
            lists[f"redeem{number}"] = data_dir / f"redeem{number}.txt"
            lists[f"redeem{number}"].write_text("\n".join(chunk) + "\n")
        lists["warm"] = data_dir / "warm.txt"
        lists["warm"].write_text("\n".join(warm_tokens) + "\n")
        if use_wrk:
            # A served counter is warm: caches filled, code paths run once. Not measured.
            for name in ("healthz", "validate", "redeem"):
                source = lists["warm" if name == "redeem" else "validate"]
                arguments = [str(source), str(WRK_THREADS), name, key, "warm"]
                run_wrk(base, "/", 2, options.connections, script, arguments)
        # Rounds interleave the three loads, so a burst of other work on the machine hits all
        # of them alike rather than one (the ratio is what the target is about).
        for number in range(options.rounds):
            for name in ("healthz", "validate", "redeem"):
                if use_wrk:
                    # The same script drives all three, so the client costs the same per request.
                    source = lists[f"redeem{number}" if name == "redeem" else "validate"]
                    arguments = [str(source), str(WRK_THREADS), name, key, str(number)]
                    cpu_before = cpu_seconds(server.pid)
                    figures = run_wrk(
                        base, "/", options.seconds, options.connections, script, arguments
                    )
                    figures["cpu_s"] = cpu_seconds(server.pid) - cpu_before
                    requests = figures["rps"] * options.seconds
                    figures["cpu_us"] = figures["cpu_s"] / max(requests, 1) * 1e6
                else:
                    source = redeem_rounds[number] if name == "redeem" else validate_tokens
                    figures = asyncio.run(
                        _httpx_run(base, options.seconds, options.connections, name, key, source)
                    )
                runs[name].append(figures)
                print(_line(f"{name}#{number + 1}", figures), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    results = {name: _summary(found, options.seconds) for name, found in runs.items()}
    for name, figures in results.items():
        print(_line(name, figures))
    redeemed, healthz = results["redeem"], results["healthz"]
    if max(run["rps"] for run in runs["redeem"]) * options.seconds > share:
        print("warning: more redeem requests than coupons; later ones were refusals")
    ratio = redeemed["rps"] / healthz["rps"]
    print(
        f"redeem_rps={redeemed['rps']:.0f} healthz_rps={healthz['rps']:.0f} "
        f"ratio={ratio:.2f} redeem_p50_ms={redeemed['p50']:.1f} "
        f"redeem_p99_ms={redeemed['p99']:.1f} "
        f"validate_rps={results['validate']['rps']:.0f} "
        f"validate_p99_ms={results['validate']['p99']:.1f} "
        f"redeem_cpu_us={redeemed['cpu_us']:.0f} healthz_cpu_us={healthz['cpu_us']:.0f} "
        f"load1={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
