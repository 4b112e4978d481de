"""Detectors for unmarked generated images: the spectrum against a direct-DFT reference, logistic regression against
known weights, calibration against observed frequencies on fresh data, the CNN on an up-sampling task, and the
`detect-train` / `detect --report` round trip with bad files in the list."""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.main import main
from stylegan.forensics import detector as D
from stylegan.forensics import spectral


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def reference_profile(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(radii k/n, mean log10 power per ring) by the definitions: 3x3 box high-pass with mirrored edges (scipy),
    DFT as a matrix product (no FFT), rings by looping over every frequency."""
    from scipy.ndimage import uniform_filter

    h, w = gray.shape
    resid = gray - uniform_filter(gray, 3, mode="mirror")
    dft = lambda m: np.exp(-2j * np.pi * np.outer(np.arange(m), np.arange(m)) / m)  # noqa: E731
    power = np.abs(dft(h) @ resid @ dft(w).T) ** 2 / (h * w)
    n = min(h, w)
    rings: dict[int, list[float]] = {}
    for u in range(h):
        for v in range(w):
            fu, fv = (u if u < h / 2 else u - h) / h, (v if v < w / 2 else v - w) / w
            k = int(np.rint(np.hypot(fu, fv) * n))
            if k <= n // 2:
                rings.setdefault(k, []).append(np.log10(power[u, v] + 1e-12))
    ks = np.arange(n // 2 + 1)
    return ks / n, np.array([np.mean(rings[k]) for k in ks])


@pytest.mark.parametrize("shape", [(32, 32), (24, 40)])
def test_radial_profile_matches_direct_dft(shape):
    gray = np.random.default_rng(0).random(shape)
    radii, native = reference_profile(gray)
    grid = spectral.frequencies()
    np.testing.assert_allclose(spectral.radial_profile(gray), np.interp(grid, radii, native), atol=1e-9)


def test_a_ring_of_cosines_peaks_at_its_frequency():
    """Cosines at every integer frequency (kx, ky) with |k| rounding to 15 (random phases): all the power sits in
    the ring of radius 15/64 cycles/pixel, so the profile peaks there (grid point i is (i + 1)/128: i = 29)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    gray = 0.5 + 0.001 * rng.normal(size=(64, 64))
    for kx in range(-16, 17):
        for ky in range(0, 17):
            if round(np.hypot(kx, ky)) == 15:
                gray += 0.02 * np.cos(2 * np.pi * (kx * xx + ky * yy) / 64 + rng.uniform(0, 2 * np.pi))
    assert int(np.argmax(spectral.radial_profile(gray, bins=64))) == 29


def test_logistic_regression_recovers_known_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 3))
    truth = np.array([1.5, -2.0, 0.5, 0.3])  # weights then bias
    y = (rng.random(20000) < 1 / (1 + np.exp(-(x @ truth[:3] + truth[3])))).astype(float)
    np.testing.assert_allclose(D.fit_logistic(x, y, l2=0.0), truth, atol=0.08)


