"""Putting a new face into a photo: a landmark mask, colour matching and alpha or Poisson blending.

Everything here works in photo space on numpy arrays: photos uint8 [H, W, C] (C = 1 or 3, as stylegan.faces hands
them around), faces already warped into the photo as float [H, W, C'] in 0..255, masks float32 [H, W] in [0, 1].
The one promise every function keeps: photo pixels where the mask is 0 come back bit-identical.

- Mask (`face_mask`): the convex hull of the five landmarks, the estimated mouth and the ellipse inscribed in the
  detector's box, shrunk by `erode` and faded to 0 over `feather` (both fractions of the face's size). The
  polygon's signed distance is exact inside a convex polygon (the largest of the edge distances), so the shrinking
  and the soft edge come from one formula and the mask is exactly 0 outside the shrunk hull.
- Colour (`match_colour`): the new face's mean and standard deviation per channel are set to the photo's within the
  mask, in YCbCr (ITU-R BT.601, full range). A grey face in a colour photo replaces only the luma Y; the photo's
  chroma stays, so skin tone and the light's colour are the photo's.
- Poisson (`poisson_blend`): inside the mask's support the result f solves the screened Poisson equation
  (eps - Laplacian) f = eps g - Laplacian g with f = photo on the support's border (Pérez et al. 2003, "Poisson
  image editing", with a screening term eps that keeps f near the colour-matched face g); a conjugate-gradient solve
  on the 5-point Laplacian, numpy only.
"""

from __future__ import annotations

import numpy as np

from stylegan.faces import Face

BLENDS = ("alpha", "poisson")
ELLIPSE_POINTS = 24
BOX_SHRINK = 0.9  # the inscribed ellipse uses this fraction of the box: dlib's boxes reach a little past the cheeks
# YCbCr (BT.601 full range, as JPEG): rows give Y, Cb - 128, Cr - 128 from R, G, B.
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC)


# ----------------------------------------------------------------------------------------------------------------
# The mask.


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull [K, 2] of points [N, 2], counter-clockwise in (x right, y down) pixel coordinates seen as maths
    axes (monotone chain: lower and upper chains of the x-sorted points)."""
    pts = sorted(map(tuple, np.asarray(points, dtype=np.float64)))
    if len(pts) < 3:
        return np.array(pts)

    def chain(seq):
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and _cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(chain(pts) + chain(reversed(pts)))


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def face_polygon(face: Face) -> np.ndarray:
    """The face region [K, 2] (photo pixels): hull of the landmarks, the mouth and an ellipse of the box's size.

    The ellipse is centred halfway between the eyes' midpoint and the mouth rather than on the box: detectors
    place their boxes on a coarse grid (dlib's HOG: steps of several pixels), the landmarks are sub-pixel, so the
    mask follows a moving face smoothly.
    """
    left, top, right, bottom = face.box
    angle = np.linspace(0, 2 * np.pi, ELLIPSE_POINTS, endpoint=False)
    centre = ((face.eye_left + face.eye_right) / 2 + face.mouth) / 2
    radii = BOX_SHRINK * np.array([right - left, bottom - top]) / 2
    ellipse = centre + radii * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return convex_hull(np.concatenate([ellipse, face.landmarks, face.mouth[None]]))


def face_size(face: Face) -> float:
    """The length the mask's erosion and feather are fractions of: sqrt of the box's area, in pixels."""
    return float(np.sqrt(max(face.area, 1.0)))


def polygon_depth(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 [H, W]: how far each pixel centre lies inside the convex polygon [K, 2] (negative outside).

    Inside a convex polygon the distance to the border is the smallest distance to the edges' lines; outside, the
    same formula gives minus the distance to the nearest edge line, a lower bound of the true one (enough: only
    pixels inside are kept).
    """
    poly = polygon if _area(polygon) > 0 else polygon[::-1]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    depth = np.full((height, width), np.inf)
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        edge = b - a
        length = np.hypot(*edge)
        if length == 0:
            continue
        # positive on the inner side of a counter-clockwise edge
        depth = np.minimum(depth, (edge[0] * (ys - a[1]) - edge[1] * (xs - a[0])) / length)
    return depth.astype(np.float32)


def _area(poly: np.ndarray) -> float:
    return 0.5 * float(np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1]))


def face_mask(face: Face, height: int, width: int, *, erode: float = 0.05, feather: float = 0.12) -> np.ndarray:
    """float32 [H, W] in [0, 1]: 1 deep inside the face, 0 outside the hull shrunk by erode * size, a smoothstep
    over feather * size in between (size: face_size)."""
    size = face_size(face)
    ramp = (polygon_depth(face_polygon(face), height, width) - erode * size) / max(feather * size, 1e-6)
    ramp = np.clip(ramp, 0, 1)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)


def mask_centre(mask: np.ndarray) -> np.ndarray:
    """The mask's centre of mass (x, y) [2] in pixels."""
    total = float(mask.sum())
    if total <= 0:
        return np.full(2, np.nan)
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    return np.array([(xs * mask).sum() / total, (ys * mask).sum() / total])


# ----------------------------------------------------------------------------------------------------------------
# Colour.


def to_ycc(rgb: np.ndarray) -> np.ndarray:
    """float [..., 3] RGB -> YCbCr with Cb, Cr centred on 0 (float64)."""
    return np.asarray(rgb, dtype=np.float64) @ _RGB_TO_YCC.T


def from_ycc(ycc: np.ndarray) -> np.ndarray:
    """Inverse of to_ycc."""
    return np.asarray(ycc, dtype=np.float64) @ _YCC_TO_RGB.T


