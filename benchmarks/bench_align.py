"""Face alignment benchmark on the 400 AT&T faces (AT&T Laboratories Cambridge) pasted into larger scenes.

Each photo (92x112 grey) goes into a canvas 3x its size (gradient + noise background) at a random position,
scale 0.5-1 and rotation ±20°, seeded. Printed per detector:
  detected   the face found (a box near the known centre) in the scene
  PSNR       aligned scene vs aligned reference scene (same photo, centred, scale 1, upright), over the aligned pixels
             that come from the photo in both (the rest is each scene's own background); median and 5th percentile
  drift      mean distance, in aligned pixels, between the photo positions behind the same aligned pixel
  s/scene    seconds per scene (detection + alignment)
and the detection rate on the photos as published.

    python benchmarks/bench_align.py [--n 400] [--resolution 64] [--detectors hog,hog+cnn]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "faces"))
from composites import ATT_FULL, Placement, composite, photo_mask, photo_positions, psnr  # noqa: E402

from stylegan.faces import NoFaceError, align_face, detect_faces  # noqa: E402


def scenes(n: int, seed: int = 0):
    """(name, photo [112, 92], placement, canvas) for n AT&T photos spread evenly over s1/1 .. s40/10."""
    rng = np.random.default_rng(seed)
    paths = sorted(Path(ATT_FULL).glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    paths = [paths[i * len(paths) // n] for i in range(min(n, len(paths)))]
    for path in paths:
        photo = np.asarray(PIL.Image.open(path))
        canvas = (3 * photo.shape[0], 3 * photo.shape[1])
        place = Placement(
            (rng.uniform(0.3, 0.7) * canvas[1], rng.uniform(0.3, 0.7) * canvas[0]),
            rng.uniform(0.5, 1.0),
            rng.uniform(-20, 20),
        )
        yield f"{path.parent.name}/{path.stem}", photo, place, canvas


def found_face(faces, place: Placement):
    """The detected face whose box centre is nearest the known centre, if within 40 px x scale."""
    near = [f for f in faces if np.hypot(*((np.array(f.box[:2]) + f.box[2:]) / 2 - place.centre)) < 40 * place.scale]
    return near[0] if near else None


def aligned_reference(photo, resolution, detector):
    canvas = (3 * photo.shape[0], 3 * photo.shape[1])
    place = Placement((canvas[1] / 2, canvas[0] / 2), 1.0, 0.0)
    scene = composite(photo, place, canvas, seed=10**6)
    faces = detect_faces(scene, detector=detector)
    if not faces:
        raise NoFaceError("reference scene: no face")
    return align_face(scene, faces[0], resolution=resolution), place


def run(detector: str, n: int, resolution: int) -> dict:
    hits, psnrs, drifts, secs, ref_missing = 0, [], [], [], 0
    for i, (_, photo, place, canvas) in enumerate(scenes(n)):
        scene = composite(photo, place, canvas, seed=i)
        start = time.perf_counter()
        face = found_face(detect_faces(scene, detector=detector), place)
        out = align_face(scene, face, resolution=resolution) if face else None
        secs.append(time.perf_counter() - start)
        hits += face is not None
        if out is None:
            continue
        try:
            ref, ref_place = aligned_reference(photo, resolution, detector)
        except NoFaceError:
            ref_missing += 1
            continue
        both = photo_mask(out.matrix, place, photo.shape, resolution) & photo_mask(
            ref.matrix, ref_place, photo.shape, resolution
        )
        psnrs.append(psnr(out.image[..., 0], ref.image[..., 0], both))
        side = np.hypot(*ref.matrix[:2, 0]) * resolution  # the reference square's side in photo pixels
        gap = photo_positions(out.matrix, place, photo.shape, resolution) - photo_positions(
            ref.matrix, ref_place, photo.shape, resolution
        )
        drifts.append(np.linalg.norm(gap, axis=-1).mean() * resolution / side)
    return {
        "n": n,
        "hits": hits,
        "psnr": np.array(psnrs),
        "drift": np.array(drifts),
        "secs": np.array(secs),
        "ref_missing": ref_missing,
    }


def published_rate(detector: str, n: int) -> int:
    return sum(bool(detect_faces(photo, detector=detector)) for _, photo, _, _ in scenes(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--detectors", default="hog,hog+cnn")
    args = parser.parse_args()
    print(
        f"AT&T faces (AT&T Laboratories Cambridge), {args.n} scenes 3x the photo, scale 0.5-1, rotation ±20°, "
        f"aligned at {args.resolution}²"
    )
    print(
        "| detector | detected (scenes) | detected (photos as published) | PSNR median / p5 / min (dB) "
        "| scenes >= 20 dB | drift mean / max (aligned px) | s/scene |"
    )
    print("|---|---|---|---|---|---|---|")
    for detector in args.detectors.split(","):
        r = run(detector, args.n, args.resolution)
        pub = published_rate(detector, args.n)
        p = r["psnr"]
        print(
            f"| {detector} | {r['hits']}/{r['n']} ({100 * r['hits'] / r['n']:.1f} %) | {pub}/{args.n} "
            f"| {np.median(p):.1f} / {np.percentile(p, 5):.1f} / {p.min():.1f} | {(p >= 20).sum()}/{len(p)} "
            f"| {r['drift'].mean():.2f} / {r['drift'].max():.2f} | {r['secs'].mean():.2f} |"
            + (f" (reference scene without a face: {r['ref_missing']})" if r["ref_missing"] else "")
        )


if __name__ == "__main__":
    main()
