"""The `faces` extra: dlib and Davis King's CC0 model files from `face-recognition-models`, loaded once per process.

The files used are shape_predictor_5_face_landmarks.dat (5 landmarks), dlib_face_recognition_resnet_model_v1.dat
(128-d identity embedding) and mmod_human_face_detector.dat (optional CNN detector), all CC0. The package also holds
a 68-landmark model trained on iBUG 300-W data, whose licence excludes commercial use: it is never loaded here.
"""

from __future__ import annotations

import functools
import importlib.util
import os

INSTALL_HINT = 'pip install "stylegan[faces]"'
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
IDENTITY_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"


class FaceError(ValueError):
    """A face cannot be found, aligned or measured in the input as given."""


class FacesUnavailableError(FaceError):
    """dlib or the face model files are not installed."""


def models_dir() -> str:
    """Folder holding the model files of `face-recognition-models`, found without importing the package.

    The package's own __init__ imports pkg_resources, which recent setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacesUnavailableError(f"the face models are not installed: {INSTALL_HINT}")
    return os.path.join(list(spec.submodule_search_locations)[0], "models")


def model_path(name: str) -> str:
    """Path of one CC0 model file; raises FacesUnavailableError when it is missing."""
    path = os.path.join(models_dir(), name)
    if not os.path.isfile(path):
        raise FacesUnavailableError(f"face model file {name} is missing: {INSTALL_HINT}")
    return path


def dlib_module():
    """The dlib module, or FacesUnavailableError naming the extra to install."""
    try:
        import dlib
    except ImportError:
        raise FacesUnavailableError(f"face detection needs dlib: {INSTALL_HINT}") from None
    return dlib


def require_faces() -> None:
    """Raise FacesUnavailableError (one line) unless dlib and the models that detection and alignment need exist.

    Commands call this before doing any work.
    """
    dlib_module()
    model_path(LANDMARKS_FILE)


@functools.cache
def hog_detector():
    """dlib's built-in HOG + linear SVM frontal face detector (no weights file)."""
    return dlib_module().get_frontal_face_detector()


@functools.cache
def cnn_detector():
    """dlib's MMOD CNN face detector (slower: ~0.5 s per image on a CPU; finds more turned faces)."""
    return dlib_module().cnn_face_detection_model_v1(model_path(CNN_DETECTOR_FILE))


@functools.cache
def landmark_predictor():
    """dlib's 5-point shape predictor: two corners of each eye and the base of the nose."""
    return dlib_module().shape_predictor(model_path(LANDMARKS_FILE))


@functools.cache
def identity_model():
    """dlib's ResNet face-recognition model: a 128-d embedding per face."""
    return dlib_module().face_recognition_model_v1(model_path(IDENTITY_FILE))
