"""Face identity: dlib's ResNet face-recognition model (Davis King, CC0) maps a face to a 128-d vector.

Euclidean distance between two embeddings measures identity: dlib reports 99.38 % on the LFW benchmark with pairs
under SAME_PERSON_DISTANCE = 0.6 called the same person. Distances of different people are typically 0.7-1.0.
"""

from __future__ import annotations

import numpy as np

from stylegan.faces import models
from stylegan.faces.detect import Face, dlib_shape
from stylegan.faces.photo import to_hwc

SAME_PERSON_DISTANCE = 0.6


def identity_embedding(image, face: Face, *, jitter: int = 0) -> np.ndarray:
    """The 128-d identity embedding [128] (float64) of `face` in `image`.

    Args:
        image: the photo the face was detected in: uint8 [H, W, C], PIL or torch [C, H, W]; grey is fine.
        face: a Face from detect_faces on that photo.
        jitter: extra randomly jittered crops averaged in (dlib's num_jitters; 0 = one crop, deterministic).
    """
    arr = to_hwc(image)
    rgb = np.ascontiguousarray(np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr)
    vector = models.identity_model().compute_face_descriptor(rgb, dlib_shape(face), jitter)
    return np.asarray(vector, dtype=np.float64)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two embeddings; below SAME_PERSON_DISTANCE (0.6) dlib calls it the same person."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
