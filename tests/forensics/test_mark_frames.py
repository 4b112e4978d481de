"""The mark in a video's sampled frames read together: one pattern in every frame (the mark is computed once per
video), so the frames' mean keeps it while independent noise averages down. Frames too noisy to read one by one are
read from their mean; frames without a mark give none."""

from pathlib import Path

import numpy as np
from PIL import Image

from stylegan.forensics import mark as M
from stylegan.forensics import media
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


def test_frames_too_noisy_in_threes_are_read_from_twelve_spread_over_the_video(monkeypatch):
    """When neither a sampled frame nor the 3 together read, media.MEAN_SAMPLES frames spread over the length of a
    video too large to read whole (here: any, MEAN_PIXELS 0) are fetched (the 3 reused) and read together: noise of
    3x the variance averages down 4x further."""
    monkeypatch.setattr(media, "MEAN_PIXELS", 0)
    face = np.asarray(Image.open(FACE).convert("L").resize((128, 128), Image.BICUBIC)).astype(np.float64)
    payload = M.Payload(model=0x321, seed=5)
    marked = M.add_at_psnr(face, M.pattern(128, 128, payload), 40.0).astype(np.float64)
    for host, expect in ((marked, True), (face, False)):
        frames, fetched = _noisy(host, 48, sigma=14.0, seed=2), []

        def more(indices, frames=frames, fetched=fetched):
            fetched.extend(indices)
            return [(i, frames[i]) for i in indices]

        video = Media("video", "MP4", (128, 128), 48, [(i, frames[i]) for i in (0, 16, 32)], {}, more=more)
        assert mean_frame([frames[i] for i in (0, 16, 32)]) is not None
        assert not M.detect(mean_frame([frames[i] for i in (0, 16, 32)])).found  # 3 are not enough
        mark = _media_mark(video, {}, M.DEFAULT_KEY)
        assert sorted(fetched) == [4, 8, 12, 20, 24, 28, 36, 40, 44]  # the 9 not sampled yet, spread over 48
        assert mark["found"] is expect, mark
        if expect:
            assert mark["seed"] == 5 and mark["frame"] == "mean" and mark["averaged"] == list(range(0, 48, 4))
            assert "in the mean of 12 frames spread over its length" in _mark_text(mark, [0, 16, 32])


def test_a_small_video_is_read_whole_when_twelve_frames_are_not_enough():
    """A video whose frames hold at most media.MEAN_PIXELS in all (48 frames of 128 px) is averaged over every frame:
    at a noise where the mean of 12 misses, the mean of 48 reads; every frame not sampled is fetched once."""
    face = np.asarray(Image.open(FACE).convert("L").resize((128, 128), Image.BICUBIC)).astype(np.float64)
    marked = M.add_at_psnr(face, M.pattern(128, 128, M.Payload(model=0x321, seed=9)), 40.0).astype(np.float64)
    assert media.mean_indices(48, (128, 128)) == list(range(48))
    assert media.mean_indices(48, (4096, 4096)) == media.spread(48, media.MEAN_SAMPLES)
    for host, expect in ((marked, True), (face, False)):
        frames, fetched = _noisy(host, 48, sigma=20.0, seed=5), []

        def more(indices, frames=frames, fetched=fetched):
            fetched.extend(indices)
            return [(i, frames[i]) for i in indices]

        assert not M.detect(mean_frame([frames[i] for i in media.spread(48, media.MEAN_SAMPLES)])).found
        video = Media("video", "MP4", (128, 128), 48, [(i, frames[i]) for i in (0, 16, 32)], {}, more=more)
        mark = _media_mark(video, {}, M.DEFAULT_KEY)
        assert sorted(fetched) == [i for i in range(48) if i not in (0, 16, 32)]
        assert mark["found"] is expect, mark
        if expect:
            assert mark["seed"] == 9 and mark["averaged"] == list(range(48))
            assert "in the mean of all 48 frames; in none of the 3 sampled" in _mark_text(mark, [0, 16, 32])


def test_a_video_of_three_frames_is_not_read_again():
    frames = _noisy(np.full((64, 64), 128.0), 3, sigma=2.0, seed=3)

    def more(indices):
        raise AssertionError(f"asked for {indices}")

    mark = _media_mark(Media("video", "MP4", (64, 64), 3, list(enumerate(frames)), {}, more=more), {}, M.DEFAULT_KEY)
    assert not mark["found"]


def test_an_animation_file_too_noisy_in_threes_is_read_from_all_its_frames(tmp_path):
    """The same through a real file: an animated PNG of 48 noisy marked frames; `detect --json` finds the mark in the
    mean of its 48 frames re-read from the file, and an unmarked twin gives none."""
    import json

    from click.testing import CliRunner

    from stylegan.cli.main import main

    face = np.asarray(Image.open(FACE).convert("L").resize((128, 128), Image.BICUBIC)).astype(np.float64)
    marked = M.add_at_psnr(face, M.pattern(128, 128, M.Payload(model=0x321, seed=9)), 40.0).astype(np.float64)
    for name, host in (("marked", marked), ("plain", face)):
        frames = [Image.fromarray(f) for f in _noisy(host, 48, sigma=14.0, seed=4)]
        frames[0].save(tmp_path / f"{name}.png", save_all=True, append_images=frames[1:], duration=40)
    result = CliRunner().invoke(main, ["detect", "--json", str(tmp_path / "marked.png"), str(tmp_path / "plain.png")])
    marked_report, plain_report = (json.loads(line) for line in result.output.splitlines())
    assert marked_report["kind"] == "animation" and marked_report["frames"] == 48
    assert marked_report["mark"]["found"] and marked_report["mark"]["seed"] == 9, marked_report["mark"]
    assert marked_report["mark"]["averaged"] == list(range(48))
    assert not plain_report["mark"]["found"]


def test_more_frames_are_fetched_only_when_needed():
    """Found in the 3's mean: nothing more is read; metadata saying the frames carry no mark: nothing more is read."""
    face = np.asarray(Image.open(FACE).convert("L").resize((128, 128), Image.BICUBIC)).astype(np.float64)
    marked = M.add_at_psnr(face, M.pattern(128, 128, M.Payload(model=0x123, seed=77)), 40.0).astype(np.float64)

    def more(indices):
        raise AssertionError(f"asked for {indices}")

    frames = _noisy(marked, 3, sigma=6.0, seed=1)  # read together (test_frames_too_noisy_alone_are_read_together)
    video = Media("video", "MP4", (128, 128), 48, [(16 * i, f) for i, f in enumerate(frames)], {}, more=more)
    assert _media_mark(video, {}, M.DEFAULT_KEY)["averaged"] == [0, 16, 32]
    plain = _noisy(face, 3, sigma=6.0, seed=1)
    video = Media("video", "MP4", (128, 128), 48, [(16 * i, f) for i, f in enumerate(plain)], {}, more=more)
    mark = _media_mark(video, {"stylegan:mark": "off (--no-mark)"}, M.DEFAULT_KEY)
    assert not mark["found"] and "as its metadata says" in mark["reason"]
