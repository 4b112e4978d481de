"""Fashion-MNIST 32x32 on the CPU for a fixed time budget: loss curves, sample grids, fid_fmnist per snapshot.

Usage:
    python benchmarks/train_fmnist.py --minutes 45                  # train, then summarise
    python benchmarks/train_fmnist.py --summary runs/fmnist/00000-...  # summarise an existing run
    python benchmarks/train_fmnist.py --summary RUN --export src/stylegan/assets/default.safetensors

Needs the Debian package dataset-fashion-mnist. Prints a table per kimg bin: D loss (real + fake), G loss,
seconds per kimg, and fid_fmnist (10k generated images vs the train set, the metrics module's Fashion-MNIST
classifier features) for each snapshot when --fid is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

# The default model's network: small enough for a shared 2-core CPU, big enough for recognisable garments.
TRAIN_ARGS = [
    *("--cfg", "cifar", "--batch", "32", "--cbase", "1024", "--cmax", "64", "--z-dim", "64", "--w-dim", "64"),
    *("--map-depth", "2", "--mbstd-group", "4", "--aug", "noaug", "--tick", "0.5", "--snap", "2"),
    *("--device", "cpu", "--seed", "0"),
]


def make_data(path: Path) -> Path:
    """The Fashion-MNIST train split as a 32x32 zip (made once)."""
    if not path.is_file():
        from stylegan.data import make_dataset

        print(make_dataset("fashion-mnist", path, resolution=32).summary())
    return path


def train(outdir: Path, data: Path, minutes: float, kimg: float) -> Path:
    """Runs `stylegan train` in a subprocess; stops it (SIGTERM, then SIGKILL) when the budget is spent."""
    cmd = [
        sys.executable,
        "-m",
        "stylegan",
        "train",
        "--data",
        str(data),
        "--outdir",
        str(outdir),
        "--kimg",
        str(kimg),
        *TRAIN_ARGS,
    ]
    print(" ".join(cmd))
    proc = subprocess.Popen(cmd)
    try:
        proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGINT is ignored by jobs started with & from a script; snapshots are atomic
        time.sleep(5)
        proc.kill()
        proc.wait()
    return sorted(p for p in outdir.iterdir() if p.is_dir())[-1]


def loss_table(run_dir: Path, bin_kimg: float = 2.0) -> list[dict]:
    """Mean D loss (real + fake), G loss and s/kimg per `bin_kimg` of training."""
    rows: dict[int, list[dict]] = {}
    for line in (run_dir / "stats.jsonl").read_text().splitlines():
        d = json.loads(line)
        if "Loss/G/loss" in d:
            rows.setdefault(int(d["kimg"] // bin_kimg), []).append(d)
    return [_bin_row(ds) for _, ds in sorted(rows.items())]


def _bin_row(ds: list[dict]) -> dict:
    def mean(key: str) -> float:
        return sum(d.get(key, 0.0) for d in ds) / len(ds)

    return {
        "kimg": round(max(d["kimg"] for d in ds), 2),
        "D_loss": mean("Loss/D/loss_real") + mean("Loss/D/loss_fake"),
        "G_loss": mean("Loss/G/loss"),
        "D_real_score": mean("Loss/D/scores_real"),
        "D_fake_score": mean("Loss/D/scores_fake"),
        "sec_per_kimg": mean("Timing/sec_per_kimg"),
    }


def fid_per_snapshot(run_dir: Path, data: Path, every: int = 1) -> list[dict]:
    """fid_fmnist of G_ema at every `every`-th snapshot (and the last)."""
    from stylegan.io import load_generator
    from stylegan.metrics import calc_metric

    snaps = sorted(run_dir.glob("network-*.safetensors"))
    picked = snaps[::every] + ([snaps[-1]] if snaps and snaps[-1] not in snaps[::every] else [])
    out = []
    for snap in picked:
        G = load_generator(snap)
        res = calc_metric("fid_fmnist", G=G, dataset=str(data), progress=False)
        out.append({"snapshot": snap.name, "fid_fmnist": res["results"]["fid_fmnist"]})
        print(out[-1], flush=True)
    return out


FMNIST_NOTE = "Fashion-MNIST train (60k, padded to 32x32), Zalando, MIT licence"


def export(run_dir: Path, dest: Path, dataset: str = FMNIST_NOTE) -> dict:
    """Writes G_ema of the last snapshot alone to `dest` (native format) with provenance metadata."""
    from stylegan.io import load_networks, read_native_metadata, save_networks

    snap = sorted(run_dir.glob("network-*.safetensors"))[-1]
    meta = read_native_metadata(snap)
    nets = load_networks(snap)
    extra = {
        "kimg": meta["kimg"],
        "dataset": dataset,
        "training_options": meta["training_options"],
        "source_snapshot": snap.name,
    }
    save_networks(dest, {"G_ema": nets["G_ema"]}, extra=extra)
    return {"snapshot": snap.name, "kimg": meta["kimg"], "bytes": dest.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outdir", type=Path, default=Path("runs/fmnist"))
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--kimg", type=float, default=200)
    ap.add_argument("--summary", type=Path, help="Summarise this run folder instead of training.")
    ap.add_argument("--fid", type=int, default=0, help="fid_fmnist on every N-th snapshot (0: off).")
    ap.add_argument("--export", type=Path, help="Write the last snapshot's G_ema here.")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    data = args.outdir / "fmnist32.zip"
    if not args.summary or args.fid:
        make_data(data)
    run_dir = args.summary or train(args.outdir, data, args.minutes, args.kimg)
    summary = {"run": str(run_dir), "losses": loss_table(run_dir)}
    print(f"{'kimg':>7} {'D loss':>7} {'G loss':>7} {'D(real)':>8} {'D(fake)':>8} {'s/kimg':>7}")
    for r in summary["losses"]:
        print(
            f"{r['kimg']:7.2f} {r['D_loss']:7.3f} {r['G_loss']:7.3f} {r['D_real_score']:8.3f} "
            f"{r['D_fake_score']:8.3f} {r['sec_per_kimg']:7.1f}"
        )
    if args.fid:
        summary["fid_fmnist"] = fid_per_snapshot(run_dir, data, args.fid)
    if args.export:
        summary["export"] = export(run_dir, args.export)
    (run_dir / "benchmark-summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2))


if __name__ == "__main__":
    main()
