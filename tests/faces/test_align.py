"""Alignment: the FFHQ square from landmarks, the resampling, consistency on composites, and pasting back."""

import numpy as np
import pytest
from composites import Placement, composite, photo_mask, photo_positions, psnr

from stylegan.faces import (
    AlignedFace,
    Face,
    FaceError,
    NoFaceError,
    align_face,
    align_faces,
    alignment_matrix,
    detect_faces,
    face_mask,
    paste_back,
    warp_to_photo,
)


def frontal_face() -> Face:
    """Eyes at (40, 50) and (60, 50) (corners 4 px either side), nose base at (50, 62): an upright face."""
    marks = np.array([[64, 50], [56, 50], [36, 50], [44, 50], [50, 62]], dtype=np.float64)
    return Face(box=(30, 30, 70, 80), score=1.0, landmarks=marks)


def test_square_of_an_upright_face_follows_the_ffhq_formulas():
    # By hand: eye midpoint (50, 50); mouth = (50, 50 + 1.5 * 12) = (50, 68); eye_to_eye 20, eye_to_mouth 18;
    # half side max(2 * 20, 1.8 * 18) = 40; centre (50, 50 + 0.1 * 18) = (50, 51.8): the square spans
    # x in [10, 90], y in [11.8, 91.8], and output edges -0.5 and R - 0.5 land on it.
    m = alignment_matrix(frontal_face(), 8)
    corners = np.array([[-0.5, -0.5, 1], [7.5, -0.5, 1], [-0.5, 7.5, 1], [7.5, 7.5, 1]]) @ m.T
    np.testing.assert_allclose(corners[:, :2], [[10, 11.8], [90, 11.8], [10, 91.8], [90, 91.8]], atol=1e-9)


def test_square_turns_with_the_face():
    face = frontal_face()
    centre = np.array([50.0, 50.0])
    t = np.deg2rad(30)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    turned = Face(face.box, 1.0, (face.landmarks - centre) @ rot.T + centre)
    expected = np.vstack([np.hstack([rot, (centre - rot @ centre)[:, None]]), [0, 0, 1]]) @ alignment_matrix(face, 16)
    np.testing.assert_allclose(alignment_matrix(turned, 16), expected, atol=1e-9)


@pytest.mark.parametrize("resolution", [16, 64])
def test_resample_reproduces_a_linear_ramp(resolution):
    # A photo whose value is linear in position: inside the photo, every aligned pixel must hold the value at the
    # photo position its matrix names (bilinear + box average reproduce linear functions exactly).
    y, x = np.mgrid[0:200, 0:200]
    ramp = (0.4 * x + 0.6 * y + 20).astype(np.float64)
    photo = np.rint(ramp).astype(np.uint8)[:, :, None]
    face = Face((60, 60, 140, 140), 1.0, np.array([[124, 90], [112, 90], [76, 92], [88, 92], [100, 115]], float))
    out = align_face(photo, face, resolution=resolution)
    v, u = np.mgrid[0:resolution, 0:resolution]
    pos = np.stack([u, v, np.ones_like(u)], -1) @ out.matrix.T
    inside = (pos[..., 0] > 3) & (pos[..., 0] < 196) & (pos[..., 1] > 3) & (pos[..., 1] < 196)
    expected = 0.4 * pos[..., 0] + 0.6 * pos[..., 1] + 20
    assert inside.mean() > 0.5
    assert np.abs(out.image[..., 0][inside] - expected[inside]).max() <= 1.0


def test_same_face_in_different_canvases_aligns_to_the_same_crop(att_photos):
    # The oracle is the known paste transform: PSNR only over aligned pixels that come from the photo in both
    # (the rest is each canvas's own random background), and the drift of the photo position behind each pixel.
    rng = np.random.default_rng(12)
    for name in ("s1/1", "s3/2"):
        photo = att_photos[name]
        canvas = (3 * photo.shape[0], 3 * photo.shape[1])
        ref_place = Placement((canvas[1] / 2, canvas[0] / 2), 1.0, 0.0)
        ref = align_faces(composite(photo, ref_place, canvas, seed=1), resolution=64, largest=True)[0]
        side = 2 * np.hypot(*ref.matrix[:2, 0]) * 64 / 2  # the square's side in photo pixels
        for scale, angle in [(0.5, -20), (0.75, 20), (1.0, 10)]:
            place = Placement((rng.uniform(0.35, 0.65) * canvas[1], rng.uniform(0.35, 0.65) * canvas[0]), scale, angle)
            out = align_faces(composite(photo, place, canvas, seed=2), resolution=64, largest=True)[0]
            both = photo_mask(out.matrix, place, photo.shape, 64) & photo_mask(ref.matrix, ref_place, photo.shape, 64)
            drift = np.linalg.norm(
                photo_positions(out.matrix, place, photo.shape, 64)
                - photo_positions(ref.matrix, ref_place, photo.shape, 64),
                axis=-1,
            )
            assert both.mean() > 0.4
            assert psnr(out.image[..., 0], ref.image[..., 0], both) >= 25, (name, scale, angle)  # issue: 20
            assert drift.mean() * 64 / side < 1.0, (name, scale, angle)  # in aligned pixels


