"""The invisible provenance mark: a keyed 48-bit payload, spread over a periodic, band-limited luminance pattern.

Design (from the watermarking literature: periodic marks whose spectrum is a lattice, found again after rotation and
scaling, as in Kutter 1998 and Kalker et al. 1999; spread spectrum, Cox et al. 1997):

- Payload: 48 bits (tool id 4, model hash prefix 12, seed 32) + CRC-16, coded by a rate-1/2 convolutional code
  (constraint length 7; 140 coded bits). The mark is a sum of sinusoids whose frequencies are (kx, ky) / P for the
  integer pairs in the ring 4 <= |k| <= 13: about 480 real coefficients. A quarter carry a known pilot; each coded
  bit sets the sign of two or three others. Which coefficient carries what, and its sign, come from the key.
- Embedding: the pattern is evaluated exactly on the image grid with period P pixels (a quarter of the short side,
  64..128; 64 when the host is quieter there), scaled by a mild texture mask and added to the luminance (the same
  amount to R, G and B); its gain is set so that the PSNR after rounding and clipping is 40.5 dB (pure black or
  white areas clip half of the mark away, so the rest gets a little more). Informed embedding, below 512 px and
  below 1024 px where the plain mark reads weakly (figures, grids): the decoder is run on the host first, and the
  energy is shared out among the coefficients so that as many coded bits and pilot coefficients as possible clear
  a common margin over what the host itself puts there (in small, busy images, e.g. the figures and grids of 32 or
  64 px models, the host's own content at the ring is several times the mark's; enlarged by nearest neighbour,
  as the CLI writes them, they are quiet at the 64 px period). Figures of 512 px and up are kept only when the
  decoder reads them as they are and after a simulated contrast +20 %, which clips a near-black background and the
  mark in it to 0 (else the allocation also covers the host's reading after that change). Unenlarged figures stay
  hard: see docs/forensics.md for what is found in which.
- Decoding: the spectrum is whitened (each bin over its neighbours' mean magnitude, lone peaks capped) and the
  result divided by its local RMS, so busy regions count less than quiet ones. The lattice of an untouched or only
  uniformly rescaled image (angle 0, period a quarter of the short side, or 64 / 128 px, or 32 px: a 64 px period
  halved) is tried first. Then a comb over the power spectrum finds the angle and period whose ring holds the most
  power (rotation and rescaling move the ring, crops do not), first at each of those known periods (a rotation
  without rescaling keeps the period; a figure's own cell pitch can hold stronger rings elsewhere), then
  anywhere; candidates whose comb score is at the level of unmarked images are not pursued; a
  pattern search refines the others on the pilot. The residual's Fourier coefficients at the ring frequencies,
  re-phased by the pilot's circular cross-correlation (the crop offset), give soft bits weighted by how much of the
  pilot survived at each radius; Viterbi and the CRC decide. A mark is reported only when the CRC matches: on an
  unmarked image the chance is 2^-16 per lattice tried: 4 or fewer for most images (0.006 %), at most 49 when the
  comb finds ring-like texture (0.07 %).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from stylegan.forensics.ecc import CRC_BITS, bits_to_int, conv_encode, crc16, int_to_bits, viterbi_decode

DEFAULT_KEY = "stylegan-provenance-v1"
TOOL_ID = 0x5  # "this toolkit, mark version 1"; other tools or versions would take other ids
MIN_SIDE = 128  # shorter images carry too few periods to be found again; they are left unmarked
PSNR_DB = 40.5
RING = (4, 13)  # radii (cycles per period) of the Fourier coefficients in use
PILOT_SHARE = 0.25
_PERIOD_RANGE = (64, 128)
_FIELDS = (("tool", 4), ("model", 12), ("seed", 32))
PAYLOAD_BITS = sum(width for _, width in _FIELDS)


@dataclass(frozen=True)
class Payload:
    """What the mark says: which tool made the image (4 bits), a 12-bit prefix of the model's hash, the seed (32)."""

    tool: int = TOOL_ID
    model: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, width in _FIELDS:
            value = getattr(self, name)
            if not 0 <= value < 1 << width:
                raise ValueError(f"mark payload: {name}={value} does not fit in {width} bits (0..{(1 << width) - 1})")

    def to_bits(self) -> np.ndarray:
        """[64] bits: tool, model, seed, most significant first."""
        return np.concatenate([int_to_bits(getattr(self, name), width) for name, width in _FIELDS])

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> Payload:
        values, start = {}, 0
        for name, width in _FIELDS:
            values[name] = bits_to_int(bits[start : start + width])
            start += width
        return cls(**values)


def model_hash_prefix(identity: str | bytes) -> int:
    """Prefix of the SHA-256 of a model's identity (its name, path or URL) that fits the payload's model field."""
    data = identity.encode() if isinstance(identity, str) else identity
    width = dict(_FIELDS)["model"]
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big") >> (32 - width)


