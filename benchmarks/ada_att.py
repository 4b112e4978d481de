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


def train(data: str, outdir: Path, minutes: float, ada_kimg: float, resolution: int, extra: list[str]) -> Path:
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


def plot_p(runs: dict[str, list[dict]], path: Path, size=(640, 360)) -> None:
    """Augment p against kimg for several runs, as a PNG (PIL only)."""
    from PIL import Image, ImageDraw

    colours = [(200, 40, 40), (40, 90, 200), (30, 150, 60), (150, 90, 20)]
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = 50, 20, size[0] - 20, size[1] - 40
    max_kimg = max(r["kimg"] for rows in runs.values() for r in rows) or 1
    max_p = max(0.1, max(r["p"] or 0 for rows in runs.values() for r in rows) * 1.15)
    draw.rectangle([left, top, right, bottom], outline="black")
    for i in range(5):  # p gridlines and labels
        y = bottom - (bottom - top) * i / 4
        draw.line([left, y, right, y], fill=(225, 225, 225))
        draw.text((5, y - 6), f"{max_p * i / 4:.3f}", fill="black")
    draw.text((left, bottom + 8), "0", fill="black")
    draw.text((right - 60, bottom + 8), f"{max_kimg:.0f} kimg", fill="black")
    draw.text((left + 5, top + 3), "augment p", fill="black")
    for k, (label, rows) in enumerate(runs.items()):
        colour = colours[k % len(colours)]
        pts = [(left + (right - left) * r["kimg"] / max_kimg, bottom - (bottom - top) * (r["p"] or 0) / max_p)
               for r in rows]  # fmt: skip
        draw.line(pts, fill=colour, width=2)
        draw.text((left + 120 + 200 * k, bottom + 8), label, fill=colour)
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/att-faces")
    ap.add_argument("--outdir", type=Path, default=Path("runs/ada-att"))
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--ada-kimg", type=float, default=20)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--train-args", default="", help="More `stylegan train` flags, e.g. '--cbase 2048 --cmax 64'.")
    ap.add_argument("--summary", type=Path, help="Summarise this run folder instead of training.")
    ap.add_argument(
        "--plot", nargs="+", metavar="LABEL=RUN_DIR", help="Draw p against kimg of these runs to --plot-out."
    )
    ap.add_argument("--plot-out", type=Path, default=Path("ada-p.png"))
    args = ap.parse_args()
    if args.plot:
        runs = {item.split("=", 1)[0]: trajectory(Path(item.split("=", 1)[1])) for item in args.plot}
        plot_p(runs, args.plot_out)
        print(f"wrote {args.plot_out}")
        return
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