def test_detection_rate_on_composites(att_photos):
    rng = np.random.default_rng(7)
    found = 0
    for i, photo in enumerate((list(att_photos.values()) * 2)[:20]):
        canvas = (3 * photo.shape[0], 3 * photo.shape[1])
        place = Placement(
            (rng.uniform(0.3, 0.7) * canvas[1], rng.uniform(0.3, 0.7) * canvas[0]),
            rng.uniform(0.5, 1.0),
            rng.uniform(-20, 20),
        )
        faces = detect_faces(composite(photo, place, canvas, seed=i), detector="hog")
        centre = np.array(place.centre)
        found += any(np.hypot(*((np.array(f.box[:2]) + f.box[2:]) / 2 - centre)) < 40 * place.scale for f in faces)
    assert found >= 19  # of 20: >= 95 %


def test_paste_back_restores_the_photo_inside_and_leaves_the_outside(att_photos):
    photo = np.repeat(att_photos["s2/1"][:, :, None], 3, axis=2)
    canvas = np.zeros((300, 260, 3), np.uint8) + 90
    canvas[90:202, 80:172] = photo
    aligned = align_faces(canvas, resolution=128, largest=True)[0]
    mask = np.zeros((128, 128), np.float32)
    mask[32:96, 32:96] = 1
    back = paste_back(canvas, aligned.image, aligned, mask, feather=0.05)
    outside = warp_to_photo(np.ones((128, 128)), aligned) == 0
    assert outside.mean() > 0.3 and np.array_equal(back[outside], canvas[outside])  # untouched outside the square
    core = warp_to_photo(mask, aligned) > 0.99
    assert core.sum() > 1000
    assert psnr(back, canvas, core) >= 30  # align + warp back reproduces the photo


def test_paste_back_converts_a_grey_face_into_a_colour_photo(att_photos):
    canvas = np.zeros((300, 260, 3), np.uint8) + 90
    canvas[90:202, 80:172] = att_photos["s4/2"][:, :, None]
    aligned = align_faces(canvas, resolution=64, largest=True)[0]
    back = paste_back(canvas, np.full((64, 64, 1), 200, np.uint8), aligned)
    assert back.shape == canvas.shape and back.dtype == np.uint8
    centre = aligned.to_photo(np.array([[31.5, 31.5]]))[0].round().astype(int)
    assert tuple(back[centre[1], centre[0]]) == (200, 200, 200)


def test_points_round_trip(att_photos):
    aligned = align_faces(att_photos["s1/2"], resolution=32)[0]
    assert isinstance(aligned, AlignedFace) and aligned.image.shape == (32, 32, 1)
    pts = aligned.face.landmarks
    np.testing.assert_allclose(aligned.to_photo(aligned.to_aligned(pts)), pts, atol=1e-9)
    eyes = aligned.to_aligned(np.stack([aligned.face.eye_left, aligned.face.eye_right]))
    assert abs(eyes[0, 1] - eyes[1, 1]) < 2 and eyes[0, 0] < 16 < eyes[1, 0]  # level, either side of the middle


def test_noise_has_no_face():
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError, match="no face found"):
        align_faces(noise, resolution=64)


@pytest.mark.parametrize("resolution", [0, 3, 48, 8192])
def test_resolution_must_be_a_power_of_two(att_photos, resolution):
    with pytest.raises(FaceError, match="power of two"):
        align_faces(att_photos["s1/1"], resolution=resolution)


def test_face_mask_covers_the_landmarks_and_not_the_corners(att_photos):
    aligned = align_faces(att_photos["s4/1"], resolution=64)[0]
    mask = face_mask(aligned)
    assert mask.shape == (64, 64) and mask.dtype == np.float32
    for x, y in aligned.to_aligned(np.vstack([aligned.face.landmarks, aligned.face.mouth])):
        assert mask[round(y), round(x)] == 1
    assert mask[[0, 0, 63, 63], [0, 63, 0, 63]].sum() == 0
    assert 0.1 < mask.mean() < 0.5
    assert face_mask(aligned, 256).shape == (256, 256)
