"""The 2019 paper's networks train with the same loop (`--cfg stylegan1`) and their snapshots load as generators."""

import json

from click.testing import CliRunner

from stylegan.cli.train import train
from stylegan.io import load_generator


def test_stylegan1_trains_and_snapshots(faces, tmp_path, tiny_args):
    args = [a if a != "auto" else "stylegan1" for a in tiny_args]
    result = CliRunner().invoke(
        train,
        [
            *args,
            "--data",
            str(faces),
            "--outdir",
            str(tmp_path),
            "--kimg",
            "0.016",
            "--tick",
            "0.008",
            "--snap",
            "1",
            "--aug",
            "noaug",
        ],
    )
    assert result.exit_code == 0, result.output
    run = next(tmp_path.glob("00000-*"))
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert stats and all(k for k in stats[-1])
    G = load_generator(sorted(run.glob("network-*.safetensors"))[-1])
    assert G.config.family == "stylegan1" and G.img_resolution == 16
