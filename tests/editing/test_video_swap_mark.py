"""The face-swap video's encode step marks every frame (at the swap's PSNR) when given a marker, and only then."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

pytest.importorskip("imageio_ffmpeg", reason="the video extra (imageio-ffmpeg) is not installed")

from stylegan.editing.figures import write_video  # noqa: E402
from stylegan.editing.swap import SWAP_MARK_PSNR  # noqa: E402
from stylegan.editing.video_mark import FrameMarker, frame_payload  # noqa: E402
from stylegan.editing.video_swap import encode_with_audio, read_frames  # noqa: E402
from stylegan.forensics import mark  # noqa: E402


def pngs(folder, count=4) -> list:
    """`count` 256² frames of a textured, moving scene, as the swap leaves them in its work folder."""
    yy, xx = np.mgrid[0:256, 0:256] / 256
    paths = []
    for k in range(count):
        grey = 128 + 90 * np.sin(7 * xx + 0.4 * k) * np.cos(5 * yy - 0.2 * k)
        rgb = np.stack([grey, 0.8 * grey + 30, 0.6 * grey + 50], -1).clip(0, 255).astype(np.uint8)
        paths.append(folder / f"{k:06d}.png")
        PIL.Image.fromarray(rgb).save(paths[-1])
    return paths


@pytest.mark.parametrize("marked", [True, False])
def test_encode_marks_every_frame_only_when_asked(tmp_path, marked):
    frames = pngs(tmp_path)
    silent = tmp_path / "target.mp4"  # the swap's target: no audio to copy
    write_video([torch.zeros(3, 256, 256, dtype=torch.uint8)] * 4, silent, fps=10)
    payload = frame_payload("faces", 1234)
    marker = FrameMarker(payload, psnr=SWAP_MARK_PSNR) if marked else None
    out = tmp_path / "swapped.mp4"
    encode_with_audio(frames, silent, out, 10.0, "swap", tmp_path, None, marker)
    found = [mark.detect(pixels) for pixels in read_frames(out)]
    assert len(found) == 4
    if marked:
        assert all(r.found and r.payload == payload for r in found)
    else:
        assert not any(r.found for r in found)
