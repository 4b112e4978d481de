"""Trained generators of other families and runs for the detector benchmark, made on the CPU (issue 14).

`gpu_checks.sh STAGES=gens` trains five generators on a lent GPU for 230 s each: early snapshots. A detector trained
on one of those does not carry to another model (bench_detector.py, in-domain pairs), while one trained on a
converged model does; these two are trained long enough to be converged small models, like the built-in `default`
(StyleGAN2, Fashion-MNIST 32², trained on this CPU with the same network size):

  sg1_fmnist32        StyleGAN1 (another family), Fashion-MNIST 32², seed 0
  sg2_fmnist32_run2   StyleGAN2 with the default model's configuration, another run (seed 7)

Both train at once (one thread each) for --minutes, then the last snapshot of each is written to OUT/<name>.safetensors
(`stylegan convert`) and its fid_fmnist is printed (10k generated images vs the train split, the metrics module's
Fashion-MNIST classifier; the built-in `default`: 9.23).

    python benchmarks/train_cpu_gens.py --minutes 65 --out /work/gens     # then bench_detector.py --gens /work/gens
    python benchmarks/train_cpu_gens.py --summary RUNS --out /work/gens   # export and score runs made before

Needs the Debian package dataset-fashion-mnist (the data set is built once into RUNS/fmnist32.zip).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

SMALL = [  # the default model's network size (benchmarks/train_fmnist.py), for every family
    *("--batch", "32", "--cbase", "1024", "--cmax", "64", "--z-dim", "64", "--w-dim", "64", "--map-depth", "2"),
    *("--mbstd-group", "4", "--aug", "noaug", "--tick", "0.5", "--snap", "4", "--device", "cpu", "--kimg", "100000"),
]
GENS = {
    "sg1_fmnist32": ["--cfg", "stylegan1", "--gamma", "0.05", "--seed", "0"],
    "sg2_fmnist32_run2": ["--cfg", "cifar", "--seed", "7"],
}


def train(runs: Path, data: Path, minutes: float) -> None:
    """Starts every run of GENS at once (one thread each) and stops them when the time is up (snapshots are atomic)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    for name, args in GENS.items():
        cmd = [sys.executable, "-m", "stylegan", "train", "--data", str(data), "--outdir", str(runs / name)]
        cmd += [*SMALL, *args]
        print(" ".join(cmd), flush=True)
        log = (runs / f"{name}.log").open("w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.time() + minutes * 60
    for proc in procs:
        try:
            proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def summarise(runs: Path, out: Path, data: Path) -> None:
    """Writes each run's last snapshot to out/<name>.safetensors and prints its kimg and fid_fmnist (the built-in
    `default`, measured the same way: 9.23 at 100 kimg, docs/benchmarks.md)."""
    from stylegan.io import load_generator, read_native_metadata
    from stylegan.metrics import calc_metric

    out.mkdir(parents=True, exist_ok=True)
    print("| generator | family | kimg | fid_fmnist |\n|---|---|---|---|")
    for name in GENS:
        snap = sorted((runs / name).glob("*/network-*.safetensors"))[-1]
        dest = out / f"{name}.safetensors"
        subprocess.run([sys.executable, "-m", "stylegan", "convert", str(snap), str(dest)], check=True)
        kimg = float(read_native_metadata(snap)["kimg"])
        fid = calc_metric("fid_fmnist", G=load_generator(dest), dataset=str(data), progress=False)["results"]
        print(f"| {name} | {name[:3].upper()} | {kimg:.1f} | {fid['fid_fmnist']:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=65.0)
    ap.add_argument("--runs", type=Path, default=Path("runs/cpu_gens"), help="training runs (and the data set)")
    ap.add_argument("--summary", type=Path, default=None, help="only export and score the runs in this folder")
    ap.add_argument("--out", type=Path, required=True, help="where <name>.safetensors go (bench_detector.py --gens)")
    args = ap.parse_args()
    runs = args.summary or args.runs
    runs.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).parent))
    from train_fmnist import make_data

    data = make_data(runs / "fmnist32.zip")
    if args.summary is None:
        train(runs, data, args.minutes)
    summarise(runs, args.out, data)


if __name__ == "__main__":
    main()
