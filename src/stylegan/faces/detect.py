"""Face detection and 5-point landmarks with dlib, and the eye and mouth positions alignment needs.

dlib's 5-point model marks the two corners of each eye and the base of the nose. FFHQ's alignment also needs the
mouth centre, which this model does not mark: `Face.mouth` estimates it on the line from the midpoint of the eyes
through the base of the nose, MOUTH_RATIO times as far (see docs/faces.md for the proportions behind it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import PIL.Image

from stylegan.faces import models
from stylegan.faces.photo import to_hwc

# Distance eye line -> mouth corners over eye line -> nose base (subnasale), from adult anthropometric means
# (Farkas 1994): nasal height n-sn ~ 52 mm less ~ 9 mm from nasion down to the eye corners, gives ~ 43 mm to the
# subnasale; the upper lip sn-sto adds ~ 21 mm to the mouth line: 64 / 43 ~ 1.5.
MOUTH_RATIO = 1.5
# Longer side of the image each detector scans (larger photos are scanned shrunk): HOG ~1 s at 1024 px with one
# doubling; the CNN ~2 s at 512 px.
SCAN_SIDE = {"hog": 1024, "cnn": 512}
LANDMARK_SIDE = 200  # faces narrower than this (pixels) get their landmarks predicted on an enlarged crop
BORDER = 0.25  # edge-replicated border added before detection, as a fraction of the shorter side
DETECTORS = ("hog+cnn", "hog", "cnn")


@dataclass(frozen=True)
class Face:
    """One detected face in photo coordinates (x, y in pixels, pixel centres at integers).

    box: (left, top, right, bottom) of the detector's square; score: the detector's confidence (HOG: SVM margin,
    > 0; CNN: its confidence); landmarks: [5, 2] in dlib's order: the outer and inner corner of the eye on the
    image's right, the outer and inner corner of the eye on the image's left, the base of the nose.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        """Area of the box in pixels²."""
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])

    @property
    def eye_left(self) -> np.ndarray:
        """Centre [2] of the eye on the image's left (the person's right eye)."""
        return self.landmarks[2:4].mean(axis=0)

    @property
    def eye_right(self) -> np.ndarray:
        """Centre [2] of the eye on the image's right."""
        return self.landmarks[0:2].mean(axis=0)

    @property
    def nose(self) -> np.ndarray:
        """Base of the nose [2]."""
        return self.landmarks[4]

    @property
    def mouth(self) -> np.ndarray:
        """Estimated centre [2] of the mouth: MOUTH_RATIO times eye-midpoint -> nose base, from the eye midpoint."""
        eyes = (self.eye_left + self.eye_right) / 2
        return eyes + MOUTH_RATIO * (self.nose - eyes)


def detect_faces(image, *, detector: str = DETECTORS[0], upsample: int | None = None) -> list[Face]:
    """All faces in a photo, largest first, each with its box, score and 5 landmarks.

    Args:
        image: uint8 [H, W, C] (C = 1 or 3), a PIL image, or a torch uint8 tensor [C, H, W].
        detector: 'hog' (dlib's built-in frontal detector, fast), 'cnn' (dlib's MMOD model, ~0.5-2 s per image
            on a CPU, finds more turned and smaller faces) or 'hog+cnn' (the default: the CNN only when HOG finds
            no face, so it costs time only on those photos).
        upsample: how many times the detector doubles the image; None picks 2 for images up to 512 px, else 1
            (HOG finds faces down to ~80 px / 2**upsample), and HOG tries one doubling fewer when that finds
            nothing; 0 for the CNN.

    Returns:
        A list of Face, empty when there is none.
    """
    if detector not in DETECTORS:
        raise models.FaceError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    arr = to_hwc(image)
    boxes = _scan(arr, "hog" if detector == "hog+cnn" else detector, upsample)
    if not boxes and detector == "hog+cnn":
        boxes = _scan(arr, "cnn", upsample)
    height, width = arr.shape[:2]
    inside = [b for b in boxes if 0 <= (b[0] + b[2]) / 2 < width and 0 <= (b[1] + b[3]) / 2 < height]
    faces = [Face(box=b[:4], score=b[4], landmarks=_landmarks(arr, b[:4])) for b in inside]
    return sorted(faces, key=lambda f: f.area, reverse=True)


