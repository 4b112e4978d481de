"""ADA on a small dataset: the 400 AT&T faces at 64x64 (CPU). Prints the augment p and r_t trajectory.

Usage:
    python benchmarks/ada_att.py --data ../shared/data/att-faces --minutes 20 [--ada-kimg 20]
    python benchmarks/ada_att.py --summary runs/ada-att/00000-...
    python benchmarks/ada_att.py --data fmnist32.zip --resolution 32   # a large dataset: p stays near 0

With only 400 images D soon tells reals from fakes (r_t = E[sign D(real)] climbs past the 0.6 target) and ADA
raises p. --ada-kimg sets how fast p may move (NVIDIA: 500 kimg for p to go 0 -> 1, meant for long GPU runs;
a short CPU run needs a faster controller to show the trend). The AT&T "Database of Faces" is credited to
AT&T Laboratories Cambridge.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TRAIN_ARGS = [
    *("--cfg", "auto", "--batch", "16", "--cbase", "1024", "--cmax", "32"),
    *("--z-dim", "64", "--w-dim", "64", "--map-depth", "2", "--aug", "ada", "--tick", "0.2", "--snap", "10"),
    *("--device", "cpu", "--seed", "0"),
]


def train(
    data: str, outdir: Path, minutes: float, ada_kimg: float, resolution: int, extra: list[str]
) -> Path:
    """Runs `stylegan train` with ADA until the time budget is spent."""
    cmd = [
        sys.executable,
        "-m",
        "stylegan",
        "train",
        "--data",
        data,
        "--outdir",
        str(outdir),
        "--kimg",
        "1000",
        "--ada-kimg",
        str(ada_kimg),
        "--resolution",
        str(resolution),
        *TRAIN_ARGS,
        *extra,  # later flags win in click
    ]
    print(" ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd)
    try:
        proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGINT is ignored by jobs started with & from a script; snapshots are atomic
        time.sleep(3)
        proc.kill()
        proc.wait()
    return sorted(p for p in outdir.iterdir() if p.is_dir())[-1]


def trajectory(run_dir: Path) -> list[dict]:
    """kimg, augment p, r_t and D scores per tick."""
    rows = []
    for line in (run_dir / "stats.jsonl").read_text().splitlines():
        d = json.loads(line)
        rows.append(
            {
                "kimg": d["kimg"],
                "p": d["Progress/augment_p"],
                "r_t": d["Progress/r_t"],
                "D_real": d.get("Loss/D/scores_real"),
                "D_fake": d.get("Loss/D/scores_fake"),
                "sec_per_kimg": d["Timing/sec_per_kimg"],
            }
        )
    return rows


def _fmt(value, spec: str) -> str:
    return format(value, spec) if value is not None else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/att-faces")
    ap.add_argument("--outdir", type=Path, default=Path("runs/ada-att"))
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--ada-kimg", type=float, default=20)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument(
        "--train-args", default="", help="More `stylegan train` flags, e.g. '--cbase 2048 --cmax 64'."
    )
    ap.add_argument("--summary", type=Path, help="Summarise this run folder instead of training.")
    args = ap.parse_args()
    run_dir = args.summary or train(
        args.data, args.outdir, args.minutes, args.ada_kimg, args.resolution, args.train_args.split()
    )
    rows = trajectory(run_dir)
    print(f"{'kimg':>7} {'p':>7} {'r_t':>6} {'D(real)':>8} {'D(fake)':>8} {'s/kimg':>7}")
    for r in rows:
        cells = [
            _fmt(r["p"], "7.4f"),
            _fmt(r["r_t"], "6.3f"),
            _fmt(r["D_real"], "8.3f"),
            _fmt(r["D_fake"], "8.3f"),
        ]
        sec = r["sec_per_kimg"]
        print(f"{r['kimg']:7.3f} {cells[0]:>7} {cells[1]:>6} {cells[2]:>8} {cells[3]:>8} {sec:7.1f}")
    (run_dir / "ada-summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
