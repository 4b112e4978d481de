"""The provenance mark in MP4 frames: detection on every decoded frame, and what marking costs the writer.

For each frame size (the built-in `faces` model's 64² frames enlarged by nearest neighbour, as `figure interpolate
--zoom` and `edit --zoom` do), 5 interpolation videos (3 key frames, 8 frames per transition, looped: 24 frames) are
written by editing.figures.write_video with the mark at each H.264 crf asked for, decoded again frame by frame, and
every frame is checked by forensics.mark.detect: found with the right payload, and the coded bits corrected; and each
video as `stylegan detect` reads it: 3 frames sampled over its length, each alone, then their mean (report.py).
Time: write_video of the same frames with and without the mark (generation not included) and the generator's time
per frame, so the marking cost can be read as a share of the whole command.

    python benchmarks/bench_video_mark.py --zooms 2,3,4,8 --crfs 18,23
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stylegan.editing import figures, video_mark
from stylegan.editing.figures import interpolation_frames, write_video
from stylegan.editing.video_swap import read_frames
from stylegan.forensics import mark
from stylegan.forensics.report import mean_frame
from stylegan.images import zoom
from stylegan.io import load_generator

KEYS, PER_KEY = 3, 8


def make_videos(G, count: int) -> tuple[list[tuple[int, list[torch.Tensor]]], float]:
    """[(first seed, frames uint8 [C, H, W])] and the generator's seconds per frame."""
    videos, start = [], time.perf_counter()
    for v in range(count):
        seeds = [100 + KEYS * v + k for k in range(KEYS)]
        videos.append((seeds[0], list(interpolation_frames(G, seeds, frames_per_seed=PER_KEY))))
    return videos, (time.perf_counter() - start) / (count * KEYS * PER_KEY)


def run(videos, factor: int, crf: int, folder: Path, psnr: float = mark.PSNR_DB) -> dict:
    found, errors, marked_s, plain_s, frames = 0, [], 0.0, 0.0, 0
    alone, together = 0, 0  # videos found in one of 3 sampled frames; in their mean only
    false_alarms = 0  # marks found in the unmarked videos' sampled frames or their mean
    figures.CRF = crf  # what write_video passes to the encoder
    for seed, clip in videos:
        big = [zoom(f, factor) for f in clip]
        payload = video_mark.frame_payload("faces", seed)
        start = time.perf_counter()
        write_video(big, folder / "plain.mp4", mark=None)
        plain_s += time.perf_counter() - start
        start = time.perf_counter()
        write_video(big, folder / "marked.mp4", mark=video_mark.FrameMarker(payload, psnr=psnr))
        marked_s += time.perf_counter() - start
        decoded = list(read_frames(folder / "marked.mp4"))
        hits = []
        for pixels in decoded:
            result = mark.detect(pixels)
            frames += 1
            hits.append(result.found and result.payload == payload)
            if hits[-1]:
                found += 1
                errors.append(result.bit_errors)
        sampled = sorted({len(decoded) * k // 3 for k in range(3)})  # as report.py samples a video
        if any(hits[i] for i in sampled):
            alone += 1
        else:
            result = mark.detect(mean_frame([decoded[i] for i in sampled]))
            together += bool(result.found and result.payload == payload)
        plain = list(read_frames(folder / "plain.mp4"))  # the same video unmarked: frames and their mean
        picked = [plain[i] for i in sorted({len(plain) * k // 3 for k in range(3)})]
        false_alarms += sum(mark.detect(f).found for f in [*picked, mean_frame(picked)])
    return {
        "found": found,
        "videos_alone": alone,
        "videos_mean": together,
        "false_alarms": false_alarms,
        "frames": frames,
        "median_errors": float(np.median(errors)) if errors else None,
        "max_errors": max(errors) if errors else None,
        "plain_ms": 1000 * plain_s / frames,
        "marked_ms": 1000 * marked_s / frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zooms", default="2,3,4,8")
    parser.add_argument("--crfs", default="18,23")
    parser.add_argument("--videos", type=int, default=5, help="videos per row (first seeds 100, 103, ...)")
    parser.add_argument("--psnr", type=float, default=mark.PSNR_DB, help="mark strength (swaps write 46 dB)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    G = load_generator("faces")
    videos, gen_s = make_videos(G, args.videos)
    n = len(videos)
    print(f"faces {G.img_resolution}²: {1000 * gen_s:.1f} ms/frame to generate (1 thread)")
    print(
        "| frames | crf | frames with the mark | videos (detect: 3 sampled frames) alone / + their mean "
        "| unmarked: false marks (4 reads each) | corrected bits (median / max) | write ms/frame plain | marked |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (int(z) for z in args.zooms.split(",")):
            for crf in (int(c) for c in args.crfs.split(",")):
                r = run(videos, factor, crf, Path(tmp), args.psnr)
                side = G.img_resolution * factor
                print(
                    f"| {side}² | {crf} | {r['found']}/{r['frames']} "
                    f"| {r['videos_alone']}/{n} / {r['videos_alone'] + r['videos_mean']}/{n} "
                    f"| {r['false_alarms']}/{4 * n} | {r['median_errors']} / {r['max_errors']} "
                    f"| {r['plain_ms']:.1f} | {r['marked_ms']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
