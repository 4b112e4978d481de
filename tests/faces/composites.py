"""Test scenes: a face photo pasted into a larger canvas at a known position, scale and rotation.

Written with scipy.ndimage (pixel centres at integers), independent of the resampling under test, so that the
known transform is an oracle for the alignment: photo point p lands at centre + scale * R(angle) (p - photo centre).
Photos: AT&T Laboratories Cambridge ("Database of Faces"), see tests/fixtures/att-faces/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

ATT_FULL = "/work/shared/data/att-faces"  # all 400 photos (40 people x 10), for the benchmark
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "att-faces"  # 12 of them, in the repository


@dataclass(frozen=True)
class Placement:
    """Where a photo [h, w] goes in a canvas: centre (x, y) in canvas pixels, scale, rotation in degrees (counter-
    clockwise as seen on screen)."""

    centre: tuple[float, float]
    scale: float
    angle: float

    def matrix(self, photo_shape: tuple[int, int]) -> np.ndarray:
        """[3, 3] from photo pixel (x, y, 1) to canvas pixel (x, y, 1)."""
        h, w = photo_shape
        t = np.deg2rad(self.angle)
        rot = self.scale * np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])  # y points down
        shift = np.asarray(self.centre) - rot @ np.array([(w - 1) / 2, (h - 1) / 2])
        return np.vstack([np.hstack([rot, shift[:, None]]), [0, 0, 1]])


def background(height: int, width: int, seed: int) -> np.ndarray:
    """A grey gradient with noise: float [height, width] in [0, 255]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * x / width + np.sin(direction) * y / height) * 120 + 128
    return np.clip(ramp + rng.normal(0, 25, (height, width)), 0, 255)


def composite(photo: np.ndarray, place: Placement, canvas: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Paste a grey photo [h, w] (uint8) into a background of `canvas` (height, width): uint8 [H, W, 1]."""
    to_photo = np.linalg.inv(place.matrix(photo.shape))
    y, x = np.mgrid[0 : canvas[0], 0 : canvas[1]].astype(np.float64)
    px = to_photo[0, 0] * x + to_photo[0, 1] * y + to_photo[0, 2]
    py = to_photo[1, 0] * x + to_photo[1, 1] * y + to_photo[1, 2]
    src = photo.astype(np.float64)
    if place.scale < 1:  # blur before shrinking, so that the scene is not aliased
        src = ndimage.gaussian_filter(src, 0.5 / place.scale)
    pixels = ndimage.map_coordinates(src, [py, px], order=3, mode="nearest")
    inside = (px >= -0.5) & (px <= photo.shape[1] - 0.5) & (py >= -0.5) & (py <= photo.shape[0] - 0.5)
    out = np.where(inside, pixels, background(*canvas, seed))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)[:, :, None]


def photo_mask(aligned_matrix: np.ndarray, place: Placement, photo_shape: tuple[int, int], side: int) -> np.ndarray:
    """bool [side, side]: aligned pixels whose canvas position lies on the pasted photo (not on the background)."""
    to_photo = np.linalg.inv(place.matrix(photo_shape)) @ aligned_matrix
    pts = _grid_points(to_photo, side)
    h, w = photo_shape
    return (pts[..., 0] >= 0) & (pts[..., 0] <= w - 1) & (pts[..., 1] >= 0) & (pts[..., 1] <= h - 1)


def photo_positions(aligned_matrix: np.ndarray, place: Placement, photo_shape: tuple[int, int], side: int):
    """float [side, side, 2]: the photo point each aligned pixel was taken from."""
    return _grid_points(np.linalg.inv(place.matrix(photo_shape)) @ aligned_matrix, side)


def _grid_points(matrix: np.ndarray, side: int) -> np.ndarray:
    v, u = np.mgrid[0:side, 0:side].astype(np.float64)
    return np.stack(
        [matrix[0, 0] * u + matrix[0, 1] * v + matrix[0, 2], matrix[1, 0] * u + matrix[1, 1] * v + matrix[1, 2]],
        axis=-1,
    )


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB of two uint8 images over the pixels where mask [H, W] is true."""
    diff = a.astype(np.float64)[mask] - b.astype(np.float64)[mask]
    return float(10 * np.log10(255.0**2 / max(np.mean(diff**2), 1e-10)))
