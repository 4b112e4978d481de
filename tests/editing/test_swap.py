"""Face swap on photos: the blending maths against independent oracles, and the pipeline on AT&T composites.

The pipeline tests use the small built-in `default` model with a few projection steps: they check the promises
that do not depend on the model's quality (target untouched outside the mask, face region changed, metadata, one-line
errors). Identity transfer with the faces model is measured by benchmarks/bench_swap.py.
"""

from __future__ import annotations

import math

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from stylegan.editing import blend as B

pytest.importorskip("dlib")
swap_clips = pytest.importorskip("tests.editing.swap_clips")
needs_att = pytest.mark.skipif(not swap_clips.att_available(), reason="AT&T faces not found")
FAST = dict(steps=3, plus_steps=2, tune_steps=3, w_avg_samples=200)


# ----------------------------------------------------------------------------------------------------------------
# Blending maths.


def test_convex_hull_matches_scipy():
    spatial = pytest.importorskip("scipy.spatial")
    pts = np.random.default_rng(0).normal(size=(60, 2)) * [30, 10]
    ours = B.convex_hull(pts)
    theirs = pts[spatial.ConvexHull(pts).vertices]
    assert sorted(map(tuple, ours.round(9))) == sorted(map(tuple, theirs.round(9)))


def test_polygon_depth_is_distance_to_square_border():
    square = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]])
    depth = B.polygon_depth(square, 40, 40)
    ys, xs = np.mgrid[0:40, 0:40]
    inside = (xs > 10) & (xs < 30) & (ys > 10) & (ys < 30)
    oracle = np.minimum.reduce([xs - 10, 30 - xs, ys - 10, 30 - ys])
    np.testing.assert_allclose(depth[inside], oracle[inside], atol=1e-5)
    assert (depth[~inside] <= 0).all()


def _face(box, eyes=((40, 40), (60, 40)), nose=(50, 55)):
    from stylegan.faces import Face

    (lx, ly), (rx, ry) = eyes
    marks = np.array([[rx + 6, ry], [rx - 6, ry], [lx - 6, ly], [lx + 6, ly], nose], dtype=np.float64)
    return Face(box=box, score=1.0, landmarks=marks)


def test_face_mask_is_zero_outside_eroded_hull_and_one_inside():
    face = _face((25.0, 25.0, 75.0, 85.0))
    mask = B.face_mask(face, 100, 100, erode=0.05, feather=0.1)
    depth = B.polygon_depth(B.face_polygon(face), 100, 100)
    size = B.face_size(face)
    assert (mask[depth <= 0.05 * size] == 0).all()
    assert (mask[depth >= 0.15 * size + 1e-3] == 1).all()
    assert mask[55, 50] == 1 and mask[0, 0] == 0


def test_match_colour_sets_weighted_mean_and_std():
    rng = np.random.default_rng(1)
    face, photo = rng.normal(100, 20, (30, 30, 3)), rng.normal(150, 5, (30, 30, 3))
    weight = rng.uniform(0, 1, (30, 30))
    out = B.match_colour(face, photo, weight)
    w = weight[..., None] / weight.sum()
    for a, b in ((out, photo),):
        mean_a, mean_b = (a * w).sum((0, 1)), (b * w).sum((0, 1))
        np.testing.assert_allclose(mean_a, mean_b, rtol=1e-9)
        np.testing.assert_allclose(((a - mean_a) ** 2 * w).sum((0, 1)), ((b - mean_b) ** 2 * w).sum((0, 1)), rtol=1e-9)


