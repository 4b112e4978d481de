"""Faces in real photos: detection, 5-point landmarks, FFHQ-style alignment (invertible) and an identity embedding.

Needs the `faces` extra (dlib and Davis King's CC0 models): pip install "stylegan[faces]". Photos are uint8 numpy
arrays [H, W, C] (C = 1 or 3); PIL images and torch tensors [C, H, W] are accepted too.

    photo = load_photo("group.jpg")
    for aligned in align_faces(photo, resolution=256):
        ...  # aligned.image [256, 256, 3]; aligned.matrix maps it back into the photo
    result = paste_back(photo, new_face, aligned, face_mask(aligned))
"""

from stylegan.faces.align import (
    AlignedFace,
    NoFaceError,
    align_face,
    align_faces,
    alignment_matrix,
    face_mask,
    paste_back,
    warp_to_photo,
)
from stylegan.faces.detect import MOUTH_RATIO, Face, detect_faces
from stylegan.faces.identity import SAME_PERSON_DISTANCE, identity_distance, identity_embedding
from stylegan.faces.models import INSTALL_HINT, FaceError, FacesUnavailableError, require_faces
from stylegan.faces.photo import PhotoError, load_photo, to_hwc

__all__ = [
    "INSTALL_HINT",
    "MOUTH_RATIO",
    "SAME_PERSON_DISTANCE",
    "AlignedFace",
    "Face",
    "FaceError",
    "FacesUnavailableError",
    "NoFaceError",
    "PhotoError",
    "align_face",
    "align_faces",
    "alignment_matrix",
    "detect_faces",
    "face_mask",
    "identity_distance",
    "identity_embedding",
    "load_photo",
    "paste_back",
    "require_faces",
    "to_hwc",
    "warp_to_photo",
]
