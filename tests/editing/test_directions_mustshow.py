"""The issue's must-shows on the built-in Fashion-MNIST model, small enough for CI (the full tables:
benchmarks/bench_directions.py). Judged by the shipped Fashion-MNIST classifier, which the directions never saw
(except the boundary, which is fit on other seeds than the ones it is judged on)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.editing import directions as D
from stylegan.editing.edit import edit_images
from stylegan.io import load_generator
from stylegan.metrics.fmnist import load_fmnist_classifier


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def G():
    return load_generator()


@pytest.fixture(scope="module")
def net():
    return load_fmnist_classifier()


def as_float(images):
    return images.flatten(0, -4).float() / 127.5 - 1


@pytest.mark.parametrize("method", ["sefa", "ganspace"])
def test_distance_grows_with_strength(G, net, method):
    """Classifier-feature distance to the unedited image, at 0, 1, 2, 3 sigma on each side: monotone curves."""
    dirs = D.sefa(G) if method == "sefa" else D.ganspace(G, samples=5000)
    ws = D.sample_ws(G, range(8))
    strengths = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    with torch.no_grad():
        images = edit_images(G, ws, [dirs.pick(k) for k in range(3)], strengths)  # [8, 3, 7, 1, 32, 32]
        feats = net.features(as_float(images)).reshape(8, 3, 7, -1)
    dist = (feats - feats[:, :, 3:4]).norm(dim=-1).numpy()  # [8, 3, 7]
    right = (np.diff(dist[..., 3:], axis=-1) > 0).all(-1)
    left = (np.diff(dist[..., 3::-1], axis=-1) > 0).all(-1)
    monotone = np.concatenate([right.ravel(), left.ravel()]).mean()
    assert monotone >= 0.8, monotone  # 48 curves; the benchmark measures 200 at finer steps
    assert dist[..., [0, 6]].mean() > 1.3 * dist[..., [2, 4]].mean(), "3 sigma moves further than 1 sigma"


def test_class_boundary_raises_the_class_score(G):
    """Boundary for 'T-shirt/top' (0) fit on 800 sampled images; its log-odds rise on 40 held-out seeds.

    Not every class works this well: a linear boundary in W captures T-shirt, pullover, dress and coat (>= 90 % in
    the benchmark), not the classes within the shoe cluster (sandal, sneaker, ankle boot: 60-80 %).
    """
    score_fn = D.classifier_scores("fmnist:0")
    d = D.classifier_boundary(G, score_fn, samples=800, label="fmnist:0").pick(0)
    with torch.no_grad():
        images = edit_images(G, D.sample_ws(G, range(40)), [d], [0.0, 2.0])[:, 0]  # [40, 2, 1, 32, 32]
        scores = score_fn(as_float(images)).reshape(40, 2)
    up = (scores[:, 1] > scores[:, 0]).float().mean().item()
    assert up >= 0.9, up
    down = edit_images(G, D.sample_ws(G, range(40)), [d], [-2.0])[:, 0, 0]
    assert (score_fn(as_float(down[:, None])) < scores[:, 0]).float().mean() >= 0.7  # mostly down the other way


def _block_outputs(G, ws):
    """Feature maps x of every synthesis block for ws, through forward hooks."""
    seen = {}
    hooks = [
        block.register_forward_hook(lambda m, i, out, r=block.resolution: seen.__setitem__(r, out[0].clone()))
        for block in G.synthesis.blocks()
    ]
    try:
        with torch.no_grad():
            G.synthesis(ws, noise_mode="const")
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_fine_layers_leave_coarse_features_untouched(G):
    """Exact: editing ws 5-7 (fine, 32²) leaves the 4², 8² and 16² blocks' features bit-identical."""
    d = D.sefa(G).pick(0)
    ws = D.sample_ws(G, range(4))
    edited = ws.clone()
    edited[:, 5:] += 3 * d.step()
    before, after = _block_outputs(G, ws), _block_outputs(G, edited)
    for res in (4, 8, 16):
        torch.testing.assert_close(after[res], before[res], rtol=0, atol=0)
    assert not torch.equal(after[32], before[32])


def structure_change(images: torch.Tensor) -> float:
    """1 - correlation of the 8x8 down-sampled images [N, K, S, C, H, W] at strengths 1.. with strength 0 (index 0).

    Correlation ignores brightness and contrast, which the fine styles set (the paper's "colour scheme").
    """
    n, k, s = images.shape[:3]
    small = F.avg_pool2d(images.flatten(0, 2).float(), images.shape[-1] // 8).reshape(n, k, s, -1)
    centred = small - small.mean(-1, keepdim=True)
    unit = centred / centred.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    return (1 - (unit[:, :, 1:] * unit[:, :, :1]).sum(-1)).mean().item()


@pytest.mark.parametrize("method", ["sefa", "ganspace"])
def test_fine_edits_keep_the_coarse_structure(G, method):
    """Top 3 directions at +-3 sigma: the 8x8 structure changes by < 0.08 (1 - correlation) when only the fine
    layers move, and at least 4x more when the coarse layers move (benchmark: ~0.03 vs ~0.3)."""
    dirs = D.sefa(G) if method == "sefa" else D.ganspace(G, samples=5000)
    chosen = [dirs.pick(k) for k in range(3)]
    ws = D.sample_ws(G, range(8))
    change = {}
    for group in ("coarse", "fine"):
        with torch.no_grad():
            images = edit_images(G, ws, chosen, [0.0, -3.0, 3.0], D.parse_layers(G, group))  # [8, 3, 3, 1, 32, 32]
        change[group] = structure_change(images)
    assert change["fine"] < 0.08, change
    assert change["coarse"] > 4 * change["fine"], change
