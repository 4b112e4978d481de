"""Long fuzzing run of the model door: the mutators and worker of tests/io/fuzzing.py, for as long as asked.

    python benchmarks/fuzz_loaders.py --minutes 60 [--seed 1] [--cap-mb 1024] [--keep]

Prints a markdown table (mutants tried, outcomes, peak worker memory, slowest case) for docs/benchmarks.md.
Findings (a foreign exception, a multi-line message, a dead or out-of-memory worker, a mutant over the time
cap) are listed; with --keep they are copied into tests/fixtures/fuzz/regressions/, which the test suite replays.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))

import fuzzing  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cap-mb", type=int, default=1024, help="RLIMIT_AS of the worker")
    parser.add_argument("--time-cap", type=float, default=5.0, help="seconds a mutant may take")
    parser.add_argument("--keep", action="store_true", help="copy findings into the regression folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = fuzzing.run(args.seed, args.minutes * 60, Path(tmp), args.cap_mb, args.time_cap)
        wall = time.perf_counter() - start
        print("| seed | minutes | mutants | outcomes | findings | peak worker RSS MB | slowest |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items()))
        slowest = f"{report.slowest[0]:.2f} s ({report.slowest[1]})"
        print(
            f"| {args.seed} | {wall / 60:.1f} | {report.tried} | {outcomes} | {len(report.findings)} "
            f"| {report.peak_rss_mb:.0f} | {slowest} |"
        )
        for finding in report.findings:
            print(f"- {finding['outcome']} {finding['name']}: {finding['message'][:200]!r}")
            if args.keep:
                shutil.copy(finding["file"], fuzzing.REGRESSIONS / Path(finding["file"]).name)


if __name__ == "__main__":
    main()