@dataclass(frozen=True)
class MarkResult:
    """What the decoder found. `found` only when the CRC matched; then payload is set and bit_errors counts the coded
    bits the code corrected (out of coded_bits). `pilot` is the pilot's peak in standard deviations (about 4-5 on
    unmarked images). `period` is the mark's period in the image's pixels, and `angle` its rotation in degrees."""

    found: bool
    payload: Payload | None = None
    bit_errors: int | None = None
    coded_bits: int = 0
    pilot: float = 0.0
    period: float = 0.0
    angle: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class _Layout:
    """The key's choice of coefficients. bins [B, 2]: (ky, kx) of the half ring (the other half follows by Hermitian
    symmetry). Each real dimension d < D is the real (part 0) or imaginary (part 1) part of bin dim_bin[d], with sign
    sign[d]; the first `pilot` dims carry the pilot, dim pilot + j carries coded bit data_bit[j]. pilot_bins: the
    bins that carry a pilot dimension."""

    bins: np.ndarray
    dim_bin: np.ndarray
    dim_part: np.ndarray
    sign: np.ndarray
    pilot: int
    data_bit: np.ndarray
    pilot_bins: np.ndarray


CODED_BITS = 2 * (PAYLOAD_BITS + CRC_BITS + 6)


@functools.lru_cache(maxsize=8)
def _layout(key: str) -> _Layout:
    r = np.arange(-RING[1], RING[1] + 1)
    ky, kx = np.meshgrid(r, r, indexing="ij")
    radius = np.hypot(ky, kx)
    upper = (ky > 0) | ((ky == 0) & (kx > 0))
    bins = np.stack([ky, kx], -1)[upper & (radius >= RING[0]) & (radius <= RING[1])]  # [B, 2]
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
    order = rng.permutation(2 * len(bins))  # real dims: bin = d // 2, part = d % 2, in key order
    pilot = int(len(order) * PILOT_SHARE)
    data_bit = np.arange(len(order) - pilot) % CODED_BITS  # every coded bit once, the first ones twice
    return _Layout(
        bins=bins,
        dim_bin=order // 2,
        dim_part=order % 2,
        sign=rng.choice([-1.0, 1.0], size=len(order)),
        pilot=pilot,
        data_bit=rng.permutation(data_bit),
        pilot_bins=np.unique(order[:pilot] // 2),
    )


def _dim_values(layout: _Layout, payload: Payload | None) -> np.ndarray:
    """+-1 per real dimension [D] (times the key's sign): the pilot's +1 and the coded bits; None: the pilot alone."""
    values = np.zeros(len(layout.sign))
    values[: layout.pilot] = 1.0
    if payload is not None:
        bits = np.concatenate([payload.to_bits(), crc16(payload.to_bits())])
        values[layout.pilot :] = conv_encode(bits)[layout.data_bit].astype(np.float64) * 2 - 1
    return values * layout.sign


def _to_bins(layout: _Layout, values: np.ndarray) -> np.ndarray:
    """Per-dimension values [D] -> complex bin coefficients [B]."""
    coef = np.zeros(len(layout.bins), dtype=np.complex128)
    np.add.at(coef, layout.dim_bin, np.where(layout.dim_part == 0, values, 1j * values))
    return coef


def _from_bins(layout: _Layout, coef: np.ndarray) -> np.ndarray:
    """Complex bin coefficients [B] -> per-dimension values [D], signs removed."""
    picked = coef[layout.dim_bin]
    return np.where(layout.dim_part == 0, picked.real, picked.imag) * layout.sign


# ---------------------------------------------------------------- embedding


def period_for(height: int, width: int) -> float:
    """The mark's period in pixels for an image of this size: a quarter of the short side, within 48..128."""
    return float(np.clip(min(height, width) / 4, *_PERIOD_RANGE))


def can_mark(height: int, width: int) -> bool:
    """Whether an image is large enough to carry the mark (both sides >= MIN_SIDE)."""
    return min(height, width) >= MIN_SIDE


def pattern(
    height: int,
    width: int,
    payload: Payload | None,
    key: str = DEFAULT_KEY,
    *,
    period: float | None = None,
    amplitude: np.ndarray | None = None,
) -> np.ndarray:
    """The mark's unit-RMS luminance pattern [H, W]: the keyed tile as a trigonometric polynomial of period P
    (default period_for(H, W)). amplitude [D]: per real dimension, how strongly it is written (default all 1)."""
    layout = _layout(key)
    values = _dim_values(layout, payload)
    coef = _to_bins(layout, values if amplitude is None else values * amplitude)
    period = period_for(height, width) if period is None else period
    ks = np.arange(-RING[1], RING[1] + 1)
    grid = np.zeros((RING[1] + 1, len(ks)), dtype=np.complex128)  # [ky 0..R, kx -R..R]
    grid[layout.bins[:, 0], layout.bins[:, 1] + RING[1]] = coef
    ey = np.exp(2j * np.pi * np.outer(np.arange(height), np.arange(RING[1] + 1)) / period)  # [H, R+1]
    ex = np.exp(2j * np.pi * np.outer(np.arange(width), ks) / period)  # [W, 2R+1]
    out = 2 * (ey @ grid @ ex.T).real  # [H, W]
    return out / max(out.std(), 1e-12)


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)^2 window [H, W], edges replicated, by summed-area table."""
    pad = np.pad(x, radius + 1, mode="edge")
    sat = pad.cumsum(0).cumsum(1)
    k = 2 * radius + 1
    total = sat[k:, k:] - sat[:-k, k:] - sat[k:, :-k] + sat[:-k, :-k]
    return total[: x.shape[0], : x.shape[1]] / (k * k)


def texture_mask(luma: np.ndarray) -> np.ndarray:
    """Relative mark strength [H, W], mean square 1: a little more where the local contrast hides it, never much less.

    Mild on purpose: under a fixed PSNR the decoder reads most where the host is quiet, so a strong mask would move
    the mark to where it is hardest to read (measured: the errors after a 50 % resize go up by a third).
    """
    mean = _box_mean(luma, 2)
    std = np.sqrt(np.maximum(_box_mean(luma * luma, 2) - mean * mean, 0))
    mask = (std * std + 16.0) ** 0.175
    mask = np.minimum(mask, 2 * np.median(mask))
    return mask / np.sqrt(np.mean(mask * mask))


def luminance(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W] or [H, W, C] (C = 1 or 3) -> float luma [H, W] (BT.601 weights for RGB)."""
    x = image.astype(np.float64)
    if x.ndim == 2:
        return x
    if x.shape[2] == 1:
        return x[:, :, 0]
    return x[:, :, :3] @ np.array([0.299, 0.587, 0.114])


