"""FFHQ-style face alignment as one invertible similarity transform, and pasting an aligned face back.

The FFHQ recipe, from its description: the eye midpoint, the eye-to-eye vector and the eye-to-mouth vector define
an oriented square around the face, its half-side max(2 |eye_to_eye|, 1.8 |eye_to_mouth|), its centre a tenth of
eye_to_mouth below the eye midpoint, its orientation the mean of the eye line and the normal of the eye-to-mouth
line; the square is resampled to a power-of-two output, and where it leaves the photo the pixels are mirrored and
faded into a blur and the face's median colour.

Here the square is one 3x3 matrix from output pixels to photo pixels, applied by a single resample (bilinear with
k x k supersampling when shrinking, then a k x k box average; bicubic when enlarging). The matrix stays on the result
(AlignedFace.matrix), so that an image made in aligned space can be warped back into the photo (`paste_back`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.faces.detect import DETECTORS, Face, detect_faces
from stylegan.faces.models import FaceError
from stylegan.faces.photo import to_hwc

MAX_RESOLUTION = 4096
MAX_SUPERSAMPLE = 16
PAD_BLUR_SIGMA = 0.03  # blur of the mirrored area, in output sides
PAD_BLUR_RAMP = 0.05  # distance outside the photo, in output sides, at which the blur is complete
PAD_MEDIAN_RAMP = 0.3  # ... at which half of the pixel is the face's median colour


class NoFaceError(FaceError):
    """No face was found in a photo."""


@dataclass(frozen=True)
class AlignedFace:
    """An aligned face and the transform that made it.

    image: uint8 [R, R, C], C as in the photo; matrix: [3, 3] float64 taking an output pixel (u, v, 1) to the photo
    pixel (x, y, 1) it was sampled from (pixel centres at integers on both sides); face: the detection it came from;
    photo_size: (width, height) of the photo.
    """

    image: np.ndarray
    matrix: np.ndarray
    face: Face
    photo_size: tuple[int, int]

    @property
    def resolution(self) -> int:
        """Side R of the aligned image."""
        return self.image.shape[0]

    @property
    def inverse(self) -> np.ndarray:
        """[3, 3] matrix from photo pixels (x, y, 1) to aligned pixels (u, v, 1)."""
        return np.linalg.inv(self.matrix)

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Aligned-space points [N, 2] -> photo points [N, 2]."""
        return _apply(self.matrix, points)

    def to_aligned(self, points: np.ndarray) -> np.ndarray:
        """Photo points [N, 2] -> aligned-space points [N, 2] (e.g. the landmarks, for a mask)."""
        return _apply(self.inverse, points)


