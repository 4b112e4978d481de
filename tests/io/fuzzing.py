"""Mutation fuzzing of the model door (`stylegan.io.load_networks`), shared by the test and the long benchmark run.

Mutants of seed files (byte flips, truncations, splices, interesting numbers written over length and index
fields) are loaded one by one in a worker process under a memory cap (RLIMIT_AS) and a time cap per mutant.
Each must load, or raise one of our own errors as one line. Anything else is a finding: a Python exception
of another type, a worker killed or out of memory, or a mutant slower than the cap.

    python tests/io/fuzzing.py --worker CAP_MB     (internal: reads mutant paths on stdin)
"""

from __future__ import annotations

import json
import os
import pickletools
import random
import resource
import select
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [
    ROOT / "tests/fixtures/nvlabs/sg2_tiny.pkl",
    ROOT / "tests/fixtures/nvlabs/sg3t_tiny.pkl",
    ROOT / "tests/fixtures/fuzz/tf_sg1_tiny.pkl",
    ROOT / "tests/fixtures/fuzz/tf_sg2_tiny.pkl",
    ROOT / "tests/fixtures/fuzz/sg2_tiny.safetensors",
]
REGRESSIONS = ROOT / "tests/fixtures/fuzz/regressions"
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 40, (1 << 63) - 1]
OUR_ERRORS = ("ModelFormatError", "UnsafePickleError")


# ----------------------------------------------------------------------------------------------------------
# Mutators: each takes the seed's bytes and the seed's opcode positions, returns a mutant.


def _flip(rng: random.Random, data: bytearray, _ops) -> bytearray:
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(data))
        data[pos] = rng.randrange(256) if rng.random() < 0.5 else data[pos] ^ (1 << rng.randrange(8))
    return data


def _truncate(rng: random.Random, data: bytearray, _ops) -> bytearray:
    return data[: rng.randrange(len(data))]


def _splice(rng: random.Random, data: bytearray, _ops) -> bytearray:
    """Swaps two ranges, or copies one range over another (as a corrupted download might)."""
    n = len(data)
    size = rng.randint(1, max(1, n // rng.choice([4, 16, 256])))
    a, b = rng.randrange(n - size + 1), rng.randrange(n - size + 1)
    chunk_a, chunk_b = bytes(data[a : a + size]), bytes(data[b : b + size])
    data[b : b + size] = chunk_a
    if rng.random() < 0.5:
        data[a : a + size] = chunk_b
    return data


def _number(rng: random.Random, data: bytearray, ops) -> bytearray:
    """Writes an interesting number over the argument of an opcode (a length, memo index or count)."""
    if not ops:
        return _flip(rng, data, ops)
    pos = rng.choice(ops) + 1
    width = rng.choice([1, 2, 4, 8])
    value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
    data[pos : pos + width] = value.to_bytes(width, "little")[: max(0, len(data) - pos)]
    return data


def _header_number(rng: random.Random, data: bytearray, _ops) -> bytearray:
    """safetensors: an interesting number over the header length or over digits inside the JSON header."""
    if rng.random() < 0.2:
        data[:8] = struct.pack("<Q", rng.choice(INTERESTING))
        return data
    header_len = min(struct.unpack("<Q", bytes(data[:8]))[0], len(data) - 8)
    digits = [i for i in range(8, 8 + header_len) if 48 <= data[i] <= 57]
    if not digits:
        return _flip(rng, data, _ops)
    pos = rng.choice(digits)
    data[pos : pos + 1] = str(rng.choice(INTERESTING)).encode()
    return data


MUTATORS = {"flip": _flip, "truncate": _truncate, "splice": _splice, "number": _number, "header": _header_number}


def opcode_positions(data: bytes) -> list[int]:
    """Offsets of opcodes that carry a numeric or length argument (empty for non-pickles)."""
    try:
        return [pos for op, arg, pos in pickletools.genops(data) if op.arg is not None and op.arg.n != 0]
    except ValueError:
        return []


def mutate(rng: random.Random, seed: bytes, ops: list[int], is_pickle: bool) -> tuple[str, bytes]:
    names = ["flip", "truncate", "splice", "number"] if is_pickle else ["flip", "truncate", "splice", "header"]
    name = rng.choice(names)
    out = bytearray(seed)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if len(out) < 16:
            break
        out = MUTATORS[name](rng, out, ops)
    return name, bytes(out)


# ----------------------------------------------------------------------------------------------------------
# The worker: loads each path it reads on stdin, answers one JSON line per path.


def _worker(cap_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (cap_mb << 20, cap_mb << 20))
    import torch

    from stylegan.io import load_networks

    torch.set_num_threads(1)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        path = line.strip()
        start = time.perf_counter()
        try:
            load_networks(path)
            outcome, message = "loaded", ""
        except BaseException as exc:  # noqa: BLE001 - classify everything, the parent judges
            outcome, message = type(exc).__name__, str(exc)
        seconds = time.perf_counter() - start
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"outcome": outcome, "message": message, "seconds": seconds, "rss_mb": rss_mb}), flush=True)


class Worker:
    """A worker subprocess with a memory cap; `load` times out per mutant and restarts the worker after."""

    def __init__(self, cap_mb: int):
        self.cap_mb = cap_mb
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(self.cap_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        if self._answer(120) is None:
            raise RuntimeError("the fuzz worker did not start")

    def _answer(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        return json.loads(line) if line else None

    def load(self, path: Path, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        answer = self._answer(timeout)
        if answer is None:
            died = self.proc.poll() is not None
            self.close()
            return {"outcome": "died" if died else "timeout", "message": "", "seconds": timeout, "rss_mb": 0}
        return answer

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


# ----------------------------------------------------------------------------------------------------------
# The driver.


@dataclass
class Report:
    tried: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    findings: list[dict] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    slowest: tuple[float, str] = (0.0, "")


def is_finding(answer: dict, time_cap: float) -> bool:
    if answer["outcome"] == "loaded":
        return answer["seconds"] > time_cap
    if answer["outcome"] not in OUR_ERRORS:
        return True
    message = answer["message"]
    return "\n" in message or len(message) > 400 or answer["seconds"] > time_cap


def run(seed: int, seconds: float, workdir: Path, cap_mb: int = 1024, time_cap: float = 5.0) -> Report:
    """Fuzzes every seed file in turn until `seconds` have passed; findings are copied into workdir."""
    rng, report, worker = random.Random(seed), Report(), Worker(cap_mb)
    seeds = [(p, p.read_bytes()) for p in SEEDS]
    ops = {p: opcode_positions(data) for p, data in seeds}
    path = workdir / "mutant.bin"
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            src, data = seeds[report.tried % len(seeds)]
            kind, mutant = mutate(rng, data, ops[src], src.suffix == ".pkl")
            path.write_bytes(mutant)
            answer = worker.load(path, timeout=time_cap * 4)
            _record(report, answer, f"{src.name}:{kind}:{report.tried}", mutant, workdir, time_cap)
    finally:
        worker.close()
    return report


def _record(report: Report, answer: dict, name: str, mutant: bytes, workdir: Path, time_cap: float) -> None:
    report.tried += 1
    outcome = answer["outcome"]
    report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    report.peak_rss_mb = max(report.peak_rss_mb, answer["rss_mb"])
    report.slowest = max(report.slowest, (answer["seconds"], name))
    if is_finding(answer, time_cap):
        keep = workdir / f"finding_{report.tried:06d}_{name.replace(':', '_')}"
        keep.write_bytes(mutant)
        report.findings.append({**answer, "name": name, "file": str(keep)})


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--worker":
    _worker(int(sys.argv[2]))
