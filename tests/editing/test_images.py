"""stylegan.images: the one uint8 conversion, grid tiler and PNG writer, against hand-computed values."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.images import save_png, tile, to_pil, to_uint8, zoom


def test_to_uint8_quantisation():
    """v = x * 127.5 + 128, clipped to [0, 255], truncated (the values below worked out by hand)."""
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.0039, 0.5, 0.99, 1.0, 3.0]).reshape(1, 1, 3, 3)
    expected = [0, 0, 64, 128, 128, 191, 254, 255, 255]
    assert to_uint8(x).flatten().tolist() == expected
    assert to_uint8(x.half()).dtype == torch.uint8 and to_uint8(x).shape == x.shape


def test_tile_layout():
    """5 images 1x2 with pad 1 in 3 columns: cells at rows 0, 2 and columns 0, 3, 6; the rest is `fill`."""
    imgs = torch.arange(5, dtype=torch.uint8).reshape(5, 1, 1, 1).expand(5, 1, 1, 2)
    grid = tile(imgs, cols=3, pad=1, fill=9)
    assert grid.shape == (1, 3, 8)
    assert grid[0].tolist() == [
        [0, 0, 9, 1, 1, 9, 2, 2],
        [9, 9, 9, 9, 9, 9, 9, 9],
        [3, 3, 9, 4, 4, 9, 9, 9],
    ]
    assert tile(imgs).shape == (1, 2, 6)  # default: ceil(sqrt(5)) = 3 columns, no pad
    assert tile(imgs, cols=10).shape == (1, 1, 10)  # cols clamped to N


def test_to_pil_modes_and_bad_shapes():
    rgb = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    pil = to_pil(rgb)
    assert pil.mode == "RGB" and pil.size == (5, 4)
    assert np.array_equal(np.asarray(pil), rgb.permute(1, 2, 0).numpy())
    assert to_pil(rgb[:1]).mode == "L"
    with pytest.raises(ValueError, match="1 or 3 channels"):
        to_pil(torch.zeros(2, 4, 4, dtype=torch.uint8))


def test_zoom_repeats_pixels():
    img = torch.tensor([[[1, 2], [3, 4]]], dtype=torch.uint8)
    assert zoom(img, 2)[0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    assert zoom(img, 1) is img


def test_save_png_is_atomic_and_replaces(tmp_path):
    out = tmp_path / "sub" / "a.png"
    first = torch.zeros(3, 2, 2, dtype=torch.uint8)
    save_png(first, out)
    save_png(first + 7, out)
    assert np.asarray(Image.open(out)).max() == 7
    assert [p.name for p in out.parent.iterdir()] == ["a.png"]  # no temporary file left
