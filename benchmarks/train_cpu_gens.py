"""Trained generators of other families and runs for the detector benchmark, made on the CPU (issue 14).

`gpu_checks.sh STAGES=gens` trains five generators on a lent GPU for 230 s each: early snapshots. A detector trained
on one of those does not carry to another model (bench_detector.py, in-domain pairs), while one trained on a
converged model does; these are trained long enough to be converged small models, like the built-in ones (both
trained on this CPU, at the same network sizes):

  sg1_fmnist32        StyleGAN1 (another family), Fashion-MNIST 32², seed 0            (the `default` model's size)
  sg2_fmnist32_run2   StyleGAN2 with the `default` model's configuration, another run (seed 7)
  sg2_fmnist32_run3   the same, a third run (seed 13); made later, never in a detector's training
  sg1_faces64_cpu     StyleGAN1, the `faces` model's data, size and recipe (aligned AT&T faces 64², ADA); made later

The runs given (--only; default all) train at once, one thread each, for --minutes; then the last snapshot of each is
written to OUT/<name>.safetensors (`stylegan convert`) and scored: Fashion-MNIST models by fid_fmnist (10k generated
images vs the train split, the metrics module's classifier; `default`: 9.23), face models as train_faces.py scores
`faces` (KID x 10^3 on VGG16 features against the training faces, and dlib's face rate; `faces`: 19.86, 0.94).

    python benchmarks/train_cpu_gens.py --minutes 65 --out /work/gens     # then bench_detector.py --gens /work/gens
    python benchmarks/train_cpu_gens.py --summary RUNS --out /work/gens   # export and score runs made before

Needs the Debian package dataset-fashion-mnist (built once into RUNS/fmnist32.zip) and, for the face model, the
`faces` extra (the AT&T faces are aligned once into RUNS/att38_aligned64.zip, as train_faces.py does).
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
FACES = [  # the built-in faces model's network size and recipe (benchmarks/train_faces.py), for other families
    *("--batch", "16", "--cbase", "2048", "--cmax", "64", "--z-dim", "128", "--w-dim", "128", "--map-depth", "4"),
    *("--mbstd-group", "4", "--gamma", "0.1", "--aug", "ada", "--mirror", "--tick", "0.5", "--snap", "5"),
    *("--device", "cpu", "--kimg", "100000"),
]
GENS = {  # name -> (data set, arguments)
    "sg1_fmnist32": ("fmnist", [*SMALL, "--cfg", "stylegan1", "--gamma", "0.05", "--seed", "0"]),
    "sg2_fmnist32_run2": ("fmnist", [*SMALL, "--cfg", "cifar", "--seed", "7"]),
    # made later (2026-12-01), never in a detector's training:
    "sg2_fmnist32_run3": ("fmnist", [*SMALL, "--cfg", "cifar", "--seed", "13"]),
    "sg1_faces64_cpu": ("faces", [*FACES, "--cfg", "stylegan1", "--seed", "0"]),
}


def datasets(runs: Path, names: list[str]) -> dict[str, Path]:
    """The data sets the runs `names` need, made once under runs/."""
    from train_faces import ATT, TRAIN_PEOPLE
    from train_faces import make_data as make_faces
    from train_fmnist import make_data as make_fmnist

    kinds = {GENS[name][0] for name in names}
    made = {}
    if "fmnist" in kinds:
        made["fmnist"] = make_fmnist(runs / "fmnist32.zip")
    if "faces" in kinds:
        made["faces"] = make_faces(ATT, runs / "att38_aligned64.zip", TRAIN_PEOPLE)
    return made


def train(runs: Path, data: dict[str, Path], minutes: float, names: list[str]) -> None:
    """Starts the runs `names` of GENS at once (one thread each) and stops them when the time is up (snapshots are
    atomic)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    for name in names:
        kind, args = GENS[name]
        cmd = [sys.executable, "-m", "stylegan", "train", "--data", str(data[kind]), "--outdir", str(runs / name)]
        cmd += args
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


def summarise(runs: Path, out: Path, data: dict[str, Path], names: list[str]) -> None:
    """Writes each run's last snapshot to out/<name>.safetensors and prints its kimg and score (the built-in models,
    measured the same way: `default` fid_fmnist 9.23 at 100 kimg, `faces` KID x 10^3 19.86 and face rate 0.94)."""
    from stylegan.io import load_generator, read_native_metadata

    out.mkdir(parents=True, exist_ok=True)
    print("| generator | family | kimg | score |\n|---|---|---|---|")
    for name in names:
        snap = sorted((runs / name).glob("*/network-*.safetensors"))[-1]
        dest = out / f"{name}.safetensors"
        subprocess.run([sys.executable, "-m", "stylegan", "convert", str(snap), str(dest)], check=True)
        kimg = float(read_native_metadata(snap)["kimg"])
        if GENS[name][0] == "fmnist":
            from stylegan.metrics import calc_metric

            fid = calc_metric("fid_fmnist", G=load_generator(dest), dataset=str(data["fmnist"]), progress=False)
            score = f"fid_fmnist {fid['results']['fid_fmnist']:.2f}"
        else:
            score = _face_score(dest, data["faces"])
        print(f"| {name} | {name[:3].upper()} | {kimg:.1f} | {score} |", flush=True)


def _face_score(network: Path, faces: Path) -> str:
    """KID x 10^3 (VGG16 features, 1,000 generated vs the training faces) and face rate, as train_faces.py."""
    from train_faces import dataset_images, face_rate, generated, vgg_features

    from stylegan.metrics.kid import kid_from_features
    from stylegan.metrics.lpips import load_lpips

    lpips = load_lpips()
    fakes = generated(network, 1000)
    kid = 1e3 * kid_from_features(vgg_features(lpips, dataset_images(faces)), vgg_features(lpips, fakes), seed=0)
    return f"KID x 10^3 {kid:.2f}, face rate {face_rate(fakes[:200]):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=65.0)
    ap.add_argument("--runs", type=Path, default=Path("runs/cpu_gens"), help="training runs (and the data sets)")
    ap.add_argument("--summary", type=Path, default=None, help="only export and score the runs in this folder")
    ap.add_argument("--out", type=Path, required=True, help="where <name>.safetensors go (bench_detector.py --gens)")
    ap.add_argument("--only", default=",".join(GENS), help=f"some of {', '.join(GENS)}")
    args = ap.parse_args()
    names = [name for name in args.only.split(",") if name]
    if unknown := sorted(set(names) - set(GENS)):
        raise SystemExit(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(GENS)}")
    runs = args.summary or args.runs
    runs.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).parent))
    data = datasets(runs, names)
    if args.summary is None:
        train(runs, data, args.minutes, names)
    summarise(runs, args.out, data, names)


if __name__ == "__main__":
    main()
