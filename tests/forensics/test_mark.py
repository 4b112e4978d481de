"""The provenance mark: payload round trip, invisibility (PSNR), survival of common laundering, no false alarms.

Oracles: PSNR computed here from its definition; attacks done by Pillow/numpy (independent of the mark code); the
payload put in is the payload expected out. Host images: AT&T faces (AT&T Laboratories Cambridge), upscaled;
Fashion-MNIST test images (Zalando Research), laid out and enlarged as the CLI does a figure.
"""

import binascii
import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ci_skip import skip_or_fail
from stylegan.forensics import mark as M
from stylegan.forensics.ecc import bits_to_int, conv_encode, crc16, int_to_bits, viterbi_decode

FACES = Path("/work/shared/data/att-faces")
if not FACES.exists():
    FACES = Path(__file__).parents[1] / "fixtures" / "att-faces"
FILES = sorted(FACES.glob("s*/*.pgm"))
pytestmark = pytest.mark.skipif(not FILES, reason="AT&T faces not found")


def face(i: int, size: int = 256, rgb: bool = False) -> np.ndarray:
    img = Image.open(FILES[i]).resize((size, size), Image.BICUBIC)
    if rgb:  # a colour version: tint the channels differently so R, G and B are not equal
        g = np.asarray(img, dtype=np.float64)
        return np.clip(np.stack([g * 1.1, g * 0.9, g * 0.7 + 30], -1), 0, 255).astype(np.uint8)
    return np.asarray(img)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def encode(x: np.ndarray, fmt: str, **kw) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, fmt, **kw)
    return np.asarray(Image.open(buf))


def crop(x: np.ndarray, area: float = 0.8) -> np.ndarray:
    h, w = x.shape[:2]
    ch, cw = round(h * area**0.5), round(w * area**0.5)
    return x[(h - ch) // 3 : (h - ch) // 3 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]


def resize(x: np.ndarray, f: float) -> np.ndarray:
    img = Image.fromarray(x)
    return np.asarray(img.resize((round(img.width * f), round(img.height * f)), Image.BICUBIC))


ATTACKS = {
    "jpeg50": lambda x: encode(x, "JPEG", quality=50),
    "webp": lambda x: encode(x, "WEBP"),
    "crop80": crop,
    "rotate5": lambda x: np.asarray(Image.fromarray(x).rotate(5, resample=Image.BICUBIC)),
    "rotate-5": lambda x: np.asarray(Image.fromarray(x).rotate(-5, resample=Image.BICUBIC)),
    "brightness+20%": lambda x: np.clip(x * 1.2, 0, 255).astype(np.uint8),
    "contrast-20%": lambda x: np.clip((x - x.mean()) * 0.8 + x.mean(), 0, 255).astype(np.uint8),
    "resize50%": lambda x: resize(x, 0.5),
    "noise0.02": lambda x: np.clip(x + np.random.default_rng(1).normal(0, 0.02 * 255, x.shape), 0, 255).astype(
        np.uint8
    ),
}


def test_crc16_matches_binascii():
    data = b"123456789"
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    assert bits_to_int(crc16(bits)) == binascii.crc_hqx(data, 0xFFFF) == 0x29B1


def test_viterbi_corrects_scattered_errors():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, 64).astype(np.uint8)
    soft = conv_encode(bits).astype(np.float64) * 2 - 1
    soft[rng.choice(len(soft), 6, replace=False)] *= -1  # six coded bits flipped, far enough apart on average
    assert np.array_equal(viterbi_decode(soft), bits)
    assert bits_to_int(int_to_bits(0xBEEF, 16)) == 0xBEEF


@pytest.mark.parametrize("rgb", [False, True])
def test_round_trip_and_invisible(rgb):
    x = face(3, rgb=rgb)
    payload = M.Payload(model=M.model_hash_prefix("ffhq"), seed=123456789)
    y = M.embed(x, payload)
    assert y.shape == x.shape and y.dtype == np.uint8
    assert psnr(x, y) >= 40.0
    found = M.detect(y)
    assert found.found and found.payload == payload
    assert found.bit_errors <= 10


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_survives(attack):
    payload = M.Payload(model=0xABC, seed=4242)
    found = M.detect(ATTACKS[attack](M.embed(face(11, rgb=True), payload)))
    assert found.found and found.payload == payload, found


