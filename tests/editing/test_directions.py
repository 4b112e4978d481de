"""Latent directions against independent oracles: SeFa against numpy's eigen-equation on the raw affine weights
(read from the state dict by name), GANSpace against numpy's eigendecomposition of the sampled w's covariance,
boundaries against a planted separating direction; the .npz files, names and one-line errors."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan.editing import directions as D
from stylegan.io import load_generator
from stylegan.networks import stylegan1, stylegan2

SG3_PKL = Path(__file__).resolve().parents[1] / "fixtures" / "nvlabs" / "sg3t_tiny.pkl"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sg1():
    g, _ = stylegan1.preset_configs(
        "ffhq1024", img_resolution=16, fmap_base=32, fmap_max=8, z_dim=8, w_dim=8, mapping_layers=2, mapping_features=8
    )
    return stylegan1.Generator(g).eval()


def _sg2():
    cfg = stylegan2.GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8)
    return stylegan2.Generator(cfg).eval()


@pytest.fixture(scope="module")
def default_G():
    return load_generator()


@pytest.fixture(scope="module", params=["stylegan1", "stylegan2", "stylegan3", "default"])
def any_G(request, default_G):
    return {
        "stylegan1": _sg1,
        "stylegan2": _sg2,
        "stylegan3": lambda: load_generator(SG3_PKL),
        "default": lambda: default_G,
    }[request.param]()


# Style-affine weights of the convolution layers, by state-dict name: StyleGAN1 `bR.convK.affine.weight`,
# StyleGAN2 `bR.convK.affine.weight` (not torgb), StyleGAN3 `L{i}_{size}_{ch}.affine.weight` (not the last: ToRGB).
def _raw_affines(G) -> list[tuple[int, np.ndarray]]:
    """(ws index, weight [S, w_dim]) in synthesis order, from the state dict's names and the papers' ws order."""
    sd = {k: v.double().numpy() for k, v in G.synthesis.state_dict().items()}
    sg3 = sorted(
        (k for k in sd if re.fullmatch(r"L\d+_\d+_\d+\.affine\.weight", k)), key=lambda k: int(k[1:].split("_")[0])
    )
    if sg3:
        return [(i + 1, sd[k]) for i, k in enumerate(sg3[:-1])]
    convs = [k for k in sd if re.fullmatch(r"b\d+\.conv[01]\.affine\.weight", k)]
    convs.sort(key=lambda k: (int(k.split(".")[0][1:]), k))
    return list(enumerate(sd[k] for k in convs))


def _oracle_matrix(G, layers=None):
    rows = [w for idx, w in _raw_affines(G) if layers is None or idx in layers]
    A = np.concatenate(rows)
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def test_sefa_solves_the_eigen_equation_of_the_raw_weights(any_G):
    A = _oracle_matrix(any_G)
    M = A.T @ A
    dirs = D.sefa(any_G)
    V, lam = dirs.vectors.astype(np.float64), dirs.values
    assert V.shape == (any_G.w_dim, any_G.w_dim)
    np.testing.assert_allclose(V @ V.T, np.eye(any_G.w_dim), atol=1e-5)  # orthonormal rows
    np.testing.assert_allclose(lam, np.sort(np.linalg.eigvalsh(M))[::-1], rtol=1e-9, atol=1e-9)
    for k in range(min(5, len(V))):
        residual = np.linalg.norm(M @ V[k] - lam[k] * V[k]) / lam[k]
        assert residual < 1e-5, (k, residual)


def test_sefa_on_a_layer_range_uses_only_those_layers(default_G):
    coarse = D.parse_layers(default_G, "coarse")
    A = _oracle_matrix(default_G, coarse)
    v = D.sefa(default_G, layers=coarse).vectors[0].astype(np.float64)
    top = np.linalg.eigh(A.T @ A)[1][:, -1]
    assert abs(v @ top) > 1 - 1e-6
    assert D.sefa(default_G, layers=coarse).layers == tuple(coarse)
    assert abs(v @ D.sefa(default_G).vectors[0]) < 0.999  # the full set differs: the range did matter


def test_ganspace_matches_numpy_pca_of_the_sampled_w(default_G):
    n = 3000
    z = np.random.RandomState(D.SAMPLE_SEED).randn(n, default_G.z_dim)
    with torch.no_grad():
        w = default_G.mapping(torch.from_numpy(z).float(), None)[:, 0].double().numpy()
    cov = np.cov(w, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    dirs = D.ganspace(default_G, samples=n)
    np.testing.assert_allclose(dirs.values[:10], values[::-1][:10], rtol=1e-4)
    for k in range(5):
        assert abs(dirs.vectors[k].astype(np.float64) @ vectors[:, -1 - k]) > 1 - 1e-4
    np.testing.assert_allclose(dirs.scales[:5], np.sqrt(values[::-1][:5]), rtol=1e-4)


def test_sigma_is_the_spread_of_sampled_w_along_the_direction(default_G):
    d = D.sefa(default_G)
    w = D.sample_w(default_G, D.SCALE_SAMPLES)
    np.testing.assert_allclose(d.scales[:3], (w @ d.vectors[:3].T.astype(np.float64)).std(axis=0), rtol=1e-4)


def test_boundary_recovers_a_planted_direction():
    rng = np.random.RandomState(0)
    u = rng.randn(16)
    u /= np.linalg.norm(u)
    w = rng.randn(2000, 16) * rng.uniform(0.5, 3, 16)  # anisotropic cloud
    labels = (w @ u + 0.05 * rng.randn(2000)) > 0.3
    normal, accuracy = D.fit_boundary(w, labels)
    # The Bayes-optimal normal for an anisotropic cloud is u itself (the label only depends on w @ u).
    assert normal @ u > 0.95 and accuracy > 0.95
    normal_flipped, _ = D.fit_boundary(w, ~labels)
    assert normal_flipped @ u < -0.95  # the normal points towards label 1


def test_score_labels_take_top_and_bottom():
    scores = np.array([5.0, -1.0, 3.0, 0.0, 9.0, -4.0, 2.0, 1.0])
    index, labels = D.score_labels(scores, 0.25)
    assert sorted(index[labels == 1]) == [0, 4] and sorted(index[labels == 0]) == [1, 5]


def test_class_boundary_of_a_conditional_model():
    cfg = stylegan2.GeneratorConfig(z_dim=8, c_dim=3, w_dim=8, img_resolution=16, channel_base=64, channel_max=8)
    G = stylegan2.Generator(cfg).eval()
    d = D.class_boundary(G, 1, samples=600)
    assert d.values[0] > 0.7  # training accuracy: the mapping embeds c, so the classes separate in w
    z = torch.from_numpy(np.random.RandomState(1).randn(300, 8)).float()
    with torch.no_grad():  # held-out samples of each class
        proj = [G.mapping(z, torch.eye(3)[[k] * 300])[:, 0].double().numpy() @ d.vectors[0] for k in range(3)]
    assert proj[1].mean() > proj[0].mean() and proj[1].mean() > proj[2].mean()
    with pytest.raises(D.DirectionError, match="out of range"):
        D.class_boundary(G, 5)
    with pytest.raises(D.DirectionError, match="unconditional"):
        D.class_boundary(_sg2(), 0)


def test_save_load_round_trip_and_names(default_G, tmp_path):
    dirs = D.sefa(default_G, layers=(0, 1, 2))
    path = D.save_directions(dirs, tmp_path / "sub" / "s.npz")
    back = D.load_directions(path)
    np.testing.assert_array_equal(back.vectors, dirs.vectors)
    np.testing.assert_array_equal(back.scales, dirs.scales)
    assert (back.method, back.layers, back.num_ws, back.w_dim) == ("sefa", (0, 1, 2), default_G.num_ws, 64)
    assert back.model_hash == D.model_hash(default_G)
    with np.load(path, allow_pickle=False) as data:  # plain arrays: no pickle needed
        assert set(data.files) == {"directions", "values", "scales", "meta"}
    for spec, k in ((str(path), 0), (f"{path}:3", 3), (f"boundary:{path}:2", 2)):
        d = D.resolve_direction(default_G, spec)
        np.testing.assert_array_equal(d.vector, dirs.vectors[k])
        assert d.layers == (0, 1, 2)


def test_names_resolve_to_the_methods(default_G, tmp_path):
    d = D.resolve_direction(default_G, "sefa:2@coarse")
    ref = D.sefa(default_G, layers=D.parse_layers(default_G, "coarse"))
    np.testing.assert_array_equal(d.vector, ref.vectors[2])
    g = D.resolve_direction(default_G, "ganspace:1", ganspace_samples=1000, cache_dir=tmp_path)
    assert (tmp_path / D.model_hash(default_G) / "ganspace-1000.npz").is_file()
    np.testing.assert_array_equal(g.vector, D.ganspace(default_G, samples=1000).vectors[1])


def test_ganspace_cache_is_read_not_recomputed(default_G, tmp_path, monkeypatch):
    first = D.cached_ganspace(default_G, samples=500, cache_dir=tmp_path)
    monkeypatch.setattr(D, "ganspace", lambda *a, **k: pytest.fail("recomputed"))
    np.testing.assert_array_equal(D.cached_ganspace(default_G, samples=500, cache_dir=tmp_path).vectors, first.vectors)


def test_model_hash_follows_the_weights():
    a, b = _sg2(), _sg2()
    b.load_state_dict(a.state_dict())
    assert D.model_hash(a) == D.model_hash(b)
    with torch.no_grad():
        b.synthesis.b4.conv1.affine.weight[0, 0] += 1e-3
    assert D.model_hash(a) != D.model_hash(b)


def test_layer_specs(default_G):
    assert D.parse_layers(default_G, None) == tuple(range(8))
    assert D.parse_layers(default_G, "0-2,6") == (0, 1, 2, 6)
    assert D.parse_layers(default_G, "coarse") == (0, 1, 2)
    assert D.parse_layers(default_G, "middle,fine") == (3, 4, 5, 6, 7)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0-9", r"layers \[8, 9\] out of range: this model has layers \(ws indices\) 0..7"),
        ("3-1", "runs backwards"),
        ("huge", "bad layers 'huge': use ws indices like 0-5, 'all', or coarse/middle/fine"),
        ("coarse,x", "bad layers"),
    ],
)
def test_bad_layer_specs_are_one_line_errors(default_G, spec, message):
    with pytest.raises(ValueError, match=message) as err:
        D.parse_layers(default_G, spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("smile", "unknown direction 'smile': use sefa:K, ganspace:K, boundary:FILE or the path of a direction .npz"),
        ("sefa:x", "bad direction 'sefa:x'"),
        ("sefa:64", "direction index 64 out of range: this set has 0..63"),
        ("boundary:nowhere.npz", "unknown direction"),
    ],
)
def test_unknown_directions_are_one_line_errors(default_G, spec, message):
    with pytest.raises(D.DirectionError, match=message) as err:
        D.resolve_direction(default_G, spec)
    assert "\n" not in str(err.value)


def test_mismatched_direction_files(default_G, tmp_path):
    small = D.sefa(_sg2())  # w_dim 8, num_ws 8
    path = D.save_directions(small, tmp_path / "small.npz")
    with pytest.raises(D.DirectionError, match="directions have w_dim 8, this model has w_dim 64"):
        D.resolve_direction(default_G, str(path))
    other = D.sefa(_sg1())  # w_dim 8, num_ws 8 (16²): same w_dim as _sg2 but from another model
    path = D.save_directions(other, tmp_path / "other.npz")
    d = D.resolve_direction(_sg2(), str(path))
    assert "made for model" in d.name
    import dataclasses

    wrong_ws = dataclasses.replace(D.sefa(default_G), num_ws=12, layers=tuple(range(12)))
    path = D.save_directions(wrong_ws, tmp_path / "ws.npz")
    with pytest.raises(D.DirectionError, match="made for 12 ws, this model has 8"):
        D.resolve_direction(default_G, str(path))
    junk = tmp_path / "junk.npz"
    np.savez(junk, x=np.zeros(3))
    with pytest.raises(D.DirectionError, match="not a direction file"):
        D.resolve_direction(default_G, str(junk))
