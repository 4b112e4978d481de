"""The model door under mutation: every mutant of the seed files loads or fails with one of our one-line errors,
within a memory cap and a time cap. Seeded and time-boxed (STYLEGAN_FUZZ_SECONDS, default 30; STYLEGAN_FUZZ_SEED).

A finding is copied into the test's tmp folder and named in the failure; keep it as a regression file in
tests/fixtures/fuzz/regressions/, which `test_regression_files` replays on every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fuzzing
import pytest

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"


def test_mutants_load_or_fail_cleanly(tmp_path):
    seconds = float(os.environ.get("STYLEGAN_FUZZ_SECONDS", "30"))
    seed = int(os.environ.get("STYLEGAN_FUZZ_SEED", "16"))
    report = fuzzing.run(seed, seconds, tmp_path, cap_mb=1024, time_cap=5.0)
    assert report.tried >= 50, f"only {report.tried} mutants in {seconds} s"
    assert report.outcomes.get("ModelFormatError", 0) > report.tried // 4  # the mutants do reach the checks
    findings = [
        f"{f['outcome']} {f['name']} ({f['seconds']:.1f} s): {f['message'][:200]!r} -> {f['file']}"
        for f in report.findings
    ]
    assert not findings, "\n".join(findings)


def _files_to_replay() -> list[Path]:
    files = sorted(fuzzing.REGRESSIONS.glob("*")) + sorted(HOSTILE.glob("*.pkl"))
    return [p for p in files if p.is_file() and p.suffix != ".md"]


def test_regression_files(tmp_path):
    """Every finding ever kept, and the hostile files, under the same caps as the fuzzer."""
    worker = fuzzing.Worker(cap_mb=1024)
    try:
        for path in _files_to_replay():
            answer = worker.load(path, timeout=20.0)
            assert not fuzzing.is_finding(answer, time_cap=5.0), (path.name, answer)
    finally:
        worker.close()


MEASURE = r"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from stylegan.io import ModelFormatError, load_generator
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_generator(sys.argv[1])
    print("loaded")
except ModelFormatError as exc:
    print(str(exc))
seconds = time.perf_counter() - start
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(f"{seconds:.3f} {grown:.1f}")
"""


def test_memo_bomb_is_refused_fast_in_bounded_memory():
    """A 1 MB splice whose LONG_BINPUT asks for a 1.26e9-slot memo: refused in < 2 s, < 64 MB above imports."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(HOSTILE / "memo_bomb_sg2_tiny.pkl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    message, numbers = out.stdout.strip().splitlines()
    assert message == (
        "cannot read memo_bomb_sg2_tiny.pkl: memo index 1258647924 at offset 630361 skips ahead of the 2591 in use"
    )
    seconds, grown_mb = map(float, numbers.split())
    assert seconds < 2.0 and grown_mb < 64, (seconds, grown_mb)


@pytest.mark.parametrize("mutator", sorted(fuzzing.MUTATORS))
def test_mutators_change_the_seed(mutator):
    import random

    seed = fuzzing.SEEDS[-1].read_bytes() if mutator == "header" else fuzzing.SEEDS[0].read_bytes()
    rng = random.Random(0)
    ops = fuzzing.opcode_positions(seed)
    assert mutator == "header" or len(ops) > 100
    changed = sum(fuzzing.MUTATORS[mutator](rng, bytearray(seed), ops) != seed for _ in range(20))
    assert changed >= 15