def test_survives_half_size_then_jpeg_at_512():
    payload = M.Payload(model=0x123, seed=7)
    found = M.detect(encode(resize(M.embed(face(5, 512), payload), 0.5), "JPEG", quality=50))
    assert found.found and found.payload == payload, found


def black_background_host(size: int = 256) -> np.ndarray:
    """A bright blob on a pure-black background (like an upscaled Fashion-MNIST sample): most pixels are 0, where
    a negative change clips away."""
    yy, xx = np.mgrid[:size, :size] / size
    blob = np.exp(-(((yy - 0.5) / 0.22) ** 2 + ((xx - 0.5) / 0.15) ** 4)) * 230 - 40
    return np.clip(blob + 12 * np.sin(40 * yy), 0, 255).astype(np.uint8)


def test_black_background_keeps_psnr_and_mark():
    x = black_background_host()
    assert np.mean(x == 0) > 0.4
    payload = M.Payload(model=0x321, seed=99)
    y = M.embed(x, payload)
    assert 40.0 <= psnr(x, y) <= 41.0  # clipping does not push it far above the budget either
    for z in (y, encode(y, "JPEG", quality=50), resize(y, 0.5)):
        found = M.detect(z)
        assert found.found and found.payload == payload, found


def test_unmarked_faces_give_no_detection():
    hits = [M.detect(face(i)).found for i in range(1, 400, 40)]
    assert not any(hits)


def test_wrong_key_finds_nothing():
    y = M.embed(face(2), M.Payload(seed=1))
    assert not M.detect(y, key="another key").found


def test_small_images_are_refused_with_one_line():
    with pytest.raises(ValueError, match="too small"):
        M.embed(np.zeros((64, 64), np.uint8), M.Payload())
    assert not M.detect(np.zeros((32, 32), np.uint8)).found
    with pytest.raises(ValueError, match="does not fit"):
        M.Payload(seed=1 << 32)


FMNIST_TEST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def clothes_figure(first: int, rows: int = 4, cols: int = 4, zoom: int = 4) -> np.ndarray:
    """A figure as `stylegan generate --grid --zoom auto` lays out the 32² model's images, from real Fashion-MNIST
    test images: each padded to 32 px with black, 2 px white gaps, enlarged by nearest neighbour [536, 536]."""
    try:
        with gzip.open(FMNIST_TEST) as f:
            data = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    except OSError:
        skip_or_fail("fashion-mnist test split missing (/usr/share/datasets/fashion-mnist)")
    side = 32 + 2
    canvas = np.full((rows * side - 2, cols * side - 2), 255, np.uint8)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        canvas[r * side : r * side + 32, c * side : c * side + 32] = np.pad(data[first + k], 2)
    return np.kron(canvas, np.ones((zoom, zoom), np.uint8))


def raise_contrast(x: np.ndarray, factor: float = 1.2) -> np.ndarray:
    return np.clip((x.astype(np.float64) - x.mean()) * factor + x.mean(), 0, 255).astype(np.uint8)


def marked_clothes(first: int) -> tuple[np.ndarray, M.Payload]:
    x = clothes_figure(first)
    assert x.shape == (536, 536) and np.mean(raise_contrast(x) == 0) > 0.4  # contrast +20 % blackens most of it
    payload = M.Payload(model=0x2F1, seed=first)
    y = M.embed(x, payload)
    assert 40.0 <= psnr(x, y) <= 41.0
    return y, payload


@pytest.mark.parametrize("first", [0, 160, 320])
def test_enlarged_real_clothes_figure_found_clean_and_after_jpeg(first):
    """Real Fashion-MNIST clothes on black, laid out and enlarged 4x by nearest neighbour as the 32² model's grid is
    (536 px; the model's own grids: tests/forensics/test_mark_grids.py)."""
    y, payload = marked_clothes(first)
    for attacked in (y, encode(y, "JPEG", quality=50)):
        found = M.detect(attacked)
        assert found.found and found.payload == payload, found


@pytest.mark.xfail(strict=True, reason="known limit: real clothes, sharper than the model's, are busy at both periods")
def test_enlarged_real_clothes_figure_survives_webp():
    """Their sharper detail fills the mark's ring at the 64 px period too, and WebP takes what is left."""
    for first in (0, 160, 320):
        y, payload = marked_clothes(first)
        found = M.detect(encode(y, "WEBP"))
        assert found.found and found.payload == payload, found