def _scan(arr: np.ndarray, detector: str, upsample: int | None) -> list[tuple[float, ...]]:
    """Run one detector on the photo [H, W, C] shrunk to its scan size and bordered; (l, t, r, b, score) in photo
    pixels."""
    grey, scale = _detection_image(arr, SCAN_SIDE[detector])
    pad = round(BORDER * min(grey.shape))
    padded = np.pad(grey, pad, mode="edge")  # a border lets the detector window cover faces cut by the edge
    if detector == "cnn":  # the CNN finds faces from ~40 px without doubling (and doubling makes it 4x slower)
        dets = models.cnn_detector()(np.repeat(padded[:, :, None], 3, axis=2), upsample or 0)
        found = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), float(d.confidence)) for d in dets]
    elif upsample is not None:
        found = _hog(padded, upsample)
    else:  # a face can fall between the pyramid levels of one doubling count and be found with one fewer
        found = _hog(padded, 2 if max(grey.shape) <= 512 else 1) or _hog(padded, 1 if max(grey.shape) <= 512 else 0)
    return [(*((v - pad) / scale for v in box[:4]), box[4]) for box in found]


def _hog(grey: np.ndarray, upsample: int) -> list[tuple[float, ...]]:
    """dlib's HOG detector on grey [h, w]: (left, top, right, bottom, score) per face."""
    rects, scores, _ = models.hog_detector().run(grey, upsample, 0.0)
    return [(r.left(), r.top(), r.right(), r.bottom(), float(s)) for r, s in zip(rects, scores, strict=True)]


def _detection_image(arr: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """The photo as a detector scans it: uint8 grey [h, w] at most `side` long, and its scale from the photo."""
    grey = arr[:, :, 0] if arr.shape[2] == 1 else np.asarray(PIL.Image.fromarray(arr).convert("L"))
    scale = min(1.0, side / max(grey.shape))
    if scale < 1:
        size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
        grey = np.asarray(PIL.Image.fromarray(grey).resize(size, PIL.Image.Resampling.BOX))
    return np.ascontiguousarray(grey), scale


def _landmarks(arr: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 5 landmarks [5, 2] (float) inside `box`, predicted on the full-resolution photo.

    dlib returns whole pixels; a face narrower than LANDMARK_SIDE is predicted on an enlarged crop (bicubic, by a
    whole factor) so that the landmarks keep sub-pixel precision.
    """
    dlib = models.dlib_module()
    zoom = max(1, math.ceil(LANDMARK_SIDE / max(box[2] - box[0], 1)))
    margin = (box[2] - box[0]) / 2
    left, top = (max(0, math.floor(v - margin)) for v in box[:2])
    right, bottom = min(arr.shape[1], math.ceil(box[2] + margin)), min(arr.shape[0], math.ceil(box[3] + margin))
    crop = PIL.Image.fromarray(arr[top:bottom, left:right, 0] if arr.shape[2] == 1 else arr[top:bottom, left:right])
    crop = crop.resize((crop.width * zoom, crop.height * zoom), PIL.Image.Resampling.BICUBIC) if zoom > 1 else crop
    # a crop pixel X holds photo position left + (X + 0.5) / zoom - 0.5 (pixel centres at integers)
    origin = (left, top, left, top)
    rect = dlib.rectangle(*(round((v - o + 0.5) * zoom - 0.5) for v, o in zip(box, origin, strict=True)))
    shape = models.landmark_predictor()(np.ascontiguousarray(np.asarray(crop)), rect)
    parts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return (parts + 0.5) / zoom - 0.5 + np.array([left, top])


def dlib_shape(face: Face):
    """The face as a dlib full_object_detection (what dlib's face-recognition model takes)."""
    dlib = models.dlib_module()
    rect = dlib.rectangle(*(round(v) for v in face.box))
    return dlib.full_object_detection(rect, [dlib.point(round(x), round(y)) for x, y in face.landmarks])
