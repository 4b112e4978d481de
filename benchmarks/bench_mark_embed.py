"""Time to embed the provenance mark (forensics.mark.embed) per kind of host, as the CLI pays it on every image.

Single images: bench_mark.py's hosts (`sg2`, `sg3`, `fmnist`, `faces`) at --sizes; figures: `stylegan mix` figures and
`stylegan generate --grid` grids of the built-in models as the CLI writes them (--zoom auto), from seeds the
robustness benchmark does not use. Per row: median and max of --repeat timed runs per image, over --n images, and
which path the embedding took (plain, informed at the natural period, informed at 64 px).

    python benchmarks/bench_mark_embed.py --n 8 --repeat 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_mark import KINDS, _grid, generated

from stylegan.forensics import mark as M


def _figures(model: str, kind: str, n: int) -> list[np.ndarray]:
    """n figures [H, W] or [H, W, 3] uint8 of one model and kind at --zoom auto (seeds from 5000 on)."""
    from stylegan.cli.common import resolve_zoom
    from stylegan.images import zoom
    from stylegan.io import load_generator

    G = load_generator(model)
    out = []
    with torch.no_grad():
        for i in range(50, 50 + n):
            x = zoom(_grid(G, kind, i), resolve_zoom("auto", G)).permute(1, 2, 0).numpy()
            out.append(np.ascontiguousarray(x[:, :, 0] if x.shape[2] == 1 else x))
    return out


def _path(image: np.ndarray, marked: np.ndarray, payload: M.Payload) -> str:
    """Which embedding was written: plain (the pattern at the natural period) or informed, and its period."""
    found = M.detect(marked)
    mask = M.texture_mask(M.luminance(image))
    natural = M.period_for(*image.shape[:2])
    if np.array_equal(marked, M._written(image, payload, M.DEFAULT_KEY, M.PSNR_DB, mask, natural, None)):
        return "plain"
    return f"informed {found.period:.0f}px" if found.found else "informed (not read back)"


def _row(name: str, images: list[np.ndarray], repeat: int) -> None:
    payload = M.Payload(model=0x123, seed=4)
    times, paths = [], {}
    for x in images:
        runs = []
        for _ in range(repeat):
            t = time.perf_counter()
            y = M.embed(x, payload)
            runs.append(time.perf_counter() - t)
        times.append(min(runs))
        path = _path(x, y, payload)
        paths[path] = paths.get(path, 0) + 1
    shape = "x".join(map(str, images[0].shape[1::-1]))
    ways = ", ".join(f"{k} {v}" for k, v in paths.items())
    print(f"| {name} | {shape} | {np.median(times) * 1e3:.0f} | {max(times) * 1e3:.0f} | {ways} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="images per row")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per image (the fastest counts)")
    parser.add_argument("--sizes", default="256,512,1024")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| host | size | embed ms (median of images, best of runs) | max ms | path taken |")
    print("|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in KINDS:
            _row(f"{kind} single", generated(kind, args.n, size, seed=11, offset=60), args.repeat)
    for model in ("default", "faces"):
        for kind in ("mix", "generate"):
            _row(f"{model} {kind} (--zoom auto)", _figures(model, kind, args.n), args.repeat)


if __name__ == "__main__":
    main()