def test_poisson_matches_a_direct_sparse_solve():
    sparse = pytest.importorskip("scipy.sparse")
    linalg = pytest.importorskip("scipy.sparse.linalg")
    rng = np.random.default_rng(2)
    h, w, eps = 14, 16, 0.1
    guide, base = rng.uniform(0, 255, (h, w, 1)), rng.uniform(0, 255, (h, w, 1))
    region = np.zeros((h, w), bool)
    region[3:11, 4:13] = True
    region[0:5, 0:3] = True  # touching the image edge: neighbours beyond it are left out
    ours = B.poisson_blend(guide, base, region, screen=eps, iters=2000, tol=1e-12)[..., 0]
    # Oracle: assemble (eps + n_p) f_p - sum_{q in region} f_q = (eps + n_p) g_p - sum_q g_q + sum_{q not in region} b_q
    idx = -np.ones((h, w), int)
    idx[region] = np.arange(region.sum())
    rows, cols, vals, rhs = [], [], [], np.zeros(region.sum())
    for y, x in zip(*np.nonzero(region), strict=True):
        k = idx[y, x]
        steps = ((1, 0), (-1, 0), (0, 1), (0, -1))
        nbrs = [(y + dy, x + dx) for dy, dx in steps if 0 <= y + dy < h and 0 <= x + dx < w]
        rows.append(k), cols.append(k), vals.append(eps + len(nbrs))
        rhs[k] = (eps + len(nbrs)) * guide[y, x, 0]
        for q in nbrs:
            rhs[k] -= guide[q][0]
            if region[q]:
                rows.append(k), cols.append(idx[q]), vals.append(-1.0)
            else:
                rhs[k] += base[q][0]
    solution = linalg.spsolve(sparse.csr_matrix((vals, (rows, cols))), rhs)
    np.testing.assert_allclose(ours[region], solution, atol=1e-6)
    np.testing.assert_array_equal(ours[~region], base[~region, 0])


def test_composite_keeps_outside_exact_and_colour_photo_chroma():
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    face = rng.uniform(0, 255, (40, 50, 1))
    weight = np.zeros((40, 50), np.float32)
    weight[10:30, 15:35] = 1
    weight[8:10, 15:35] = 0.3
    for blend in B.BLENDS:
        out = B.composite(photo, face, weight, blend=blend)
        np.testing.assert_array_equal(out[weight == 0], photo[weight == 0])
        assert np.abs(out[weight == 1].astype(int) - photo[weight == 1]).mean() > 5
        chroma_in, chroma_out = B.to_ycc(photo)[..., 1:], B.to_ycc(out)[..., 1:]
        # a grey face replaces only the luma: chroma moves only by rounding and clipping to 0..255
        inside = (weight == 1) & (B.to_ycc(out)[..., 0] > 30) & (B.to_ycc(out)[..., 0] < 225)
        assert np.median(np.abs(chroma_out - chroma_in)[inside]) < 1.5


def test_bad_blend_and_settings_are_value_errors():
    from stylegan.editing.swap import SwapSettings

    with pytest.raises(ValueError, match="blend must be"):
        SwapSettings(blend="paste")
    with pytest.raises(ValueError, match="mode must be"):
        SwapSettings(mode="z")
    with pytest.raises(ValueError, match="feather"):
        SwapSettings(feather=2)


# ----------------------------------------------------------------------------------------------------------------
# The pipeline.


@pytest.fixture(scope="module")
def G():
    from stylegan.io import load_generator

    return load_generator("default", device="cpu")


@pytest.fixture(scope="module")
def pair():
    if not swap_clips.att_available():
        pytest.skip("AT&T faces not found")
    return swap_clips.composite(swap_clips.att_photo(39), seed=1), swap_clips.composite(swap_clips.att_photo(40))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@needs_att
@pytest.mark.parametrize("blend", ["alpha", "poisson"])
def test_swap_changes_face_only(G, pair, blend):
    from stylegan.editing.swap import SwapSettings, swap_faces

    source, target = pair
    result = swap_faces(G, source, target, SwapSettings(mode="pti", blend=blend, **FAST))
    outside = result.mask == 0
    assert result.image.shape == target.shape and result.image.dtype == np.uint8
    np.testing.assert_array_equal(result.image[outside], target[outside])
    assert psnr(result.image[outside], target[outside]) >= 45
    core = result.mask > 0.9
    assert core.sum() > 1000  # the face of a 92x112 photo
    assert np.abs(result.image[core].astype(int) - target[core]).mean() > 3
    # the mask sits on the target's face (its box is the detector's)
    box = result.target.aligned.face.box
    cx, cy = B.mask_centre(result.mask)
    assert box[0] < cx < box[2] and box[1] < cy < box[3]


@needs_att
def test_source_ws_rows_reach_the_face(G, pair):
    """Taking no layer from the source gives the target's own reconstruction; more layers change it more."""
    from stylegan.editing.swap import SwapSettings, swap_faces, swap_projected

    source, target = pair
    settings = SwapSettings(mode="w", **FAST)
    result = swap_faces(G, source, target, settings)
    mixed = result.face.astype(int)
    own = swap_projected(result.target, result.target, target, settings).face.astype(int)
    assert not np.array_equal(mixed, own)
    from stylegan.editing.swap import mix_ws

    ws = mix_ws(result.source.ws, result.target.ws, (0, 1))
    np.testing.assert_array_equal(ws[:, :2], result.source.ws[:, :2])
    np.testing.assert_array_equal(ws[:, 2:], result.target.ws[:, 2:])


