"""`stylegan metrics --gpus 2` on the CPU, run many times: how often a run fails (a flaky teardown shows here).

Each run spawns two gloo processes that compute fid_fmnist and kid_fmnist of a tiny random StyleGAN2 against 40
random 16×16 images (the same set-up as tests/metrics/test_metrics_distributed.py), about 3 s a run on 2 cores.
`stylegan.distributed.shutdown` collects the garbage after leaving the group; before it did, 4 of 150 runs lost a
rank to SIGABRT at interpreter exit ("terminate called without an active exception").

    python benchmarks/stress_metrics_gpus.py --runs 150
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


@contextlib.contextmanager
def _quiet():
    """File descriptor 1 to /dev/null, for child processes that write to it directly."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=150)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stress_metrics_"))
    os.environ.update(STYLEGAN_CACHE=str(tmp / "cache"), STYLEGAN_OFFLINE="1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "metrics"))
    import test_metrics_distributed as setup  # the test's tiny model, random images and command line
    from click.testing import CliRunner
    from PIL import Image

    from stylegan.cli.main import main as cli
    from stylegan.io import save_networks

    save_networks(tmp / "G.safetensors", {"G_ema": setup._tiny_G()})
    (tmp / "data").mkdir()
    for i, img in enumerate(setup._Images(40).img):
        Image.fromarray(img[0].numpy()).save(tmp / "data" / f"{i:03d}.png")
    cmd = [*setup._cli_args(tmp / "G.safetensors", tmp / "data", tmp / "out.jsonl", 2), "--no-cache"]
    outcomes: Counter[str] = Counter()
    t0 = time.time()
    for i in range(args.runs):
        with _quiet():  # rank 0 prints each metric's JSON line straight to file descriptor 1
            result = CliRunner().invoke(cli, cmd)
        outcome = "ok" if result.exit_code == 0 else repr(result.exception)[:100]
        outcomes[outcome] += 1
        if outcome != "ok":
            print(f"run {i}: {outcome}", flush=True)
    print(f"\n{args.runs} runs of `stylegan metrics --gpus 2 --device cpu`, {time.time() - t0:.0f} s\n")
    print("| outcome | runs |\n|---|---|")
    for outcome, count in outcomes.most_common():
        print(f"| {outcome} | {count} |")


if __name__ == "__main__":
    main()
