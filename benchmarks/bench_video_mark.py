"""The provenance mark in MP4 frames: detection on every decoded frame, and what marking costs the writer.

For each frame size (the built-in `faces` model's 64² frames enlarged by nearest neighbour, as `figure interpolate
--zoom` and `edit --zoom` do), 5 interpolation videos (3 key frames, 8 frames per transition, looped: 24 frames) are
written by editing.figures.write_video with the mark at each H.264 crf asked for, decoded again frame by frame, and
every frame is checked by forensics.mark.detect: found with the right payload, and the coded bits corrected; and each
video as `stylegan detect` reads it (report._media_mark on the decoded frames): 3 frames sampled over its length, each
alone, then their mean, then the mean of more frames (media.mean_indices: every frame of these short videos; for
comparison also media.MEAN_SAMPLES frames spread over it, what a long video gets); and the same reads of the video
written without the mark (false marks).
Time: write_video of the same frames with and without the mark (generation not included) and the generator's time
per frame, so the marking cost can be read as a share of the whole command.

With --cost: what reading more frames costs `detect` on unmarked 10 s H.264 clips (ffmpeg's testsrc2) of 1280x720
(every read falls through to the mean of MEAN_SAMPLES frames) and 256x256 (to the mean of all 300 frames, decoded in
one pass), against the same reads without that last step, alternating, 3 times each.

    python benchmarks/bench_video_mark.py --zooms 2,3,4,8 --crfs 18,23
    python benchmarks/bench_video_mark.py --cost
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stylegan.editing import figures, video_mark
from stylegan.editing.figures import interpolation_frames, write_video
from stylegan.editing.video_swap import read_frames
from stylegan.forensics import mark, media
from stylegan.forensics.report import Media, _media_mark
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


def as_detect_reads(decoded: list[np.ndarray], spread_only: bool = False) -> dict:
    """report._media_mark of a video whose frames are `decoded` (sampled and fetched as detect does; spread_only:
    as if the video were too large to average whole, media.MEAN_SAMPLES frames spread over it)."""
    if spread_only:
        budget, media.MEAN_PIXELS = media.MEAN_PIXELS, 0
        try:
            return as_detect_reads(decoded)
        finally:
            media.MEAN_PIXELS = budget
    samples = [(i, decoded[i]) for i in media.spread(len(decoded), media.SAMPLES)]
    more = lambda at: [(i, decoded[i]) for i in at]  # noqa: E731
    size = decoded[0].shape[1::-1]
    return _media_mark(Media("video", "MP4", size, len(decoded), samples, {}, more=more), {}, mark.DEFAULT_KEY)


def run(videos, factor: int, crf: int, folder: Path, psnr: float = mark.PSNR_DB) -> dict:
    found, errors, marked_s, plain_s, frames = 0, [], 0.0, 0.0, 0
    how = {"alone": 0, "mean": 0, "spread": 0, "more": 0}  # found in a sampled frame; the 3's mean; 12's; all's
    false_alarms = 0  # marks found in the unmarked videos, read the same way
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
        read = as_detect_reads(decoded)
        if read["found"] and (read["seed"], int(read["model"], 16)) == (payload.seed, payload.model):
            averaged = len(read.get("averaged", []))
            how["alone" if not averaged else "mean" if averaged == media.SAMPLES else "more"] += 1
        if averaged_beyond_three(as_detect_reads(decoded, spread_only=True), payload):
            how["spread"] += 1
        false_alarms += as_detect_reads(list(read_frames(folder / "plain.mp4")))["found"]
    return {
        "found": found,
        "videos": how,
        "false_alarms": false_alarms,
        "frames": frames,
        "median_errors": float(np.median(errors)) if errors else None,
        "max_errors": max(errors) if errors else None,
        "plain_ms": 1000 * plain_s / frames,
        "marked_ms": 1000 * marked_s / frames,
    }


def averaged_beyond_three(read: dict, payload) -> bool:
    """Found with the right payload in the mean of more frames than the sampled three."""
    right = read["found"] and (read["seed"], int(read["model"], 16)) == (payload.seed, payload.model)
    return right and len(read.get("averaged", [])) > media.SAMPLES


def detect_cost(folder: Path, repeats: int = 3) -> None:
    import imageio_ffmpeg

    from stylegan.forensics import report

    print("| detect on an unmarked 10 s clip (300 frames) | s (median of 3) |\n|---|---|")
    for size in ("1280x720", "256x256"):
        clip = folder / f"testsrc2_{size}.mp4"
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30"]
        subprocess.run([*command, "-t", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)
        width, height = (int(side) for side in size.split("x"))
        last = len(media.mean_indices(300, (width, height)))
        more_frames, times = report._more_frames, {"3 sampled frames, their mean": [], f"+ mean of {last}": []}
        for _ in range(repeats):
            for name in times:
                report._more_frames = more_frames if name.startswith("+") else (lambda found: [])
                start = time.perf_counter()
                found = report.inspect_file(clip)["mark"]["found"]
                times[name].append(time.perf_counter() - start)
                assert not found, "a mark in an unmarked clip"
        report._more_frames = more_frames
        for name, seconds in times.items():
            print(f"| {size}: {name} | {np.median(seconds):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zooms", default="2,3,4,8")
    parser.add_argument("--crfs", default="18,23")
    parser.add_argument("--videos", type=int, default=5, help="videos per row (first seeds 100, 103, ...)")
    parser.add_argument("--psnr", type=float, default=mark.PSNR_DB, help="mark strength (swaps write 46 dB)")
    parser.add_argument("--cost", action="store_true", help="only time detect on an unmarked 720p clip")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cost:
        with tempfile.TemporaryDirectory() as tmp:
            detect_cost(Path(tmp))
        return
    G = load_generator("faces")
    videos, gen_s = make_videos(G, args.videos)
    n = len(videos)
    print(f"faces {G.img_resolution}²: {1000 * gen_s:.1f} ms/frame to generate (1 thread)")
    print(
        f"| frames | crf | frames with the mark | videos (as detect reads them): in a sampled frame / + mean of 3 "
        f"/ + mean of {media.MEAN_SAMPLES} spread (long videos) / + mean of all (these) | unmarked videos: false marks "
        "| corrected bits (median / max) "
        "| write ms/frame plain | marked |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (int(z) for z in args.zooms.split(",")):
            for crf in (int(c) for c in args.crfs.split(",")):
                r = run(videos, factor, crf, Path(tmp), args.psnr)
                v = r["videos"]
                side = G.img_resolution * factor
                print(
                    f"| {side}² | {crf} | {r['found']}/{r['frames']} "
                    f"| {v['alone']}/{n} / {v['alone'] + v['mean']}/{n} / {v['alone'] + v['mean'] + v['spread']}/{n} "
                    f"/ {v['alone'] + v['mean'] + v['more']}/{n} "
                    f"| {r['false_alarms']}/{n} | {r['median_errors']} / {r['max_errors']} "
                    f"| {r['plain_ms']:.1f} | {r['marked_ms']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
