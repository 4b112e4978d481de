"""The explorer under load, on loopback: a real `stylegan serve` in its own process, clients in this one.

1. Round trip: one client, sequential GET /api/generate.png (new seed each time), after a warm-up: p50/p95/max ms.
   Goal: p50 <= 150 ms for the built-in model on a 2-core CPU.
2. Load: --clients concurrent clients (keep-alive connections) sending generate requests for --seconds; every
   status counted (the run fails on any 5xx); latency p50/p95/max and throughput.
3. Hostile uploads: a batch of bad files (bomb, SVG, truncated, not an image, empty), then one generate request:
   only 4xx expected, then 200.

    python benchmarks/bench_serve.py                          # built-in model, 50 clients x 30 s
    python benchmarks/bench_serve.py --network ffhq.pkl --clients 8 --seconds 20
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter

import PIL.Image


def start(network: list[str], threads: int | None) -> tuple[subprocess.Popen, int]:
    """`stylegan serve --port 0` in a child process; returns it and the port it printed."""
    cmd = [sys.executable, "-m", "stylegan", "serve", "--port", "0", "--device", "cpu"]
    for spec in network:
        cmd += ["--network", spec]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    line = proc.stdout.readline()
    match = re.search(r"http://[^:]+:(\d+)/", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stdout.read()}")
    return proc, int(match.group(1))


class Client:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, port: int):
        self.port, self.conn = port, None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
        started = time.perf_counter()
        try:
            self.conn = self.conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=body)
            res = self.conn.getresponse()
            res.read()
            return res.status, (time.perf_counter() - started) * 1e3
        except OSError:
            self.conn = None
            return 0, (time.perf_counter() - started) * 1e3  # 0: no answer (counted as an error)


def generate_path(rng: random.Random) -> str:
    return f"/api/generate.png?seed={rng.randrange(2**32)}&psi={rng.choice(['1', '0.7', '0.5'])}"


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return q[49], q[94], max(ms)


def round_trip(port: int, n: int) -> tuple[Counter, list[float]]:
    client, rng = Client(port), random.Random(0)
    for _ in range(5):
        client.request("GET", generate_path(rng))
    answers = [client.request("GET", generate_path(rng)) for _ in range(n)]
    return Counter(status for status, _ in answers), [ms for _, ms in answers]


def load(port: int, clients: int, seconds: float) -> tuple[Counter, list[float], float]:
    statuses, latencies, lock = Counter(), [], threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        client, rng = Client(port), random.Random(i)
        while time.monotonic() < deadline:
            status, ms = client.request("GET", generate_path(rng))
            with lock:
                statuses[status] += 1
                latencies.append(ms)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return statuses, latencies, time.monotonic() - started


def hostile_files() -> dict[str, bytes]:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (300, 200), 9).save(buf, "PNG")
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(10**6)))
    return {
        "bomb (10^10 px declared)": bomb,
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "truncated png": buf.getvalue()[:300],
        "not an image": os.urandom(4096),
        "empty": b"",
        "html": b"<html><body>hello</body></html>",
    }


def hostile(port: int) -> list[tuple[str, int]]:
    client = Client(port)
    rows = [
        (name, client.request("POST", "/api/upload", body)[0])
        for name, body in hostile_files().items()
        for _ in range(3)
    ]
    rows.append(("then GET /api/generate.png", client.request("GET", "/api/generate.png?seed=1")[0]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", action="append", default=[], help="model (default: the built-in one)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--round-trips", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the server")
    args = parser.parse_args()

    proc, port = start(args.network, args.threads)
    try:
        rt_statuses, rt = round_trip(port, args.round_trips)
        statuses, ms, wall = load(port, args.clients, args.seconds)
        bad = hostile(port)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    p50, p95, worst = percentiles(rt)
    print(f"machine: {os.cpu_count()} CPUs, load average {load_avg:.1f} at the end (other jobs share the CPU)\n")
    print("| test | requests | p50 ms | p95 ms | max ms | req/s | statuses |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| round trip, 1 client | {len(rt)} | {p50:.0f} | {p95:.0f} | {worst:.0f} | {len(rt) / (sum(rt) / 1e3):.1f} "
        f"| {_statuses(rt_statuses)} |"
    )
    p50, p95, worst = percentiles(ms)
    print(
        f"| load, {args.clients} clients x {args.seconds:g} s | {len(ms)} | {p50:.0f} | {p95:.0f} | {worst:.0f} "
        f"| {len(ms) / wall:.1f} | {_statuses(statuses)} |"
    )
    print("\n| hostile upload | statuses |\n|---|---|")
    for name in dict.fromkeys(n for n, _ in bad):
        print(f"| {name} | {', '.join(str(s) for n, s in bad if n == name)} |")
    failures = sum(n for s, n in (statuses + rt_statuses).items() if s >= 500 or s == 0)
    failures += sum(1 for n, s in bad if not (s == 200 if n.startswith("then") else 400 <= s < 500))
    if failures:
        raise SystemExit(f"FAILED: {failures} 5xx / unanswered / unexpected answers")
    print("\nno 5xx; hostile uploads all 4xx; the server answered after them")


def _statuses(counts: Counter) -> str:
    return ", ".join(f"{s or 'no answer'} x {n}" for s, n in sorted(counts.items()))


if __name__ == "__main__":
    main()
