"""Aligning photo files into a folder of PNGs: the library side of `stylegan align`."""

from __future__ import annotations

from pathlib import Path

import torch

from stylegan.faces.align import align_faces
from stylegan.faces.detect import DETECTORS
from stylegan.faces.models import FaceError
from stylegan.faces.photo import load_photo


class OutputExistsError(FaceError):
    """An output file exists and overwriting was not asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists")
        self.path = path


def face_paths(stem: Path, count: int) -> list[Path]:
    """Output files of a photo's faces, largest first: STEM.png, then STEM_1.png, STEM_2.png, ..."""
    return [stem.with_name(f"{stem.name}{f'_{i}' if i else ''}.png") for i in range(count)]


def align_file(
    photo: str | Path,
    stem: Path,
    *,
    resolution: int = 256,
    largest: bool = False,
    overwrite: bool = False,
    detector: str = DETECTORS[0],
) -> list[Path]:
    """Align the faces of one photo file and write them as PNGs named after `stem` (see face_paths).

    Real photos are not generated: the PNGs carry no provenance mark and no AI-generated declaration. Each file is
    written atomically. Raises PhotoError (unreadable, tiny, huge), NoFaceError, or OutputExistsError (without
    `overwrite`, before anything of this photo is written).
    """
    from stylegan.images import save_png

    if not overwrite and face_paths(stem, 1)[0].exists():
        raise OutputExistsError(face_paths(stem, 1)[0])
    faces = align_faces(load_photo(photo), resolution=resolution, largest=largest, detector=detector)
    paths = face_paths(stem, len(faces))
    taken = [p for p in paths if p.exists()]
    if taken and not overwrite:
        raise OutputExistsError(taken[0])
    for aligned, path in zip(faces, paths, strict=True):
        save_png(torch.from_numpy(aligned.image).permute(2, 0, 1), path, generated=False)
    return paths