def match_colour(face: np.ndarray, photo: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """face float [H, W, K] shifted and scaled per channel so that its weighted mean and standard deviation equal
    the photo's [H, W, K] (weights: weight [H, W]). Channels of constant face are only shifted."""
    w = weight[..., None].astype(np.float64)
    total = w.sum()
    if total <= 0:
        return face
    mean_f, mean_p = (face * w).sum((0, 1)) / total, (photo * w).sum((0, 1)) / total
    std_f = np.sqrt(((face - mean_f) ** 2 * w).sum((0, 1)) / total)
    std_p = np.sqrt(((photo - mean_p) ** 2 * w).sum((0, 1)) / total)
    scale = np.where(std_f > 1e-6, std_p / np.maximum(std_f, 1e-6), 1.0)
    return (face - mean_f) * scale + mean_p


# ----------------------------------------------------------------------------------------------------------------
# Poisson.


def _neighbour_sum(x: np.ndarray) -> np.ndarray:
    """Sum of the 4 neighbours of every pixel of x [h, w, K], zero beyond the edges."""
    out = np.zeros_like(x)
    out[1:] += x[:-1]
    out[:-1] += x[1:]
    out[:, 1:] += x[:, :-1]
    out[:, :-1] += x[:, 1:]
    return out


def poisson_blend(
    guide: np.ndarray,
    base: np.ndarray,
    region: np.ndarray,
    *,
    screen: float = 0.05,
    iters: int = 400,
    tol: float = 1e-4,
) -> np.ndarray:
    """Solve the screened Poisson equation inside `region`; outside it the result is `base`.

    Args:
        guide: float [H, W, K], the image whose gradients (and, weighted by screen, values) f should follow.
        base: float [H, W, K], the boundary values: f = base outside the region.
        region: bool [H, W], the unknown pixels.
        screen: eps of (eps - Laplacian) f = eps g - Laplacian g; 0 is classic Poisson cloning.
        iters, tol: conjugate-gradient limits (relative residual).

    Returns:
        float [H, W, K]. Neighbours beyond the image's edge are left out of the Laplacian (a free border).
    """
    rows, cols = np.nonzero(region)
    if rows.size == 0:
        return base.copy()
    top, bot, lef, rig = max(rows.min() - 1, 0), rows.max() + 2, max(cols.min() - 1, 0), cols.max() + 2
    g, b, inside = guide[top:bot, lef:rig], base[top:bot, lef:rig], region[top:bot, lef:rig, None]
    count = _neighbour_sum(np.ones_like(g[..., :1]))  # neighbours that exist, [h, w, 1]
    rhs = (screen + count) * g - _neighbour_sum(g) + _neighbour_sum(np.where(inside, 0.0, b))

    def apply(x):  # the operator on the unknowns; x is zero outside the region
        return np.where(inside, (screen + count) * x - _neighbour_sum(x), 0.0)

    x = _conjugate_gradient(apply, np.where(inside, rhs, 0.0), np.where(inside, g, 0.0), iters, tol)
    out = base.copy()
    out[top:bot, lef:rig] = np.where(inside, x, b)
    return out


def _conjugate_gradient(apply, rhs: np.ndarray, x: np.ndarray, iters: int, tol: float) -> np.ndarray:
    """Solve apply(x) = rhs for a symmetric positive definite operator, starting at x; each channel on its own."""
    axes = (0, 1)
    r = rhs - apply(x)
    p = r.copy()
    rr = (r * r).sum(axes)
    stop = (tol**2) * np.maximum((rhs * rhs).sum(axes), 1e-12)
    for _ in range(iters):
        if np.all(rr <= stop):
            break
        ap = apply(p)
        alpha = rr / np.maximum((p * ap).sum(axes), 1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(axes)
        p = r + (rr_new / np.maximum(rr, 1e-30)) * p
        rr = rr_new
    return x


# ----------------------------------------------------------------------------------------------------------------
# Compositing.


def composite(
    photo: np.ndarray, face: np.ndarray, weight: np.ndarray, *, blend: str = "alpha", colour: bool = True
) -> np.ndarray:
    """Put a photo-space face into the photo.

    Args:
        photo: uint8 [H, W, C], C = 1 or 3.
        face: float [H, W, C'] in 0..255 (C' = 1 or 3), the new face warped into the photo.
        weight: float [H, W] in [0, 1]; 0 keeps the photo's pixel exactly.
        blend: 'alpha' (photo * (1 - weight) + face * weight) or 'poisson' (the screened Poisson solution on the
            weight's support, then the same alpha ramp towards it).
        colour: match the face's mean and std to the photo's within the mask first.

    Returns:
        uint8 [H, W, C]: the photo's own pixels wherever weight is 0.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    base, new, replaced = _working_channels(photo, face)
    if colour:
        new = match_colour(new, base[..., :replaced], weight)
    mixed = base.copy()
    if blend == "poisson":
        new = poisson_blend(new, base[..., :replaced], weight > 0)
    w = weight[..., None].astype(np.float64)
    mixed[..., :replaced] = base[..., :replaced] * (1 - w) + new * w
    out = np.clip(np.rint(from_ycc(mixed) if photo.shape[2] == 3 else mixed), 0, 255).astype(np.uint8)
    return np.where(weight[..., None] > 0, out, photo)


def _working_channels(photo: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(photo float [H, W, C] in the blending space, the face's channels there [H, W, k], k): YCbCr for colour
    photos, where a grey face replaces only Y (k = 1); grey photos take a colour face's luma."""
    face = np.asarray(face, dtype=np.float64)
    if photo.shape[2] == 1:
        luma = to_ycc(face)[..., :1] if face.shape[2] == 3 else face
        return photo.astype(np.float64), luma, 1
    base = to_ycc(photo.astype(np.float64))
    if face.shape[2] == 1:
        return base, face, 1
    return base, to_ycc(face), 3
