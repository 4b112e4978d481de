"""The models shipped in the package load by name, and the faces model makes faces: dlib's detector (an independent
oracle) finds one in most samples."""

from __future__ import annotations

import pytest
import torch

from stylegan.io import load_generator
from stylegan.io.loader import BUILTIN_MODELS, builtin_model_path


@pytest.mark.parametrize("name, resolution, channels", [("default", 32, 1), ("faces", 64, 1)])
def test_builtin_models_load_by_name(name, resolution, channels):
    assert builtin_model_path(name) is not None, f"{BUILTIN_MODELS[name]} is missing from stylegan/assets"
    G = load_generator(name)
    assert (G.img_resolution, G.img_channels) == (resolution, channels)


def test_a_local_file_wins_over_a_builtin_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faces").write_bytes(b"not a model")
    with pytest.raises(Exception, match="faces"):
        load_generator("faces")


def test_faces_model_makes_faces():
    from ci_skip import skip_or_fail

    try:
        from stylegan.faces import detect_faces, require_faces

        require_faces()
    except Exception as err:  # noqa: BLE001 - the extra is missing
        skip_or_fail(f"faces extra not installed: {err}")
    from stylegan.editing.generate import generate_images

    G = load_generator("faces")
    images = generate_images(G, list(range(16)), truncation_psi=0.7, noise_mode="const")
    big = torch.nn.functional.interpolate(images.float(), scale_factor=4, mode="bicubic", align_corners=False)
    found = sum(len(detect_faces(img.clamp(0, 255).to(torch.uint8), detector="hog")) > 0 for img in big)
    assert found >= 12, f"dlib found a face in only {found} of 16 samples"
