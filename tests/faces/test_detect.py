"""Detection, landmarks, photo checks and the missing-extra error."""

import importlib.util
import io

import numpy as np
import PIL.Image
import pytest

from stylegan.faces import (
    INSTALL_HINT,
    FacesUnavailableError,
    PhotoError,
    detect_faces,
    load_photo,
    require_faces,
)
from stylegan.faces import models as face_models


def test_every_fixture_face_is_found_with_sane_landmarks(att_photos):
    for name, photo in att_photos.items():
        faces = detect_faces(photo, detector="hog")
        assert len(faces) == 1, name
        face = faces[0]
        left, top, right, bottom = face.box
        assert face.score > 0 and right - left > 40
        # image-left eye left of image-right eye, both above the nose, the mouth estimate below it
        assert face.eye_left[0] < face.nose[0] < face.eye_right[0], name
        assert max(face.eye_left[1], face.eye_right[1]) < face.nose[1] < face.mouth[1] < photo.shape[0], name


def test_faces_come_largest_first(att_photos):
    small = np.asarray(PIL.Image.fromarray(att_photos["s1/1"]).resize((60, 73), PIL.Image.Resampling.LANCZOS))
    canvas = np.full((160, 260), 128, np.uint8)
    canvas[40:152, 10:102] = att_photos["s2/1"]
    canvas[60:133, 160:220] = small
    faces = detect_faces(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area and faces[0].box[0] < 100 < faces[1].box[0]


def test_no_face_in_noise():
    noise = np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    assert detect_faces(noise) == []  # HOG, then the CNN: neither sees a face


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("L", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_photos_are_refused_in_one_line(tmp_path):
    (tmp_path / "text.jpg").write_text("not a picture")
    (tmp_path / "tiny.png").write_bytes(_png(10, 10))
    for name, message in [("text.jpg", "not an image"), ("tiny.png", "10x10: too small")]:
        with pytest.raises(PhotoError, match=message) as err:
            load_photo(tmp_path / name)
        assert "\n" not in str(err.value)


def test_huge_photo_is_refused_before_its_pixels_are_decoded(tmp_path):
    # A 30,000-pixel-wide PNG header followed by garbage: decoding would fail differently; the size check wins.
    data = bytearray(_png(30000, 40))
    data[60:] = b"\x00" * (len(data) - 60)
    (tmp_path / "wide.png").write_bytes(bytes(data))
    with pytest.raises(PhotoError, match="30000x40: too large"):
        load_photo(tmp_path / "wide.png")


def test_arrays_of_the_wrong_kind_are_refused():
    with pytest.raises(PhotoError, match="uint8"):
        detect_faces(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(PhotoError, match="too small"):
        detect_faces(np.zeros((16, 64), np.uint8))


def test_unknown_detector(att_photos):
    with pytest.raises(face_models.FaceError, match="hog"):
        detect_faces(att_photos["s1/1"], detector="haar")


def test_missing_models_name_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "face_recognition_models" else real(name, *a)
    )
    with pytest.raises(FacesUnavailableError) as err:
        require_faces()
    assert INSTALL_HINT in str(err.value) and "\n" not in str(err.value)


def test_68_point_model_is_never_used():
    # The 68-landmark model is trained on iBUG 300-W data (non-commercial): no code path may name its file.
    from pathlib import Path

    import stylegan.faces as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        assert "68_face" not in path.read_text(), path