def _textures(n: int, upsampled: bool, rng: np.random.Generator, size: int = 32) -> list[np.ndarray]:
    """Noise images; 'generated' ones mix in nearest-neighbour 2x up-sampled noise (a checkerboard trace) at a
    random strength, so the classes overlap and calibrated probabilities are not all 0 or 1."""
    out = []
    for _ in range(n):
        base = rng.normal(size=(size, size))
        if upsampled:
            small = rng.normal(size=(size // 2, size // 2)).repeat(2, 0).repeat(2, 1)
            a = rng.uniform(0.0, 0.6)
            base = (1 - a) * base + a * small
        out.append(np.clip(128 + 40 * base, 0, 255).astype(np.uint8))
    return out


def test_calibration_is_reliable_on_fresh_data():
    rng = np.random.default_rng(2)
    det = D.train_detector(_textures(400, False, rng), _textures(400, True, rng), kind="spectral", augment=False)
    real, fake = _textures(600, False, rng), _textures(600, True, rng)  # never seen by training or calibration
    p = det.probability(real + fake)
    y = np.array([0] * 600 + [1] * 600)
    assert 0.15 < np.mean((p > 0.05) & (p < 0.95)) < 0.85  # not a trivial task: many probabilities in between
    for lo, hi in [(0.0, 0.2), (0.2, 0.8), (0.8, 1.0)]:  # reliability: observed frequency ~ mean predicted
        sel = (p >= lo) & (p < hi + (hi == 1.0))
        assert sel.sum() > 50 and abs(y[sel].mean() - p[sel].mean()) < 0.08, (lo, hi, y[sel].mean(), p[sel].mean())
    assert abs(det.info["held_out"]["accuracy"] - np.mean((p >= 0.5) == y)) < 0.08


def test_operating_thresholds_flag_their_share_of_fresh_real_images():
    rng = np.random.default_rng(5)
    det = D.train_detector(_textures(800, False, rng), _textures(800, True, rng), kind="spectral", augment=False)
    real, fake = _textures(2000, False, rng), _textures(600, True, rng)  # never seen by training or calibration
    z_real, z_fake = det.calibrated_logits(real), det.calibrated_logits(fake)
    flagged = []
    for fpr in D.OPERATING_FPRS:  # 200 held-out reals stored each threshold; 2000 fresh ones check it
        t = det.threshold(fpr)
        flagged.append(np.mean(z_fake >= t))
        assert abs(np.mean(z_real >= t) - fpr) < max(0.6 * fpr, 0.012), (fpr, np.mean(z_real >= t))
    assert flagged == sorted(flagged) and flagged[0] < flagged[-1]  # a looser threshold catches more fakes
    with pytest.raises(ValueError, match="no threshold for a false-positive rate of 0.03"):
        det.threshold(0.03)
    old = D.Detector(det.kind, det.tensors, det.temperature, det.bias, {"held_out": {"n": 10}})
    with pytest.raises(ValueError, match="trained before"):
        old.threshold(0.05)


def test_detect_flags_at_the_operating_threshold_and_says_so():
    from stylegan.forensics.html import detector_text
    from stylegan.forensics.report import detector_result

    rng = np.random.default_rng(6)
    det = D.train_detector(_textures(400, False, rng), _textures(400, True, rng), kind="spectral", augment=False)
    real, fake = _textures(400, False, rng), _textures(200, True, rng)
    results = [detector_result(img, [det]) for img in real + fake]
    called = np.array([r["flagged"]["spectral"] for r in results])
    assert abs(called[:400].mean() - D.OPERATING_FPR) < 0.04  # fresh reals: about the share it was set for
    assert called[400:].mean() > 0.5 and results[0]["operating_fpr"] == D.OPERATING_FPR
    text = detector_text(results[-1])
    assert "[spectral: flagged]" in text or "[spectral: not flagged]" in text
    assert f"flags {D.OPERATING_FPR:.0%} of held-out real images" in text
    older = D.Detector(det.kind, det.tensors, det.temperature, det.bias, {"held_out": {"n": 10}})
    plain = detector_result(real[0], [older])
    assert "flagged" not in plain and "flagged" not in detector_text(plain)


def test_cnn_learns_upsampling_traces():
    rng = np.random.default_rng(3)
    real = _textures(160, False, rng)
    fake = [np.clip(128 + 40 * rng.normal(size=(16, 16)).repeat(2, 0).repeat(2, 1), 0, 255).astype(np.uint8)]
    fake += [
        np.clip(128 + 40 * rng.normal(size=(16, 16)).repeat(2, 0).repeat(2, 1), 0, 255).astype(np.uint8)
        for _ in range(159)
    ]
    torch.manual_seed(0)
    det = D.train_detector(real, fake, kind="cnn", augment=False, steps=30)
    test_real = _textures(50, False, rng, size=48)  # another size: the CNN is fully convolutional
    test_fake = [
        np.clip(128 + 40 * rng.normal(size=(24, 24)).repeat(2, 0).repeat(2, 1), 0, 255).astype(np.uint8)
        for _ in range(50)
    ]
    p = det.probability(test_real + test_fake)
    assert np.mean((p >= 0.5) == np.array([0] * 50 + [1] * 50)) > 0.9


def test_save_and_load_give_the_same_probabilities(tmp_path):
    rng = np.random.default_rng(4)
    det = D.train_detector(_textures(40, False, rng), _textures(40, True, rng), kind="spectral", augment=False)
    det.save(tmp_path / "d.safetensors")
    back = D.load_detector(tmp_path / "d.safetensors")
    probe = _textures(5, True, rng)
    np.testing.assert_array_equal(back.probability(probe), det.probability(probe))
    assert back.info == det.info and back.kind == "spectral"
    (tmp_path / "junk.safetensors").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a detector file"):
        D.load_detector(tmp_path / "junk.safetensors")


def _huge_png(path):
    """A valid 1x1 PNG whose header then claims 30000 x 30000 pixels (CRC fixed): a decompression bomb header."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_detect_train_then_detect_with_report_and_bad_files(tmp_path):
    rng = np.random.default_rng(5)
    for name, images in (("real", _textures(40, False, rng)), ("fake", _textures(40, True, rng))):
        (tmp_path / name).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
    (tmp_path / "real" / "broken.png").write_text("not an image")
    out = tmp_path / "det.safetensors"
    res = run("detect-train", "--real", tmp_path / "real", "--fake", tmp_path / "fake", "--out", out, "--no-augment")
    assert res.exit_code == 0 and out.exists() and "40 real, 40 generated" in res.output, res.output
    assert "skipped" in res.output and "broken.png" in res.output
    res = run("detect-train", "--real", tmp_path / "real", "--fake", tmp_path / "nope", "--out", out, "--force")
    assert res.exit_code != 0 and "not a folder" in res.output

    gif = tmp_path / "anim.gif"
    frames = [Image.fromarray(img) for img in _textures(3, True, rng)]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    _huge_png(tmp_path / "huge.png")
    data = (tmp_path / "fake" / "0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    files = [
        tmp_path / "fake" / "1.png",
        tmp_path / "real" / "broken.png",
        tmp_path / "huge.png",
        gif,
        tmp_path / "cut.png",
        tmp_path / "real" / "1.png",
    ]
    report = tmp_path / "report.html"
    res = run("detect", *files, "--detector", out, "--report", report)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == len(files) + 1, res.output  # + "wrote report.html"
    assert "p(generated)" in lines[0] and "error: not an image" in lines[1]
    assert "error" in lines[2] and "too large" in lines[2]
    assert "animated" in lines[3] and "p(generated)" in lines[3]
    assert "error" in lines[4] and "p(generated)" in lines[5]
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 3 * 3 and "http" not in page.replace("http://cv.iptc", "")
    res = run("detect", "--json", "--detector", out, tmp_path / "fake" / "2.png")
    result = json.loads(res.output)
    assert 0.0 <= result["detector"]["p_generated"]["spectral"] <= 1.0 and "Platt" in result["detector"]["note"]
    assert result["c2pa"]["status"] in ("none", "not checked")


@pytest.mark.parametrize("residual", [None, "local"])
def test_detect_train_cnn_records_its_residual_and_recipe(tmp_path, monkeypatch, residual):
    """The cnn's defaults are the npr+local ensemble with the wang recipe (no resize); --residual picks another.
    (Training cut to 5 batches: this checks what the command passes on, not how well it trains.)"""
    real_train = D.train_detector
    monkeypatch.setattr(D, "train_detector", lambda *a, **k: real_train(*a, **k, steps=5))
    rng = np.random.default_rng(11)
    for name, images in (("real", _textures(16, False, rng)), ("fake", _textures(16, True, rng))):
        (tmp_path / name).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
    out = tmp_path / "det.safetensors"
    extra = ["--residual", residual] if residual else []
    res = run(
        "detect-train", "--real", tmp_path / "real", "--fake", tmp_path / "fake", "--out", out, "--kind", "cnn", *extra
    )
    assert res.exit_code == 0, res.output
    det = D.load_detector(out)
    assert det.info["norm"] == (residual or "npr+local")
    assert [m.norm for m in det._cnns()] == det.info["norm"].split("+")
    assert det.info["augment"] == "wang"


def test_launder_recipes_change_what_they_say():
    """'none' keeps the pixels; 'light' only ever shrinks to 50-100 % and re-encodes; an unknown recipe is refused."""
    rng = np.random.default_rng(6)
    img = _textures(1, False, rng, size=64)[0]
    np.testing.assert_array_equal(D.launder(img, rng, "none"), img)
    sides = {D.launder(img, rng, "light").shape for _ in range(40)}
    assert (64, 64) in sides and len(sides) > 3 and all(32 <= s[0] <= 64 and s[0] == s[1] for s in sides)
    blurred = [D.launder(img, rng, "wang") for _ in range(40)]
    assert all(b.shape == img.shape for b in blurred)
    assert any(
        np.abs(np.diff(b.astype(float), axis=1)).mean() < 0.5 * np.abs(np.diff(img.astype(float), axis=1)).mean()
        for b in blurred
    )
    with pytest.raises(ValueError, match="unknown augmentation"):
        D.train_detector(_textures(8, False, rng), _textures(8, True, rng), augment="sepia")


def test_batch_loss_over_mixed_sizes_is_the_mean_cross_entropy():
    from stylegan.forensics.residual_cnn import ResidualCNN, batch_loss

    torch.manual_seed(0)
    model = ResidualCNN().eval()
    crops = [torch.rand(1, s, s) for s in (16, 32, 16, 24, 32)]
    labels = torch.tensor([0, 1, 1, 0, 1])
    with torch.no_grad():
        p = [torch.sigmoid(model(c[None]))[0].item() for c in crops]  # one at a time
        expected = -np.mean([np.log(q) if y else np.log(1 - q) for q, y in zip(p, labels.tolist(), strict=True)])
        assert abs(batch_loss(model, crops, labels).item() - expected) < 1e-5


def test_grey_of_a_one_channel_image_is_its_channel():
    img = np.random.default_rng(10).integers(0, 256, (9, 7), dtype=np.uint8)
    np.testing.assert_array_equal(spectral.to_gray(img[..., None]), img / 255.0)


def test_box_mean_matches_scipy_uniform_filter():
    """The local mean behind the residual and its normalisation, against scipy's (mirror = torch's reflect)."""
    from scipy.ndimage import uniform_filter

    from stylegan.forensics.residual_cnn import _box

    x = np.random.default_rng(7).random((2, 1, 20, 17))
    for size in (3, 9):
        expected = uniform_filter(x, size=(1, 1, size, size), mode="mirror")
        np.testing.assert_allclose(_box(torch.from_numpy(x), size).numpy(), expected, atol=1e-12)


def test_local_norm_makes_the_cnn_blind_to_contrast():
    """norm='local' divides the residual by its local RMS: halving the contrast of a busy texture leaves the logit
    (nearly) as it was, while the unnormalised network's logit moves."""
    from stylegan.forensics.residual_cnn import ResidualCNN

    gray = torch.from_numpy(np.random.default_rng(8).random((4, 1, 48, 48))).float()
    faded = 0.25 + 0.5 * gray
    moved = {}
    for norm in ("none", "local"):
        torch.manual_seed(0)
        model = ResidualCNN(norm=norm).eval()
        with torch.no_grad():
            moved[norm] = (model(gray) - model(faded)).abs().max().item()
    assert moved["local"] < 0.1 * moved["none"], moved
    with pytest.raises(ValueError, match="unknown residual normalisation"):
        ResidualCNN(norm="sepia")


def test_a_cnn_detector_keeps_its_norm_through_save_and_load(tmp_path):
    rng = np.random.default_rng(9)
    det = D.train_detector(
        _textures(24, False, rng), _textures(24, True, rng), kind="cnn", augment=False, steps=3, norm="none"
    )
    det.save(tmp_path / "c.safetensors")
    back = D.load_detector(tmp_path / "c.safetensors")
    probe = _textures(4, True, rng)
    assert back.info["norm"] == "none" and back._cnns()[0].norm == "none"
    np.testing.assert_allclose(back.probability(probe), det.probability(probe), atol=1e-6)


DATA = Path(__file__).parent / "data"


def test_the_shipped_cnn_calls_unseen_real_photographs_real():
    """Five photographs from sources the shipped detector never saw (data/CREDITS: colour and grey, 192-451 px,
    JPEG and PNG): every one is called real."""
    det = D.load_detector(D.ASSETS / "detector_cnn.safetensors")
    images, skipped = D.read_folder(DATA)
    assert len(images) == 5 and not skipped
    p = det.probability(images)
    assert (p < 0.5).all(), p


def _random_net_images(family: str, n: int = 8) -> list[np.ndarray]:
    """n images (seeds 5000..) of a freshly initialised SG1 / SG3 generator (weights no detector was trained on) or of
    the built-in `default` model, uint8 [H, W, C]."""
    from stylegan.editing.generate import generate_images
    from stylegan.networks import stylegan1, stylegan3

    torch.manual_seed(123)
    if family == "default":
        from stylegan.io import load_generator

        G = load_generator("default")
    elif family == "sg1":
        cfg = stylegan1.GeneratorConfig(
            z_dim=32, w_dim=32, mapping_features=32, img_resolution=64, fmap_base=1024, fmap_max=32
        )
        G = stylegan1.Generator(cfg)
    else:
        cfg = stylegan3.GeneratorConfig(
            z_dim=32, w_dim=32, img_resolution=32, channel_base=2048, channel_max=32, num_fp16_res=0
        )
        G = stylegan3.Generator(cfg)
    images = generate_images(G.eval(), list(range(5000, 5000 + n)), truncation_psi=1.0, batch_size=n)
    return list(images.permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize("family", ["sg1", "sg3", "default"])
def test_the_shipped_cnn_flags_fresh_generated_images(family):
    """Random SG1 / SG3 nets of sizes and seeds it was not trained on, and the built-in model at unseen seeds."""
    det = D.load_detector(D.ASSETS / "detector_cnn.safetensors")
    p = det.probability(_random_net_images(family))
    assert (p >= 0.5).mean() >= 0.75, p


def test_undo_pixel_replication_finds_whole_factors_only():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    for k in (2, 3, 4, 7):
        big = np.kron(img, np.ones((k, k, 1), dtype=np.uint8))  # the definition of pixel replication
        small, found = D.undo_pixel_replication(big)
        assert found == k and np.array_equal(small, img)
    grey = img[..., 0]
    small, found = D.undo_pixel_replication(np.repeat(np.repeat(grey, 5, 0), 5, 1))
    assert found == 5 and np.array_equal(small, grey)
    for other in (img, Image.fromarray(np.kron(img, np.ones((2, 2, 1), dtype=np.uint8))).resize((60, 36))):
        other = np.asarray(other)
        assert D.undo_pixel_replication(other)[1] == 1  # not replicated, or resampled (not exact): kept
    off = np.kron(img, np.ones((2, 2, 1), dtype=np.uint8))
    off[5, 7, 1] ^= 1  # one value off: no longer exact replication
    assert D.undo_pixel_replication(off)[1] == 1


def test_an_enlarged_generated_figure_is_scored_at_its_own_pixels():
    """Images the 32 px model writes with --zoom 4 and no mark: the detector reads them as at --zoom 1 (through the
    4x4 blocks the CNN's p fell towards chance) and the report says they were enlarged."""
    from stylegan.forensics.report import detector_result

    det = D.load_detector(D.ASSETS / "detector_cnn.safetensors")
    images = _random_net_images("default", 4)
    for img in images:
        zoomed = np.kron(img, np.ones((4, 4, 1), dtype=np.uint8))
        at_own, enlarged = detector_result(img, [det]), detector_result(zoomed, [det])
        assert enlarged["enlarged"] == 4 and "enlarged" not in at_own
        assert enlarged["p_generated"] == at_own["p_generated"]
    assert np.mean([detector_result(np.kron(i, np.ones((4, 4, 1), np.uint8)), [det])["p_generated"]["cnn"] >= 0.5
                    for i in images]) >= 0.75  # fmt: skip


def test_npr_residual_is_each_pixel_minus_its_2x2_blocks_corner():
    """norm='npr' (neighbouring-pixel relationships, Tan et al. 2024): x minus x sub-sampled 2x and brought back by
    nearest neighbour, here against np.kron on even and odd sizes; crops keep the image's 2x2 grid."""
    from stylegan.forensics.residual_cnn import _block_corner, random_crop

    for h, w in ((6, 8), (7, 5)):
        x = np.random.default_rng(h).random((1, 1, h, w))
        expected = np.kron(x[0, 0, ::2, ::2], np.ones((2, 2)))[:h, :w]
        np.testing.assert_array_equal(_block_corner(torch.from_numpy(x))[0, 0].numpy(), expected)
    gray = torch.arange(40 * 40, dtype=torch.float32).reshape(1, 40, 40)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        crop = random_crop(gray, 32, generator, step=2)
        corner = int(crop[0, 0, 0]) if crop[0, 0, 0] < crop[0, 0, 1] else int(crop[0, 0, -1])  # undo the mirroring
        assert (corner // 40) % 2 == 0 and (corner % 40) % 2 == 0, corner


def test_npr_cnn_sees_nearest_neighbour_upsampling_of_flat_blocks_as_zero():
    """An image enlarged 2x by pixel replication has an NPR residual of exactly zero; noise does not."""
    from stylegan.forensics.residual_cnn import _block_corner

    blocks = torch.rand(1, 1, 12, 12).repeat_interleave(2, -2).repeat_interleave(2, -1)
    assert (blocks - _block_corner(blocks)).abs().max() == 0
    noise = torch.rand(1, 1, 24, 24)
    assert (noise - _block_corner(noise)).abs().mean() > 0.1


def test_an_ensemble_scores_the_mean_logit_of_its_members_and_survives_save_and_load(tmp_path):
    """norm='npr+local': one CNN per residual; the raw score is the mean of their logits, each member computed here
    from its own tensors in a fresh ResidualCNN."""
    from stylegan.forensics.residual_cnn import ResidualCNN, cnn_logits, gray_tensor

    rng = np.random.default_rng(12)
    det = D.train_detector(
        _textures(24, False, rng), _textures(24, True, rng), kind="cnn", augment=False, steps=3, norm="npr+local"
    )
    assert {k.split(".")[0] for k in det.tensors} == {"cnn0", "cnn1"}
    det.save(tmp_path / "e.safetensors")
    back = D.load_detector(tmp_path / "e.safetensors")
    probe = _textures(5, True, rng) + _textures(5, False, rng)
    members = []
    for i, norm in enumerate(("npr", "local")):
        model = ResidualCNN(norm=norm).eval()
        model.load_state_dict(
            {k.removeprefix(f"cnn{i}."): v for k, v in back.tensors.items() if k.startswith(f"cnn{i}.")}
        )
        members.append(cnn_logits(model, [gray_tensor(img) for img in probe]).numpy())
    np.testing.assert_allclose(back.raw_scores(probe), (members[0] + members[1]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.probability(probe), det.probability(probe), atol=1e-6)
    assert [m.norm for m in back._cnns()] == ["npr", "local"]
    with pytest.raises(ValueError, match="unknown residual"):
        D.train_detector(_textures(8, False, rng), _textures(8, True, rng), kind="cnn", steps=1, norm="npr+sepia")
