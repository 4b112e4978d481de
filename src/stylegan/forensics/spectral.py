"""Spectral fingerprints of images: the azimuthally averaged power spectrum of the high-pass residual.

Generators up-sample feature maps, and up-sampling leaves periodic traces that show up as bumps and a raised tail in
the high-frequency end of the power spectrum (Durall et al., CVPR 2020; Frank et al., ICML 2020). The 1-D profile
below (mean log power per ring of radial frequency, on a fixed grid of frequencies in cycles/pixel so that images of
any size give the same features) is what the linear detector reads and what the report plots.
"""

from __future__ import annotations

import numpy as np

N_BINS = 32  # points of the radial profile, evenly spaced in (0, 0.5] cycles/pixel
_EPS = 1e-12


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """uint8 [H, W], [H, W, 1] or [H, W, 3+] -> float64 [H, W] in [0, 1] (ITU-R BT.601 luma for colour)."""
    img = np.asarray(pixels, dtype=np.float64) / 255.0
    if img.ndim == 3 and img.shape[-1] < 3:
        img = img[..., 0]
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114])
    return img


def high_pass(gray: np.ndarray) -> np.ndarray:
    """[H, W] -> [H, W]: the image minus its 3x3 box blur (edges reflected), i.e. the fine detail a generator makes."""
    padded = np.pad(gray, 1, mode="reflect")
    h, w = gray.shape
    blur = sum(padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0
    return gray - blur


def power_spectrum(gray: np.ndarray) -> np.ndarray:
    """[H, W] -> [H, W] power |F|^2 / (H W) of the high-pass residual, zero frequency at the centre (for plots)."""
    spectrum = np.fft.fft2(high_pass(gray))
    return np.fft.fftshift(np.abs(spectrum) ** 2) / gray.size


def radial_profile(gray: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """[H, W] -> [bins] mean log10 power of the high-pass residual per ring of radial frequency.

    Ring k holds the frequencies whose radius rounds to k / n cycles/pixel (n = the shorter side); the profile over
    k = 0 .. n/2 is then linearly interpolated onto `bins` evenly spaced radii in (0, 0.5], so that every image size
    gives the same vector. Frequencies beyond 0.5 (the corners of the 2-D spectrum) are left out.
    """
    h, w = gray.shape
    n = min(h, w)
    power = np.abs(np.fft.fft2(high_pass(gray))) ** 2 / gray.size
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))  # cycles/pixel
    ring = np.rint(radius * n).astype(np.int64).ravel()
    keep = ring <= n // 2
    sums = np.bincount(ring[keep], weights=np.log10(power.ravel()[keep] + _EPS), minlength=n // 2 + 1)
    counts = np.bincount(ring[keep], minlength=n // 2 + 1)
    native = sums / np.maximum(counts, 1)
    grid = np.linspace(0.5 / bins, 0.5, bins)
    return np.interp(grid, np.arange(n // 2 + 1) / n, native)


def features(pixels: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """uint8 image -> [bins + 1] float: the radial profile minus its mean (its shape), then that mean (its level)."""
    profile = radial_profile(to_gray(pixels), bins)
    level = profile.mean()
    return np.append(profile - level, level)


def frequencies(bins: int = N_BINS) -> np.ndarray:
    """[bins] radial frequency (cycles/pixel) of each profile point."""
    return np.linspace(0.5 / bins, 0.5, bins)