def embed(image: np.ndarray, payload: Payload, *, key: str = DEFAULT_KEY, psnr: float = PSNR_DB) -> np.ndarray:
    """Marks a uint8 image [H, W] or [H, W, C] (C = 1 or 3); returns a new uint8 array of the same shape.

    The same luminance change goes to every channel, so colours keep their hue. Below 512 px the embedding is
    informed: the decoder is run on the host at each period it tries first, and each period's pattern is
    re-weighted against what the host already says there (see _informed); the period whose weakest coded bits end
    up strongest is kept if the full decoder reads it back (else the other, else the plain pattern). From 512 to
    1023 px the plain pattern at the natural period is kept when it reads well above the host (single images);
    where it does not (figures and grids, whose cells are full of detail in its band) the informed embedding at
    both periods is tried as below 512 px, and confirmed at the lattice written, also after a contrast increase
    (see _figure_mark). From 1024 px up the plain pattern is written. Raises ValueError for images smaller than
    MIN_SIDE (see can_mark).
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"mark: expected uint8 [H, W] or [H, W, 1|3], got {image.dtype} {list(image.shape)}")
    height, width = image.shape[:2]
    if not can_mark(height, width):
        raise ValueError(f"mark: {width}x{height} is too small; the mark needs both sides >= {MIN_SIDE}")
    mask = texture_mask(luminance(image))
    natural = period_for(height, width)
    if min(height, width) >= _INFORMED_BELOW:  # the plain mark (4 ms, not 0.4 s, at 1024²)
        return _written(image, payload, key, psnr, mask, natural, None)
    view = None
    if natural >= _PERIOD_RANGE[1]:  # 512 px up: keep the plain mark where the host does not drown it
        view = _decoder_view(image, at_least=2)  # below 640 px at half size (a quarter of the work)
        first = _plain(image, payload, key, psnr, mask, natural, view)
        if first.snr >= _PLAIN_SNR:
            return first.marked
        if view[1] != _decode_factor(height, width):  # 512..639 px: the decoder reads these at full size
            view = None
    if view is None:
        view = _decoder_view(image)  # shared by the readings at both periods
        first = _plain(image, payload, key, psnr, mask, natural, view)
    # the shortest period may do better: a quieter band in small, busy images and in figures (cells of a few dozen
    # px, enlarged by nearest neighbour, leave little above their own pitch)
    plains = [first] if natural == _PERIOD_RANGE[0] else [first, _plain(image, payload, key, psnr, mask, 64.0, view)]
    if natural >= _PERIOD_RANGE[1]:
        return _figure_mark(image, payload, key, psnr, mask, plains, view)
    for marked, _ in _ranked(image, payload, key, psnr, mask, plains):
        # the margin is a linear estimate at the untouched lattice: confirm with the full decoder
        found = detect(marked, key=key)
        if found.found and found.payload == payload:
            return marked
    return first.marked  # the plain mark at the natural period


def _ranked(image, payload, key, psnr, mask, plains, pressures=None) -> list[tuple[np.ndarray, float]]:
    """The informed marks for these plain ones [(marked image, period)], the largest margin first."""
    pressures = pressures or [None] * len(plains)
    pairs = zip(plains, pressures, strict=True)
    made = [(*_informed(image, payload, key, psnr, mask, c, p), c.period) for c, p in pairs]
    return [(marked, period) for marked, _, period in sorted(made, key=lambda c: -c[1])]


def _figure_mark(image, payload, key, psnr, mask, plains: list[_PlainMark], view) -> np.ndarray:
    """512..1023 px hosts where the plain mark reads weakly (figures, grids): the informed mark, largest margin
    first, that the decoder reads at the lattice written both as it is and after contrast +20 % (which blackens
    near-black backgrounds, and the mark in them). If none does: the same with the allocation also covering what
    the host says after that contrast change (see _after_contrast); else the first that reads as it is; else the
    plain mark. Only the lattice written is read (a miss in the full search would cost seconds)."""
    readable = []
    for attempt in range(2):
        if attempt == 0:
            candidates = _ranked(image, payload, key, psnr, mask, plains)
        else:
            raised = _decoder_view(_raised_contrast(image), view[1])
            pressures = [_after_contrast(c, payload, key, raised) for c in plains]
            candidates = _ranked(image, payload, key, psnr, mask, plains, pressures)
        for marked, period in candidates:
            if _reads_at(marked, payload, key, period):
                if _reads_at(_raised_contrast(marked), payload, key, period):
                    return marked
                readable.append(marked)
    return readable[0] if readable else plains[0].marked


_CONTRAST = 1.2  # the contrast change figures are prepared for (the goal's +20 %)


def _raised_contrast(image: np.ndarray) -> np.ndarray:
    """uint8 image with its contrast raised by _CONTRAST around its mean, rounded and clipped."""
    mean = float(image.mean())
    return np.clip(np.rint((image.astype(np.float64) - mean) * _CONTRAST + mean), 0, 255).astype(np.uint8)


def _after_contrast(plain: _PlainMark, payload: Payload, key: str, raised_host) -> np.ndarray | None:
    """The informed embedding's input [D] for a plain mark, prepared for raised contrast: per dimension the lower
    (the worse for the mark) of the host's reading as it is and after the contrast change (raised_host: that
    host's _decoder_view), each over the plain mark's response there. None when the mark does not respond."""
    layout = _layout(key)
    want = _dim_values(layout, payload) * layout.sign
    host = _reading(layout, raised_host, plain.period) * want
    marked = _decoder_view(_raised_contrast(plain.marked), raised_host[1])
    response = float(np.mean(_reading(layout, marked, plain.period) * want - host))
    if response <= 0 or plain.response <= 0:
        return None
    return np.minimum(plain.host / plain.response, host / response)


_INFORMED_BELOW = 1024  # from this short side up the plain mark is always written (the built-in models' figures
# are smaller; the check would cost 2 decoder readings per image)
_PLAIN_SNR = 1.6  # from 512 px up the plain mark is kept when it reads this far above the host's spread, at half
# size (measured: single images at 512² 2.0-10.9, AT&T faces the lowest; the built-in models' figures and grids
# enlarged by --zoom auto 0.59-1.2)


@dataclass(frozen=True)
class _PlainMark:
    """The plain (uninformed) mark at one period: the marked image, what the decoder reads of the host along the
    wanted signs [D], the mark's mean response there, and their ratio (response over the host's spread)."""

    period: float
    marked: np.ndarray
    host: np.ndarray
    response: float

    @property
    def snr(self) -> float:
        return self.response / max(float(self.host.std()), 1e-12)


def _written(image: np.ndarray, payload: Payload, key: str, psnr: float, mask: np.ndarray, period: float, amp):
    """The image with the pattern (period, per-dimension amplitude amp [D] or None) added at the PSNR budget."""
    delta = pattern(*image.shape[:2], payload, key, period=period, amplitude=amp) * mask
    return add_at_psnr(image, delta[:, :, None] if image.ndim == 3 else delta, psnr)


def _plain(image, payload, key, psnr, mask, period, view) -> _PlainMark:
    """The plain mark at this period, with the decoder's reading of the host (view: its _decoder_view) and of the
    marked image (at the view's size) at the untouched lattice."""
    layout = _layout(key)
    want = _dim_values(layout, payload) * layout.sign  # what _from_bins reads for the mark, +-1
    host = _reading(layout, view, period) * want
    marked = _written(image, payload, key, psnr, mask, period, None)
    response = float(np.mean(_reading(layout, _decoder_view(marked, view[1]), period) * want - host))
    return _PlainMark(period, marked, host, response)


def _informed(image, payload, key, psnr, mask, plain: _PlainMark, pressure=None) -> tuple[np.ndarray, float]:
    """Marks with the amplitudes re-weighted for this host (informed embedding, after Miller, Cox and Bloom 2000):
    the decoder's reading of the host at the untouched lattice says, per coded bit and per pilot dimension, how
    far the host already pushes it to the right or wrong side; the mark's energy goes where it lifts the most of
    them over a common margin. pressure [D]: that reading in units of the mark's response (default host /
    response). Returns (marked image, the margin reached, in units of the host's spread).
    """
    if plain.response <= 0:
        return plain.marked, -np.inf
    amp, margin = _allocate(_layout(key), plain.host / plain.response if pressure is None else pressure)
    marked = _written(image, payload, key, psnr, mask, plain.period, amp)
    return marked, margin * plain.response / max(float(plain.host.std()), 1e-12)


def _reads_at(image: np.ndarray, payload: Payload, key: str, period: float) -> bool:
    """Whether the decoder reads this payload at angle 0 and this period (image pixels): detect's first guesses
    without its search."""
    layout = _layout(key)
    resid, factor = _decoder_view(image)
    coef, _ = _coefficients_at(layout, resid, 0.0, period / factor)
    return _read_bits(layout, coef)[0] == payload


def _decoder_view(image: np.ndarray, at_least: int = 1) -> tuple[np.ndarray, int]:
    """What the decoder works on: the residual [h, w] of the luma at decoding size, and the factor it was reduced by
    (at_least 2: a quarter of the work, for a rough reading)."""
    luma, factor = _working_luma(image, at_least)
    return _residual(luma), factor


def _reading(layout: _Layout, view: tuple[np.ndarray, int], period: float) -> np.ndarray:
    """What the decoder reads [D] (signs removed) in a _decoder_view at angle 0 and this period (image pixels), before
    alignment (offset 0)."""
    resid, factor = view
    fx, fy = _ring_frequencies(layout, np.array([0.0]), np.array([period / factor]))
    return _from_bins(layout, _ring_coefficients(resid, fx[0], fy[0]))


_FLOOR = 0.5  # every dimension keeps at least this amplitude (of the plain mark's 1)
_FIXED_SHARE = 0.9  # the margin is the one the cheapest 90 % of groups can all be lifted to


def _allocate(layout: _Layout, host: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-dimension amplitudes [D] of the same total energy as the plain mark's ones, given the host's reading
    along the wanted signs [D] (in units of one amplitude). Groups: each pilot dimension alone, the dimensions of
    each coded bit together (the decoder adds them). The largest margin m is found such that lifting the cheapest
    90 % of groups to m per dimension fits the budget; those are lifted, the others keep the floor."""
    group = np.concatenate([np.arange(layout.pilot), layout.pilot + layout.data_bit])
    count = np.bincount(group)
    have = np.bincount(group, weights=host) + _FLOOR * count
    budget = len(host) * (1 - _FLOOR**2)

    def lift(m: float) -> np.ndarray:
        return np.maximum(0.0, m * count - have) ** 2 / count

    low, high = 0.0, 32.0
    for _ in range(30):
        mid = (low + high) / 2
        cheapest = np.sort(lift(mid))[: int(_FIXED_SHARE * len(count))]
        low, high = (mid, high) if cheapest.sum() <= budget else (low, mid)
    cost = lift(low)
    order = np.argsort(cost)
    lifted = np.zeros(len(count), bool)
    lifted[order[np.cumsum(cost[order]) <= budget]] = True
    extra = np.where(lifted, np.maximum(0.0, low * count - have) / count, 0.0)
    return _FLOOR + extra[group], low


def add_at_psnr(image: np.ndarray, delta: np.ndarray, psnr: float, dtype=np.float64) -> np.ndarray:
    """image + s * delta, rounded and clipped to uint8, with the gain s chosen so that the PSNR of the result is
    `psnr`: where the image is pure black or white half the mark is clipped away, so the rest may be stronger.
    dtype: of the arithmetic (float32 for video frames, where it halves the time)."""
    delta = delta.astype(dtype, copy=False)
    target = 255.0**2 / 10 ** (psnr / 10)  # the mean squared change allowed
    start = float(np.sqrt(target / np.mean(delta * delta)))  # a Python float keeps float32 arithmetic float32
    gain, host = start, image.astype(dtype)
    for _ in range(4):
        out = np.clip(np.rint(host + gain * delta), 0, 255)
        mse = np.mean((out - host) ** 2)
        if abs(mse / target - 1) < 0.01:
            break
        gain = min(gain * float(np.sqrt(target / max(mse, 1e-12))), 3 * start)
    return out.astype(np.uint8)


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


# ---------------------------------------------------------------- decoding

_DECODE_SIDE = 640  # larger images are box-downsampled by an integer factor below this short side
_ANGLES = np.arange(-10.0, 10.01, 0.25)  # rotations searched (degrees)
_PERIOD_STEP = 1.01  # periods searched: geometric steps of 1 %
_CANDIDATES = 3  # (angle, period) peaks tried
_MAX_FREQ = 0.45  # cycles/pixel kept by the whitening
_SHIFT_GRID = 128  # offset search resolution: 1/128 of a period
_WEIGHT_GROUPS = 4  # radius groups whose signal level the pilot measures, to weigh the soft bits
_LOCAL_RMS_RADIUS = 8  # window radius (px) of the residual's local RMS that the decoder divides by
_COMB_MIN = 2.5  # comb score below which a candidate is not refined: <= 2.1 unmarked, >= 3 marked (measured)


def _decode_factor(height: int, width: int) -> int:
    """The integer factor the decoder box-downsamples an image of this size by (to a short side below 640 px)."""
    return max(1, -(-min(height, width) // _DECODE_SIDE))


def _working_luma(image: np.ndarray, at_least: int = 1) -> tuple[np.ndarray, int]:
    """Luma [h, w] at decoding size (reduced by at least `at_least`) and the integer factor it was reduced by."""
    luma = luminance(image)
    factor = max(at_least, _decode_factor(*luma.shape))
    if factor > 1:
        h, w = (s // factor * factor for s in luma.shape)
        luma = luma[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    return luma, factor


def _whiten(luma: np.ndarray) -> np.ndarray:
    """Whitened spectrum [h, w]: divided by its local average magnitude (the image's smooth spectrum goes, the mark's
    lines stay), kept between 0.01 and 0.45 cycles/pixel, single bright bins (JPEG's 8 x 8 block grid, stripes in
    the picture) limited to four times their surroundings."""
    h, w = luma.shape
    spec = np.fft.fft2(luma - luma.mean())
    smooth = np.fft.ifftshift(_box_mean(np.fft.fftshift(np.abs(spec)), 3)) + 1e-9
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    keep = (np.hypot(fy, fx) > 0.01) & (np.hypot(fy, fx) < _MAX_FREQ)
    white = spec / smooth
    white *= np.minimum(1.0, 4.0 / np.maximum(np.abs(white), 1e-12))
    return np.where(keep, white, 0)


def _residual(luma: np.ndarray) -> np.ndarray:
    """The whitened image [h, w], divided by its local RMS: busy regions, where the host drowns the mark, count less
    than quiet ones (the mark's own level is about the same everywhere)."""
    resid = np.fft.ifft2(_whiten(luma)).real
    return resid / (np.sqrt(_box_mean(resid * resid, _LOCAL_RMS_RADIUS)) + 1e-9)


def _ring_frequencies(layout: _Layout, angle: np.ndarray, period: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image frequencies (fx, fy) [C, B] of the ring's bins for C (angle in degrees, period in pixels) pairs."""
    rad = np.radians(angle)[:, None]
    kx, ky = layout.bins[None, :, 1], layout.bins[None, :, 0]
    fx = (np.cos(rad) * kx - np.sin(rad) * ky) / period[:, None]
    fy = (np.sin(rad) * kx + np.cos(rad) * ky) / period[:, None]
    return fx, fy


def _flat_power(resid: np.ndarray) -> np.ndarray:
    """Power spectrum [2h, 2w] of the residual, zero-padded to twice the size (a finer frequency grid, so a ring at
    any angle and scale falls near samples), divided by its median at each radius so that the background is 1."""
    h, w = resid.shape
    power = np.abs(np.fft.fft2(resid, s=(2 * h, 2 * w))) ** 2
    fy, fx = np.fft.fftfreq(2 * h)[:, None], np.fft.fftfreq(2 * w)[None, :]
    ring = np.minimum((np.hypot(fy, fx) * 2 * min(h, w)).astype(np.int64), min(h, w)).ravel()
    order = np.argsort(ring, kind="stable")  # the samples grouped by radius: one sort instead of a mask per radius
    groups = np.split(power.ravel()[order], np.searchsorted(ring[order], np.arange(1, min(h, w) + 1)))
    medians = np.array([np.median(g) if len(g) else 1.0 for g in groups])
    floor = 0.1 * np.median(power) + 1e-12  # radii the whitening emptied: no blow-up
    return power / np.maximum(medians[ring].reshape(power.shape), floor)


def _lattice_candidates(
    layout: _Layout, resid: np.ndarray, known: list[float] = ()
) -> list[tuple[float, float, float]]:
    """The (angle, period, comb score) triples whose ring of frequencies holds the most power, best first. The score
    is the ring's mean power over the median of the spectrum at the same radius (each sample clipped at 6).

    A comb over the power spectrum: only the few hundred frequencies where the mark would live are summed, so the
    mark stands out of the image's spectrum even when its share of the total power is tiny.
    """
    power = _flat_power(resid)
    h, w = power.shape
    short = min(resid.shape)
    shortest = RING[1] / _MAX_FREQ  # smaller periods would put the ring beyond the whitened band
    periods = shortest * _PERIOD_STEP ** np.arange(int(np.log(0.5 * short / shortest) / np.log(_PERIOD_STEP)))
    angle, period = (g.ravel() for g in np.meshgrid(_ANGLES, periods, indexing="ij"))
    fx, fy = _ring_frequencies(layout, angle, period)
    samples = power[np.rint(fy * h).astype(np.int64) % h, np.rint(fx * w).astype(np.int64) % w]  # [C, B]
    # clipped: a few bright spots (image structure) do not make a ring
    score = np.minimum(samples, 6.0).mean(axis=1).reshape(len(_ANGLES), len(periods))
    # a rotation without rescaling keeps one of the known periods: the best angle there, even when periodic image
    # structure (a figure's cells) holds the strongest rings elsewhere
    found = []
    for p in known:
        j = int(np.argmin(np.abs(np.log(periods / p))))
        i = int(np.argmax(score[:, j]))
        if abs(_ANGLES[i]) >= 0.5:  # angle 0 at the known periods was tried first
            found.append((float(_ANGLES[i]), float(periods[j]), float(score[i, j])))
    for _ in range(min(_CANDIDATES, score.size)):
        i, j = np.unravel_index(np.argmax(score), score.shape)
        found.append((float(_ANGLES[i]), float(periods[j]), float(score[i, j])))
        score[max(0, i - 4) : i + 5, max(0, j - 8) : j + 9] = -np.inf  # next peak: another angle or scale
    return found


def _ring_coefficients(resid: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """The residual's Fourier transform at arbitrary frequencies [B]: read off the FFT when they all fall on its grid
    (an unrotated mark whose period divides the image), else separable sums (rows, then columns) in single precision.
    """
    h, w = resid.shape
    iy, ix = fy * h, fx * w
    if np.allclose(iy, np.rint(iy), atol=1e-6) and np.allclose(ix, np.rint(ix), atol=1e-6):
        return np.fft.fft2(resid)[np.rint(iy).astype(np.int64) % h, np.rint(ix).astype(np.int64) % w]
    ex = np.exp(-2j * np.pi * np.outer(np.arange(w), fx)).astype(np.complex64)  # [w, B]
    ey = np.exp(-2j * np.pi * np.outer(np.arange(h), fy)).astype(np.complex64)  # [h, B]
    return np.sum((resid.astype(np.float32) @ ex) * ey, axis=0).astype(np.complex128)


def _align(layout: _Layout, coef: np.ndarray) -> tuple[np.ndarray, float]:
    """Finds the crop offset by correlating with the pilot; returns the re-phased bins [B] and the pilot's peak
    height in standard deviations of the correlation surface."""
    pilot = _to_bins(layout, _dim_values(layout, None))
    grid = np.zeros((_SHIFT_GRID, _SHIFT_GRID), dtype=np.complex128)
    grid[layout.bins[:, 0] % _SHIFT_GRID, layout.bins[:, 1] % _SHIFT_GRID] = coef * np.conj(pilot)
    surface = np.fft.ifft2(grid).real  # [M, M]: pilot correlation at every offset, 1/M of a period apart
    sy, sx = np.unravel_index(np.argmax(surface), surface.shape)
    height = (surface[sy, sx] - surface.mean()) / max(surface.std(), 1e-12)
    phase = np.exp(2j * np.pi * (layout.bins[:, 0] * sy + layout.bins[:, 1] * sx) / _SHIFT_GRID)
    return coef * phase, float(height)


def _weights(layout: _Layout, dims: np.ndarray) -> np.ndarray:
    """Per-dimension reliability [D] from the pilot: its mean value in each radius group (attacks such as JPEG or
    down-scaling weaken the outer radii), over the spread of all values there (the noise)."""
    radius = np.hypot(*layout.bins[layout.dim_bin].T)
    group = np.minimum(((radius - RING[0]) / (RING[1] - RING[0] + 1e-9) * _WEIGHT_GROUPS).astype(int), 3)
    weights = np.zeros(len(dims))
    for g in range(_WEIGHT_GROUPS):
        members = group == g
        pilot = members & (np.arange(len(dims)) < layout.pilot)
        level = max(dims[pilot].mean(), 0.0) if pilot.any() else 0.0
        weights[members] = level / max(dims[members].var(), 1e-12)
    return weights


def _read_bits(layout: _Layout, coef: np.ndarray) -> tuple[Payload | None, int]:
    """Soft bits -> (payload or None when the CRC fails, coded bits the code corrected)."""
    dims = _from_bins(layout, coef)
    soft = (dims * _weights(layout, dims))[layout.pilot :]
    coded = np.bincount(layout.data_bit, weights=soft, minlength=CODED_BITS)
    bits = viterbi_decode(coded)
    errors = int(np.sum((coded > 0) != conv_encode(bits).astype(bool)))
    data, check = bits[:PAYLOAD_BITS], bits[PAYLOAD_BITS:]
    return (Payload.from_bits(data) if np.array_equal(crc16(data), check) else None), errors


def _coefficients_at(layout: _Layout, resid: np.ndarray, angle: float, period: float) -> tuple[np.ndarray, float]:
    """Aligned ring coefficients [B] for one lattice guess, and the pilot's peak height."""
    fx, fy = _ring_frequencies(layout, np.array([angle]), np.array([period]))
    return _align(layout, _ring_coefficients(resid, fx[0], fy[0]))


def _pilot_match(layout: _Layout, resid: np.ndarray, angle: float, period: float) -> float:
    """How well the pilot's dimensions, aligned, agree with the pilot (cosine similarity, -1..1). Only the bins that
    carry pilot dimensions are computed (about 40 % of them)."""
    used = layout.pilot_bins
    fx, fy = _ring_frequencies(layout, np.array([angle]), np.array([period]))
    coef = np.zeros(len(layout.bins), dtype=np.complex128)
    coef[used] = _ring_coefficients(resid, fx[0, used], fy[0, used])
    pilot = _from_bins(layout, _align(layout, coef)[0])[: layout.pilot]
    return float(pilot.sum() / (np.sqrt(layout.pilot) * np.linalg.norm(pilot) + 1e-12))


def _refine(layout: _Layout, resid: np.ndarray, angle: float, period: float) -> tuple[float, float]:
    """Pattern search around a coarse lattice guess for the best pilot match (steps from half the comb's grid,
    halving to 0.03 deg, 0.06 %)."""
    best = _pilot_match(layout, resid, angle, period)
    step_angle, step_scale = (_ANGLES[1] - _ANGLES[0]) / 2, (_PERIOD_STEP - 1) / 2
    while step_angle > 0.03:
        moved = False
        for da, ds in ((step_angle, 0), (-step_angle, 0), (0, step_scale), (0, -step_scale)):
            match = _pilot_match(layout, resid, angle + da, period * (1 + ds))
            if match > best:
                best, angle, period, moved = match, angle + da, period * (1 + ds), True
                break
        if not moved:
            step_angle, step_scale = step_angle / 2, step_scale / 2
    return angle, period


def detect(image: np.ndarray, *, key: str = DEFAULT_KEY) -> MarkResult:
    """Looks for the mark in a uint8 image [H, W] or [H, W, C] (C = 1 or 3), after whatever was done to it.

    Images shorter than two of the shortest findable periods (about 116 px) are not searched.
    """
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 4 * RING[1] / _MAX_FREQ:
        return MarkResult(found=False, reason="image too small to hold a mark")
    layout = _layout(key)
    luma, factor = _working_luma(image)
    resid = _residual(luma)
    best = MarkResult(found=False, coded_bits=CODED_BITS, reason="no mark found")
    for angle, period in _guesses(layout, resid, image.shape[:2], factor):
        coef, pilot = _coefficients_at(layout, resid, angle, period)
        payload, errors = _read_bits(layout, coef)
        if payload is not None:
            return MarkResult(True, payload, errors, CODED_BITS, pilot, period * factor, angle)
        if pilot > best.pilot:
            best = MarkResult(False, None, None, CODED_BITS, pilot, period * factor, angle, best.reason)
    return best


def _guesses(layout: _Layout, resid: np.ndarray, shape: tuple[int, int], factor: int):
    """Lattices (angle in degrees, period in working pixels) to decode at, most likely first: the untouched or only
    uniformly rescaled image's (angle 0, a quarter of the short side; or the 64 / 128 px the period is clipped to),
    then each comb candidate, refined, with its neighbours. A generator: the search stops at the first CRC match."""
    short = min(resid.shape)
    priors = {min(shape) / 4 / factor, _PERIOD_RANGE[0] / factor, _PERIOD_RANGE[1] / factor}
    priors.add(_PERIOD_RANGE[0] / 2 / factor)  # the shortest period after a 50 % resize: grids, where the comb
    # finds the cells' pitch before the mark
    known = sorted(p for p in priors if RING[1] / _MAX_FREQ <= p <= short / 2)
    for period in known:
        yield 0.0, period
    for angle, period, score in _lattice_candidates(layout, resid, known):
        if score >= _COMB_MIN:
            yield from _neighbours(*_refine(layout, resid, angle, period))


def _neighbours(angle: float, period: float) -> list[tuple[float, float]]:
    """The refined lattice first, then 14 around it (0.1 deg; 0.3 and 0.6 %): the host's noise moves the pilot's
    optimum by about that much, and a 0.5 % period error already turns the outer coefficients' phase by a radian."""
    steps = [(0, 0)] + [(i, j) for j in (0, -1, 1, -2, 2) for i in (-1, 0, 1) if (i, j) != (0, 0)]
    return [(angle + 0.1 * i, period * (1 + 0.003 * j)) for i, j in steps]