def alignment_square(face: Face) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The FFHQ square of a face: centre [2] and the half-side vectors along its width and its height [2] each."""
    eyes = (face.eye_left + face.eye_right) / 2
    eye_to_eye = face.eye_right - face.eye_left
    eye_to_mouth = face.mouth - eyes
    mouth_normal = np.array([eye_to_mouth[1], -eye_to_mouth[0]])  # eye_to_mouth turned a quarter towards +x
    across = eye_to_eye + mouth_normal
    half = max(2.0 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth))
    across = across / np.hypot(*across) * half
    down = np.array([-across[1], across[0]])
    return eyes + 0.1 * eye_to_mouth, across, down


def alignment_matrix(face: Face, resolution: int) -> np.ndarray:
    """[3, 3] matrix taking output pixel (u, v, 1) of a resolution² aligned image to its photo pixel (x, y, 1).

    Output pixel u covers [u - 0.5, u + 0.5]; the output's edges -0.5 and R - 0.5 land on the square's edges.
    """
    centre, across, down = alignment_square(face)
    origin = centre - across - down + (across + down) / resolution  # photo position of output pixel (0, 0)
    return np.array([[*(2 * across / resolution), 0], [*(2 * down / resolution), 0], [*origin, 1]]).T


def align_face(image, face: Face, *, resolution: int = 256) -> AlignedFace:
    """Resample the FFHQ square of `face` from `image` (uint8 [H, W, C], PIL or torch [C, H, W]) to resolution²."""
    check_resolution(resolution)
    photo = to_hwc(image)
    matrix = alignment_matrix(face, resolution)
    # only the part of the photo under the square (and 2 px for the filter) is converted: photos can be large
    left, top, right, bottom = _square_box(matrix, resolution, photo.shape[1], photo.shape[0], margin=2)
    src = torch.tensor(photo[top:bottom, left:right]).permute(2, 0, 1)[None].float()  # [1, C, h, w]
    shift = np.array([[1, 0, -left], [0, 1, -top], [0, 0, 1]], dtype=np.float64)
    out = _warp(src, shift @ matrix, resolution, resolution, padding="reflection")
    out = _fade_outside(out, matrix, photo.shape[1], photo.shape[0])
    pixels = out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return AlignedFace(pixels, matrix, face, (photo.shape[1], photo.shape[0]))


def align_faces(
    image, *, resolution: int = 256, largest: bool = False, detector: str = DETECTORS[0]
) -> list[AlignedFace]:
    """Detect and align every face of a photo (largest first), or only the largest; NoFaceError when none."""
    check_resolution(resolution)
    photo = to_hwc(image)
    faces = detect_faces(photo, detector=detector)
    if not faces:
        raise NoFaceError("no face found")
    return [align_face(photo, f, resolution=resolution) for f in faces[: 1 if largest else None]]


def face_mask(aligned: AlignedFace, side: int | None = None) -> np.ndarray:
    """A landmark-based mask of the face in aligned space: float32 [side, side] (default side R), 1 inside.

    An ellipse along the eye line from above the brows to below the mouth: across, 1.0 eye distance either side of
    the eye-mouth axis; along it, from 0.7 eye distances above the eyes to 0.55 below the (estimated) mouth. Hard
    edged: `paste_back` feathers it.
    """
    side = side or aligned.resolution
    scale = side / aligned.resolution
    eyes = aligned.to_aligned(np.stack([aligned.face.eye_left, aligned.face.eye_right])) * scale  # [2, 2]
    mouth = aligned.to_aligned(aligned.face.mouth[None])[0] * scale
    across = eyes[1] - eyes[0]
    spacing = np.hypot(*across)
    down = np.array([-across[1], across[0]]) / spacing
    top, bottom = eyes.mean(axis=0) - 0.7 * spacing * down, mouth + 0.55 * spacing * down
    centre, half_height = (top + bottom) / 2, np.hypot(*(bottom - top)) / 2
    v, u = np.mgrid[0:side, 0:side].astype(np.float64)
    rel = np.stack([u - centre[0], v - centre[1]], axis=-1)
    along, side_way = rel @ down, rel @ (across / spacing)
    return ((along / half_height) ** 2 + (side_way / spacing) ** 2 <= 1).astype(np.float32)


def warp_to_photo(image: np.ndarray, aligned: AlignedFace) -> np.ndarray:
    """An aligned-space image [r, r, C] or mask [r, r] (any r) -> float32 [H, W, C] / [H, W] in photo space.

    Photo pixels outside the aligned square are 0. Bilinear, supersampled when the face is smaller in the photo.
    """
    arr = np.asarray(image, dtype=np.float32)
    flat = arr.ndim == 2
    side = arr.shape[0]
    src = torch.tensor(arr[:, :, None] if flat else arr).permute(2, 0, 1)[None]  # [1, C, r, r]
    width, height = aligned.photo_size
    photo_to_src = np.linalg.inv(_resized(aligned.matrix, aligned.resolution, side))
    left, top, right, bottom = _square_box(aligned.matrix, aligned.resolution, width, height)
    out = np.zeros((height, width, src.shape[1]), np.float32)
    if right > left and bottom > top:
        shift = np.array([[1, 0, left], [0, 1, top], [0, 0, 1]], dtype=np.float64)
        part = _warp(src, photo_to_src @ shift, bottom - top, right - left, padding="zeros")
        out[top:bottom, left:right] = part[0].permute(1, 2, 0).numpy()
    return out[:, :, 0] if flat else out


def paste_back(
    photo, face_image, aligned: AlignedFace, mask: np.ndarray | None = None, *, feather: float = 0.1
) -> np.ndarray:
    """Blend an aligned-space face (e.g. a generated one) back into the photo it was aligned from.

    Args:
        photo: the photo, uint8 [H, W, C] (or PIL / torch [C, H, W]).
        face_image: uint8 [r, r, C'] in aligned space (any side r; grey and colour are converted to the photo's C).
        aligned: the AlignedFace whose transform is inverted.
        mask: float [r, r] in [0, 1], 1 where the face replaces the photo; default the whole square.
        feather: width of the soft edge, as a fraction of r: the mask is blurred by feather * r / 4 and faded to 0
            over feather * r at the square's border.

    Returns:
        uint8 [H, W, C]; pixels where the warped mask is 0 are the photo's, unchanged.
    """
    base = to_hwc(photo)
    face = _match_channels(to_hwc(face_image, check=False), base.shape[2])
    weight = warp_to_photo(_feathered(mask, face.shape[0], feather), aligned)[:, :, None]  # [H, W, 1]
    warped = warp_to_photo(face, aligned)
    blended = base * (1 - weight) + warped * weight
    return np.where(weight > 0, np.clip(np.rint(blended), 0, 255), base).astype(np.uint8)


def _warp(src: torch.Tensor, matrix: np.ndarray, height: int, width: int, padding: str) -> torch.Tensor:
    """Sample src [1, C, h, w] at matrix @ (u, v, 1) for every output pixel: [1, C, height, width].

    Shrinking by s source pixels per output pixel takes ceil(s) x ceil(s) bilinear samples per pixel and averages
    them (a box filter over the pixel's footprint); enlarging samples once, bicubic.
    """
    k = min(MAX_SUPERSAMPLE, max(1, math.ceil(math.sqrt(abs(np.linalg.det(matrix[:2, :2]))) - 1e-6)))
    fine = matrix @ np.array([[1 / k, 0, 0.5 / k - 0.5], [0, 1 / k, 0.5 / k - 0.5], [0, 0, 1]])
    grid = _sample_grid(fine, height * k, width * k, src.shape[3], src.shape[2])
    out = F.grid_sample(src, grid, mode="bilinear" if k > 1 else "bicubic", padding_mode=padding, align_corners=False)
    return F.avg_pool2d(out, k) if k > 1 else out


def _sample_grid(matrix: np.ndarray, height: int, width: int, src_w: int, src_h: int) -> torch.Tensor:
    """grid_sample's grid [1, height, width, 2]: matrix @ (u, v, 1) in the source's [-1, 1] coordinates."""
    xy = _pixel_positions(matrix, height, width)  # [height, width, 2]
    scale = torch.tensor([2 / src_w, 2 / src_h], dtype=torch.float64)
    return ((xy + 0.5) * scale - 1).float()[None]


def _pixel_positions(matrix: np.ndarray, height: int, width: int) -> torch.Tensor:
    """matrix @ (u, v, 1) for every output pixel: float64 [height, width, 2]."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    m = torch.from_numpy(np.asarray(matrix, dtype=np.float64))
    return torch.stack([m[0, 0] * u + m[0, 1] * v + m[0, 2], m[1, 0] * u + m[1, 1] * v + m[1, 2]], dim=-1)


def _fade_outside(out: torch.Tensor, matrix: np.ndarray, width: int, height: int) -> torch.Tensor:
    """Blend the mirrored pixels of out [1, C, R, R] into a blur, then towards the face's median colour, more the
    further their photo position lies outside the photo."""
    side = out.shape[-1]
    xy = _pixel_positions(matrix, side, side)
    beyond = torch.stack(
        [
            (-0.5 - xy[..., 0]).clamp(min=0) + (xy[..., 0] - width + 0.5).clamp(min=0),
            (-0.5 - xy[..., 1]).clamp(min=0) + (xy[..., 1] - height + 0.5).clamp(min=0),
        ],
        -1,
    )
    pixel_size = math.sqrt(abs(np.linalg.det(matrix[:2, :2])))
    dist = (beyond.norm(dim=-1) / pixel_size / side).float()  # [R, R], in output sides
    if not bool((dist > 0).any()):
        return out
    blur = _gaussian_blur(out, PAD_BLUR_SIGMA * side)
    out = torch.lerp(out, blur, (dist / PAD_BLUR_RAMP).clamp(max=1))
    median = out[..., dist == 0].median(dim=-1).values if bool((dist == 0).any()) else out.flatten(2).median(-1).values
    return torch.lerp(out, median[..., None, None].expand_as(out), (0.5 * dist / PAD_MEDIAN_RAMP).clamp(max=0.5))


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of img [N, C, H, W] with mirrored edges."""
    if sigma < 0.3:
        return img
    radius = max(1, min(math.ceil(3 * sigma), img.shape[-1] - 1, img.shape[-2] - 1))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=img.dtype) / sigma) ** 2)
    taps = (taps / taps.sum()).repeat(img.shape[1], 1, 1)[:, None]  # [C, 1, 1, taps]
    img = F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="reflect"), taps, groups=img.shape[1])
    return F.conv2d(F.pad(img, (0, 0, radius, radius), mode="reflect"), taps.transpose(2, 3), groups=img.shape[1])


def _feathered(mask: np.ndarray | None, side: int, feather: float) -> np.ndarray:
    """float32 [side, side]: the mask (default ones) blurred by feather*side/4, faded to 0 at the border."""
    m = np.ones((side, side), np.float32) if mask is None else _mask_at(mask, side)
    if feather <= 0:
        return m
    m = _gaussian_blur(torch.from_numpy(m)[None, None], feather * side / 4)[0, 0].numpy()
    edge = np.minimum(np.arange(side) + 0.5, side - 0.5 - np.arange(side)) / (feather * side)
    ramp = np.clip(edge, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return m * np.minimum(ramp[:, None], ramp[None, :])


def _mask_at(mask: np.ndarray, side: int) -> np.ndarray:
    """A mask [r, r] (float in [0, 1] or bool) resized to [side, side] float32."""
    m = torch.from_numpy(np.asarray(mask, dtype=np.float32))
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise FaceError(f"mask must be square [r, r], got shape {list(m.shape)}")
    if m.shape[0] != side:
        m = F.interpolate(m[None, None], size=(side, side), mode="bilinear", antialias=True)[0, 0]
    return m.clamp(0, 1).numpy()


def _match_channels(face: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [r, r, C'] -> [r, r, channels]: grey repeated to RGB, or RGB to grey (ITU-R 601 luma)."""
    if face.shape[2] == channels:
        return face
    if channels == 3:
        return np.repeat(face, 3, axis=2)
    luma = face.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]


def _resized(matrix: np.ndarray, resolution: int, side: int) -> np.ndarray:
    """The aligned->photo matrix for an aligned image of `side` pixels instead of `resolution`."""
    s = resolution / side
    return matrix @ np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1]])


def _square_box(matrix: np.ndarray, resolution: int, width: int, height: int, margin: int = 0):
    """Integer (left, top, right, bottom) of the photo pixels under the aligned square, widened by `margin` and
    clipped to the photo."""
    r = resolution
    corners = _apply(matrix, np.array([[-0.5, -0.5], [r - 0.5, -0.5], [-0.5, r - 0.5], [r - 0.5, r - 0.5]]))
    left, top = np.floor(corners.min(axis=0)).astype(int) - margin
    right, bottom = np.ceil(corners.max(axis=0)).astype(int) + 1 + margin
    return max(left, 0), max(top, 0), min(right, width), min(bottom, height)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:2, :2].T + matrix[:2, 2]


def check_resolution(resolution: int) -> None:
    """Raise FaceError unless `resolution` is a power of two from 4 to MAX_RESOLUTION."""
    if not isinstance(resolution, int) or not 4 <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1):
        raise FaceError(f"resolution must be a power of two from 4 to {MAX_RESOLUTION}, got {resolution}")
