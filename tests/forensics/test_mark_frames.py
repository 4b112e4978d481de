"""The mark in a video's sampled frames read together: one pattern in every frame (the mark is computed once per
video), so the frames' mean keeps it while independent noise averages down. Frames too noisy to read one by one are
read from their mean; frames without a mark give none."""

from pathlib import Path

import numpy as np
from PIL import Image

from stylegan.forensics import mark as M
from stylegan.forensics.html import _mark_text
from stylegan.forensics.report import Media, _media_mark, mean_frame

FACE = sorted((Path(__file__).parents[1] / "fixtures" / "att-faces").rglob("*.pgm"))[0]


def _video(frames: list[np.ndarray]) -> Media:
    return Media("video", "MP4", (128, 128), 48, [(16 * i, f) for i, f in enumerate(frames)], {})


def _noisy(image: np.ndarray, n: int, sigma: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(np.rint(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8) for _ in range(n)]


def test_mean_frame_is_the_rounded_pixel_mean():
    a, b = np.full((4, 4), 10, np.uint8), np.full((4, 4), 13, np.uint8)
    assert np.array_equal(mean_frame([a, b]), np.full((4, 4), 12, np.uint8))  # 11.5 rounds to even: 12
    assert mean_frame([a]) is None and mean_frame([a, np.zeros((4, 5), np.uint8)]) is None


def test_frames_too_noisy_alone_are_read_together():
    face = np.asarray(Image.open(FACE).convert("L").resize((128, 128), Image.BICUBIC)).astype(np.float64)
    payload = M.Payload(model=0x123, seed=77)
    marked = M.add_at_psnr(face, M.pattern(128, 128, payload), 40.0).astype(np.float64)
    frames = _noisy(marked, 3, sigma=6.0, seed=1)  # independent noise per frame, as a codec's
    assert not any(M.detect(f).found for f in frames)  # no frame alone
    mark = _media_mark(_video(frames), {}, M.DEFAULT_KEY)
    assert mark["found"] and mark["seed"] == 77 and mark["model"] == "123"
    assert mark["frame"] == "mean" and mark["found_in"] == 0
    assert "in the mean of the 3 sampled frames" in _mark_text(mark, [0, 16, 32])
    plain = _media_mark(_video(_noisy(face, 3, sigma=6.0, seed=1)), {}, M.DEFAULT_KEY)
    assert not plain["found"] and "none in 3 sampled frame(s)" in plain["reason"]
