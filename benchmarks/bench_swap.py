"""Face swap on AT&T face pairs (AT&T Laboratories Cambridge) placed on colour backgrounds: is the target untouched
outside the mask, is the face changed, and does the identity move towards the source?

Identity: dlib's CC0 face-recognition ResNet (128-d, stylegan.faces.identity_embedding), measured on the target's
detected face position in the result. A pair counts as moved when distance(result, source) < distance(target,
source); "closer than own recon" compares with the target's own projection blended the same way (no source layers),
which separates the swap's effect from what the projection loses. Pairs: person 2k+1 as the source (shot 1) and
person 2k+2 as the target (shot 2), k = 0..pairs-1. Every layer split is made from the same two projections per
pair (the source in W, the target with the chosen mode).

    python benchmarks/bench_swap.py --network faces --pairs 20
    python benchmarks/bench_swap.py --network faces --pairs 4 --figure docs/figures/swap-layers.png
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.editing import swap_clips  # noqa: E402

from stylegan.editing import swap as S  # noqa: E402
from stylegan.faces import detect_faces, identity_distance, identity_embedding  # noqa: E402

SPLITS = ("coarse,middle", "coarse", "middle", "fine", "2-7", "coarse,middle,fine")  # the last: the source alone


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)) if a.size else 0.0
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def run_pair(G, k: int, settings: S.SwapSettings, lpips) -> tuple[dict, dict]:
    """One pair: {split: measures}, and the images for the figure."""
    src_photo = swap_clips.composite(swap_clips.att_photo(2 * k + 1, 1), seed=2 * k)
    tgt_photo = swap_clips.composite(swap_clips.att_photo(2 * k + 2, 2), seed=2 * k + 1)
    src_face, tgt_face = S.find_faces(G, src_photo, tgt_photo, settings)
    source = S.project_face(G, src_face, settings, role="source", lpips=lpips)
    target = S.project_face(G, tgt_face, settings, role="target", lpips=lpips)
    src_emb = identity_embedding(src_photo, detect_faces(src_photo)[0])
    d_target = identity_distance(identity_embedding(tgt_photo, tgt_face.face), src_emb)
    rows, images = {}, {"source": src_photo, "target": tgt_photo}
    own = S.synthesize_face(target.G, target.ws)  # the target's own reconstruction, blended the same way
    recon, _ = S.blend_face(tgt_photo, own, tgt_face, settings)
    d_recon = identity_distance(identity_embedding(recon, tgt_face.face), src_emb)
    for split in SPLITS:
        result = S.swap_projected(source, target, tgt_photo, S.SwapSettings(**{**vars(settings), "layers": split}))
        outside = result.mask == 0
        core = result.mask > 0.9
        d_result = identity_distance(identity_embedding(result.image, tgt_face.face), src_emb)
        rows[split] = {
            "exact": bool(np.array_equal(result.image[outside], tgt_photo[outside])),
            "psnr_out": psnr(result.image[outside], tgt_photo[outside]),
            "changed": float(np.abs(result.image[core].astype(int) - tgt_photo[core]).mean()),
            "d_target": d_target,
            "d_result": d_result,
            "d_recon": d_recon,
        }
        images[split] = result.image
    return rows, images


def table(all_rows: list[dict]) -> str:
    lines = [
        "| source layers | pairs | moved towards source | d(target, src) | d(result, src) | closer than own recon "
        "| d(recon, src) | PSNR outside mask | outside identical | mean abs change in face |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for split in SPLITS:
        rows = [r[split] for r in all_rows]
        moved = sum(r["d_result"] < r["d_target"] for r in rows)
        closer = sum(r["d_result"] < r["d_recon"] for r in rows)
        worst = min(r["psnr_out"] for r in rows)
        worst_text = "inf" if math.isinf(worst) else f"{worst:.1f}"
        lines.append(
            f"| {split} | {len(rows)} | {moved}/{len(rows)} ({100 * moved / len(rows):.0f} %) "
            f"| {np.mean([r['d_target'] for r in rows]):.3f} | {np.mean([r['d_result'] for r in rows]):.3f} "
            f"| {closer}/{len(rows)} | {np.mean([r['d_recon'] for r in rows]):.3f} "
            f"| {worst_text} dB (min) | {sum(r['exact'] for r in rows)}/{len(rows)} "
            f"| {np.mean([r['changed'] for r in rows]):.1f} |"
        )
    return "\n".join(lines)


def figure(all_images: list[dict], path: Path, model: str) -> None:
    """Rows: pairs; columns: source, target, then each split (the face area of the 160² composites, 2x)."""
    from stylegan.images import save_png, tile, zoom

    cols = ["source", "target", *SPLITS]
    cells = []
    for images in all_images:
        for name in cols:
            crop = images[name][16:144, 16:144]  # the face and a margin of background
            cells.append(torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))))
    grid = tile(torch.stack(cells), cols=len(cols), pad=4)
    save_png(zoom(grid, 2), path, metadata={"model": model, "seed": 0})
    print(f"wrote {path}: columns {', '.join(cols)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="faces")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--mode", default="pti", choices=S.MODES)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--tune-steps", type=int, default=50)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--render", default=S.SwapSettings.render, choices=S.RENDERERS, help="Whose G draws the swap.")
    parser.add_argument("--erode", type=float, default=S.SwapSettings.erode, help="Mask erosion (face-size fraction).")
    parser.add_argument("--feather", type=float, default=S.SwapSettings.feather, help="Mask feather (fraction).")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from stylegan.io import load_generator
    from stylegan.metrics.lpips import load_lpips

    G = load_generator(args.network, device="cpu")
    lpips = load_lpips(device="cpu")
    settings = S.SwapSettings(
        mode=args.mode,
        steps=args.steps,
        tune_steps=args.tune_steps,
        plus_steps=args.steps // 2,
        render=args.render,
        erode=args.erode,
        feather=args.feather,
    )
    all_rows, all_images = [], []
    start = time.time()
    for k in range(args.pairs):
        rows, images = run_pair(G, k, settings, lpips)
        all_rows.append(rows)
        all_images.append(images)
        print(
            f"pair {k + 1}/{args.pairs} (s{2 * k + 1} -> s{2 * k + 2}): "
            + ", ".join(f"{s}: {r['d_target']:.3f}->{r['d_result']:.3f}" for s, r in rows.items())
            + f"  [{time.time() - start:.0f} s]",
            flush=True,
        )
    print(
        f"\nnetwork {args.network}, mode {args.mode}, render with the {args.render}'s G, {args.steps} W steps, "
        f"{args.tune_steps} tuning steps; "
        f"{time.time() - start:.0f} s on {args.threads} CPU thread(s)\n"
    )
    print(table(all_rows))
    if args.figure is not None:
        figure(all_images[:4], args.figure, args.network)


if __name__ == "__main__":
    main()