@needs_att
def test_no_face_in_source_is_one_clear_error(G, pair):
    from stylegan.editing.swap import swap_faces
    from stylegan.faces import NoFaceError

    blank = swap_clips.background(120, 120)
    with pytest.raises(NoFaceError, match="no face found in the source"):
        swap_faces(G, blank, pair[1])


# ----------------------------------------------------------------------------------------------------------------
# The command.


def _cli(args):
    from stylegan.cli.main import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


@needs_att
def test_cli_writes_marked_png_with_swap_metadata(tmp_path, pair):
    from stylegan.forensics.metadata import says_generated

    source, target = pair
    PIL.Image.fromarray(source).save(tmp_path / "a.png")
    PIL.Image.fromarray(target).save(tmp_path / "b.jpg", quality=95)
    out = tmp_path / "c.png"
    args = swap_clips.swap_args(
        tmp_path / "a.png",
        tmp_path / "b.jpg",
        out,
        "--steps",
        "3",
        "--tune-steps",
        "2",
        "--device",
        "cpu",
    )
    res = _cli(args)
    assert res.exit_code == 0, res.output
    with PIL.Image.open(out) as img:
        text = dict(img.text)
        pixels = np.asarray(img.convert("RGB"))
    assert says_generated(text)
    assert text["stylegan:source"] == "a.png" and text["stylegan:target"] == "b.jpg"
    assert text["stylegan:mode"] == "pti" and "coarse,middle" in text["stylegan:layers"]
    assert text["stylegan:mark"].startswith("v1")  # 160 px: large enough for the mark
    target_read = np.asarray(PIL.Image.open(tmp_path / "b.jpg").convert("RGB"))
    away = np.ones(pixels.shape[:2], bool)
    away[24:136, 34:126] = False  # outside the AT&T photo only the mark, embedded faintly (SWAP_MARK_PSNR), changed it
    assert psnr(pixels[away], target_read[away]) >= 45
    again = _cli(args)
    assert again.exit_code == 1 and "already exists" in again.output


@needs_att
def test_cli_no_mark_keeps_target_bit_identical_outside(tmp_path, pair):
    source, target = pair
    PIL.Image.fromarray(source).save(tmp_path / "a.png")
    PIL.Image.fromarray(target).save(tmp_path / "b.png")
    out = tmp_path / "c.png"
    res = _cli(
        swap_clips.swap_args(
            tmp_path / "a.png",
            tmp_path / "b.png",
            out,
            "--mode",
            "w",
            "--steps",
            "2",
            "--no-mark",
            "--blend",
            "poisson",
        )
    )
    assert res.exit_code == 0, res.output
    pixels = np.asarray(PIL.Image.open(out).convert("RGB"))
    differ = (pixels != target).any(axis=2)
    ys, xs = np.nonzero(differ)
    assert differ.sum() > 500
    # every changed pixel lies in the face: inside the target's 92x112 photo area, away from its border
    top, left = (160 - 112) // 2, (160 - 92) // 2
    assert ys.min() > top and ys.max() < top + 112 and xs.min() > left and xs.max() < left + 92


@needs_att
@pytest.mark.parametrize(
    "case, message",
    [("no-face-target", "no face found in the target"), ("missing", "no such file"), ("suffix", "writes .png")],
)
def test_cli_errors_are_one_line(tmp_path, pair, case, message):
    PIL.Image.fromarray(pair[0]).save(tmp_path / "a.png")
    PIL.Image.fromarray(swap_clips.background(100, 100)).save(tmp_path / "blank.png")
    target = {"no-face-target": "blank.png", "missing": "nope.png", "suffix": "a.png"}[case]
    out = tmp_path / ("c.jpg" if case == "suffix" else "c.png")
    res = _cli(swap_clips.swap_args(tmp_path / "a.png", tmp_path / target, out, "--mode", "w", "--steps", "1"))
    assert res.exit_code == 1
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_generator_untouched_by_swap_helpers(G):
    """mix_ws never writes into its inputs."""
    from stylegan.editing.swap import mix_ws

    a, b = torch.zeros(1, G.num_ws, G.w_dim), torch.ones(1, G.num_ws, G.w_dim)
    mix_ws(a, b, (0,))
    assert a.sum() == 0 and b.sum() == b.numel()
