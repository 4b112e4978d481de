"""Latent editing directions in W: SeFa, GANSpace and linear label boundaries, saved as .npz and loaded by name.

- SeFa (Shen & Zhou 2021, "Closed-form factorization of latent semantics in GANs"): every style s = A w + b is
  affine in w, so the unit directions n that change the styles most maximise |A n|², i.e. they are the leading
  eigenvectors of AᵀA. A stacks the style-affine weights [S, w_dim] of the chosen layers with each row scaled to
  unit length (the paper's normalisation, so wide layers and weight gains do not dominate). No sampling.
- GANSpace (Härkönen et al. 2020): principal components of w = mapping(z) over many sampled z; the components span
  the directions in which the generator's own w distribution varies most.
- Boundary (InterFaceGAN, Shen et al. 2020): the unit normal of a linear boundary (L2-regularised logistic
  regression on w) that separates samples by a binary label: a class of a conditional model, or the top and the
  bottom of any classifier's scores over sampled images.

A direction is a unit vector v [w_dim] and a scale sigma: the standard deviation of the model's sampled w along v.
Strength s moves w by s * sigma * v, so strengths mean "standard deviations of the model's own w" whatever the method.
Each one records the layers (ws indices) it was computed for, which are also where it applies unless told otherwise.

Files: one .npz holds K directions: `directions` [K, w_dim] float32, `values` [K] (SeFa eigenvalue, GANSpace
variance, boundary training accuracy), `scales` [K], and `meta`, a JSON string with model_hash, method, layers,
w_dim, num_ws, and what the method used (samples, label). They load without pickle.
Names (`resolve_direction`): `sefa:K` (all style layers) or `sefa:K@coarse` / `sefa:K@0-3` (those layers' affines),
`ganspace:K` (cached per model under the user cache folder), `boundary:FILE` or `FILE` (index 0) and `FILE:K`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from stylegan.editing.generate import NOISE_MODE, format_range, parse_range, seeds_to_z
from stylegan.networks import stylegan1, stylegan3
from stylegan.networks.base import stages

METHODS = ("sefa", "ganspace", "boundary")
GROUP_NAMES = ("coarse", "middle", "fine")
SCALE_SAMPLES = 4096  # sampled w for a direction's sigma
GANSPACE_SAMPLES = 20_000
SAMPLE_SEED = 1 << 30  # sampled z for GANSpace and sigma: far from the seeds people browse (0, 1, 2, ...)
FORMAT_VERSION = 1


class DirectionError(ValueError):
    """A direction that cannot be made, found or applied to this model (one line, for the CLI)."""


@dataclass(frozen=True)
class DirectionSet:
    """K directions of one model, as stored in one .npz file.

    vectors [K, w_dim] unit rows; values [K] (method's score, descending for SeFa/GANSpace); scales [K] (sigma of the
    model's w along each row); layers: the ws indices they were computed for and apply to by default.
    """

    vectors: np.ndarray
    values: np.ndarray
    scales: np.ndarray
    method: str
    layers: tuple[int, ...]
    model_hash: str
    num_ws: int
    info: dict = field(default_factory=dict)

    @property
    def w_dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def pick(self, index: int, name: str | None = None) -> Direction:
        """The index-th direction as a Direction."""
        if not 0 <= index < len(self):
            raise DirectionError(f"direction index {index} out of range: this set has 0..{len(self) - 1}")
        return Direction(
            vector=self.vectors[index],
            scale=float(self.scales[index]),
            layers=self.layers,
            name=name or f"{self.method}:{index}",
            model_hash=self.model_hash,
            num_ws=self.num_ws,
        )


@dataclass(frozen=True)
class Direction:
    """One direction ready to apply: unit vector [w_dim], sigma, default layers and a name for labels and metadata."""

    vector: np.ndarray
    scale: float
    layers: tuple[int, ...]
    name: str
    model_hash: str
    num_ws: int

    def step(self) -> torch.Tensor:
        """sigma * v [w_dim] float32: the change of w for strength 1."""
        return torch.from_numpy(np.asarray(self.vector, dtype=np.float32) * np.float32(self.scale))


# ----------------------------------------------------------------------------------------------- model facts


def model_hash(G) -> str:
    """16 hex digits of the SHA-256 of the generator's parameters and buffers (names, shapes, float32 bytes).

    The hash follows the weights, not the file they came from: the same model loaded from a pickle, a safetensors
    file or the zoo has the same hash.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(G.state_dict().items()):
        data = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
        digest.update(f"{name}{list(data.shape)}".encode())
        digest.update(data.tobytes())
    return digest.hexdigest()[:16]


def style_affines(G) -> list[tuple[int, torch.nn.Module]]:
    """(ws index, affine layer) for every style of the synthesis network, ToRGB styles left out.

    ToRGB styles only tint the output; SeFa's directions are about the convolutions' styles. StyleGAN3's input
    affine (ws 0) sets a rotation and shift of the Fourier features rather than a style, so it is left out too.
    """
    syn = G.synthesis
    if isinstance(syn, stylegan3.SynthesisNetwork):
        return [(i + 1, layer.affine) for i, layer in enumerate(syn.layers()) if not layer.is_torgb]
    if isinstance(syn, stylegan1.SynthesisNetwork):
        blocks = stages(syn, syn.block_resolutions)
        return [(i, layer.affine) for i, layer in enumerate(m for b in blocks for m in (b.conv0, b.conv1))]
    if not hasattr(syn, "blocks"):
        raise DirectionError("directions need a StyleGAN1, StyleGAN2 or StyleGAN3 generator")
    out, start = [], 0
    for block in syn.blocks():
        convs = block.modulated_layers()[: block.num_conv]
        out += [(start + i, layer.affine) for i, layer in enumerate(convs)]
        start += block.num_conv
    return out


def parse_layers(G, spec: str | Sequence[int] | None) -> tuple[int, ...]:
    """ws indices from '0-5', 'coarse', 'middle,fine', 'all' or a list; None or 'all' = every ws of G.

    Groups follow the paper's split by resolution (see editing.figures.layer_groups and describe_groups).
    """
    from stylegan.editing.figures import describe_groups, layer_groups

    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return tuple(range(G.num_ws))
    if not isinstance(spec, str):
        return _checked_layers(G, list(spec))
    groups, out = layer_groups(G), []
    for part in (p.strip().lower() for p in spec.split(",")):
        if part in groups:
            if not groups[part]:
                raise DirectionError(f"this {G.img_resolution}² model has no {part} layers ({describe_groups(G)})")
            out += groups[part]
        elif re.fullmatch(r"\d+(-\d+)?", part):
            out += parse_range(part, what="layers")
        else:
            raise DirectionError(
                f"bad layers {spec!r}: use ws indices like 0-5, 'all', or coarse/middle/fine ({describe_groups(G)})"
            )
    return _checked_layers(G, out)


def _checked_layers(G, layers: list[int]) -> tuple[int, ...]:
    outside = sorted({i for i in layers if not 0 <= int(i) < G.num_ws})
    if outside:
        raise DirectionError(f"layers {outside} out of range: this model has layers (ws indices) 0..{G.num_ws - 1}")
    if not layers:
        raise DirectionError("no layers selected")
    return tuple(sorted({int(i) for i in layers}))


@torch.no_grad()
def sample_w(G, num: int, *, seed: int = SAMPLE_SEED, batch_size: int = 4096) -> np.ndarray:
    """[num, w_dim] float64 w = mapping(z) (first ws, no truncation); conditional models: uniform random classes."""
    rng = np.random.RandomState(seed)
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        z = torch.from_numpy(rng.randn(n, G.z_dim)).float()
        c = torch.zeros([n, G.c_dim])
        if G.c_dim:
            c[torch.arange(n), torch.from_numpy(rng.randint(0, G.c_dim, n))] = 1
        dev = next(G.parameters()).device
        out.append(G.mapping(z.to(dev), c.to(dev))[:, 0].double().cpu().numpy())
    return np.concatenate(out)


def _scales(G, vectors: np.ndarray, samples: int = SCALE_SAMPLES) -> np.ndarray:
    """[K] standard deviation of sampled w projected on each unit row of vectors [K, w_dim]."""
    return (sample_w(G, samples) @ vectors.T).std(axis=0)


def _canonical_signs(vectors: np.ndarray) -> np.ndarray:
    """Rows with the sign fixed so each row's largest-magnitude entry is positive (eigen/SVD signs are arbitrary)."""
    peak = vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)]
    return vectors * np.where(peak < 0, -1.0, 1.0)[:, None]


# ------------------------------------------------------------------------------------------------- methods


def sefa_matrix(G, layers: Sequence[int] | None = None) -> np.ndarray:
    """A [S, w_dim] float64: the style-affine weights of the layers' styles, each row scaled to unit length."""
    chosen = set(range(G.num_ws) if layers is None else layers)
    rows = [affine.weight.detach().double().cpu() for idx, affine in style_affines(G) if idx in chosen]
    if not rows:
        raise DirectionError(f"layers {format_range(sorted(chosen))} carry no convolution styles for SeFa")
    A = torch.cat(rows).numpy()
    return A / np.linalg.norm(A, axis=1, keepdims=True).clip(1e-12)


def sefa(G, *, layers: Sequence[int] | None = None, num: int | None = None) -> DirectionSet:
    """SeFa directions of the styles at `layers` (default: all): eigenvectors of AᵀA, largest eigenvalue first."""
    A = sefa_matrix(G, layers)
    values, vectors = np.linalg.eigh(A.T @ A)  # ascending; columns are eigenvectors
    order = np.argsort(values)[::-1][: num or A.shape[1]]
    rows = _canonical_signs(vectors[:, order].T)
    kept = tuple(range(G.num_ws)) if layers is None else tuple(sorted(layers))
    return _make_set(G, rows, values[order], "sefa", kept, {})


def ganspace(G, *, samples: int = GANSPACE_SAMPLES, layers: Sequence[int] | None = None) -> DirectionSet:
    """GANSpace: principal axes of `samples` sampled w, largest variance first (values: the variances).

    layers: where the components apply (they are computed from w, the same for every layer of a W sample).
    """
    if samples < 2 * G.w_dim:
        raise DirectionError(f"GANSpace needs at least {2 * G.w_dim} samples (2 x w_dim), got {samples}")
    w = sample_w(G, samples)
    centred = w - w.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variances = singular**2 / (samples - 1)
    rows = _canonical_signs(vt)
    kept = tuple(range(G.num_ws)) if layers is None else tuple(sorted(layers))
    return _make_set(G, rows, variances, "ganspace", kept, {"samples": samples}, scales=np.sqrt(variances))


def fit_boundary(w: np.ndarray, labels: np.ndarray, *, l2: float = 1e-3, steps: int = 200) -> tuple[np.ndarray, float]:
    """Logistic regression on w [N, w_dim] with labels [N] in {0, 1}: (unit normal [w_dim] towards 1, accuracy).

    w is standardised first (so the L2 penalty treats every axis alike); the normal is mapped back to W and
    normalised. Trained with L-BFGS in float64.
    """
    labels = np.asarray(labels).astype(np.float64)
    if labels.min() == labels.max():
        raise DirectionError("a boundary needs samples of both labels; got only one")
    mean, std = w.mean(axis=0), w.std(axis=0).clip(1e-12)
    x = torch.from_numpy((w - mean) / std)
    y = torch.from_numpy(labels)
    coef = torch.zeros(w.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([coef], max_iter=steps, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        logits = x @ coef[:-1] + coef[-1]
        value = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * coef[:-1].square().sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        accuracy = float(((x @ coef[:-1] + coef[-1] > 0).double() == y).double().mean())
    normal = coef[:-1].detach().numpy() / std  # d logit / d w
    return normal / np.linalg.norm(normal), accuracy


def boundary(
    G,
    w: np.ndarray,
    labels: np.ndarray,
    *,
    layers: Sequence[int] | None = None,
    label: str = "",
) -> DirectionSet:
    """One direction: the normal of a linear boundary between labels 0 and 1 of samples w [N, w_dim], towards 1."""
    normal, accuracy = fit_boundary(np.asarray(w, dtype=np.float64), np.asarray(labels))
    kept = tuple(range(G.num_ws)) if layers is None else tuple(sorted(layers))
    info = {"samples": int(len(w)), "label": label, "positives": int(np.sum(labels))}
    return _make_set(G, normal[None], np.array([accuracy]), "boundary", kept, info)


def score_labels(scores: np.ndarray, ratio: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """InterFaceGAN's selection: (indices, labels) of the top and bottom `ratio` of scores [N] (labels 1 and 0)."""
    if not 0 < ratio <= 0.5:
        raise DirectionError(f"ratio {ratio} out of range: use a fraction in (0, 0.5]")
    order = np.argsort(scores)
    k = max(1, int(len(scores) * ratio))
    index = np.concatenate([order[-k:], order[:k]])
    return index, np.concatenate([np.ones(k), np.zeros(k)])


@torch.no_grad()
def classifier_boundary(
    G,
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    samples: int = 2000,
    ratio: float = 0.25,
    seed: int = SAMPLE_SEED,
    label: str = "score",
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
) -> DirectionSet:
    """Boundary from a classifier: score_fn(images float [N, C, H, W] in [-1, 1]) -> scores [N].

    Samples `samples` ws (seeds seed, seed+1, ...), scores their images and fits the boundary between the top and
    bottom `ratio` of the scores.
    """
    ws = sample_ws(G, range(seed, seed + samples))
    scores = torch.cat(
        [score_fn(G.synthesis(part, noise_mode=NOISE_MODE)).float().cpu() for part in ws.split(batch_size)]
    )
    index, labels = score_labels(scores.numpy(), ratio)
    return boundary(G, ws[index, 0].double().cpu().numpy(), labels, layers=layers, label=label)


def classifier_scores(spec: str, device: torch.device | str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """score_fn for a classifier spec. fmnist:K: the shipped Fashion-MNIST classifier's log-odds of class K,
    logit_K - logsumexp(other logits), from images float [N, C, H, W] in [-1, 1]."""
    from stylegan.metrics.fmnist import FMNIST_CLASSES, load_fmnist_classifier

    m = re.fullmatch(r"fmnist:(\d+)", spec.strip())
    if not m or int(m.group(1)) >= len(FMNIST_CLASSES):
        raise DirectionError(f"classifier {spec!r}: use fmnist:K with K in 0..{len(FMNIST_CLASSES) - 1}")
    k, net = int(m.group(1)), load_fmnist_classifier(device=device)
    others = [i for i in range(len(FMNIST_CLASSES)) if i != k]

    def log_odds(img: torch.Tensor) -> torch.Tensor:
        logits = net(img)  # [N, 10]
        return logits[:, k] - logits[:, others].logsumexp(dim=1)

    return log_odds


@torch.no_grad()
def class_boundary(
    G, class_idx: int, *, samples: int = 2000, seed: int = SAMPLE_SEED, layers: Sequence[int] | None = None
) -> DirectionSet:
    """Boundary of a conditional model's class `class_idx` (dataset.json labels) against the other classes."""
    if G.c_dim == 0:
        raise DirectionError("this model is unconditional (c_dim=0): use a classifier for labels instead")
    if not 0 <= class_idx < G.c_dim:
        raise DirectionError(f"class {class_idx} out of range: this model has classes 0..{G.c_dim - 1}")
    rng = np.random.RandomState(seed)
    classes = np.where(rng.rand(samples) < 0.5, class_idx, rng.randint(0, G.c_dim, samples))
    c = torch.nn.functional.one_hot(torch.from_numpy(classes), G.c_dim).float()
    z = seeds_to_z(range(seed, seed + samples), G.z_dim)
    dev = next(G.parameters()).device
    w = G.mapping(z.to(dev), c.to(dev))[:, 0].double().cpu().numpy()
    return boundary(G, w, classes == class_idx, layers=layers, label=f"class {class_idx}")


@torch.no_grad()
def sample_ws(G, seeds: Sequence[int], class_idx: int | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of the seeds, untruncated (class_idx for conditional models, else none)."""
    from stylegan.editing.generate import compute_ws

    dev = next(G.parameters()).device
    return compute_ws(G, list(seeds), class_idx=class_idx, device=dev)


def _make_set(G, rows, values, method, layers, info, scales=None) -> DirectionSet:
    rows = np.asarray(rows, dtype=np.float64)
    return DirectionSet(
        vectors=rows.astype(np.float32),
        values=np.asarray(values, dtype=np.float64),
        scales=np.asarray(_scales(G, rows) if scales is None else scales, dtype=np.float64),
        method=method,
        layers=tuple(int(i) for i in layers),
        model_hash=model_hash(G),
        num_ws=int(G.num_ws),
        info=info,
    )


# -------------------------------------------------------------------------------------------------- files


def save_directions(dirs: DirectionSet, path: str | Path) -> Path:
    """Writes a DirectionSet as .npz (atomically); the parent folder is created."""
    from stylegan.io.native import atomic_write

    meta = {
        "format": FORMAT_VERSION,
        "method": dirs.method,
        "layers": list(dirs.layers),
        "model_hash": dirs.model_hash,
        "w_dim": dirs.w_dim,
        "num_ws": dirs.num_ws,
        **dirs.info,
    }
    arrays = {
        "directions": dirs.vectors,
        "values": dirs.values,
        "scales": dirs.scales,
        "meta": np.array(json.dumps(meta)),
    }

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write)
    return Path(path)


def load_directions(path: str | Path) -> DirectionSet:
    """Reads a file written by save_directions (no pickle). DirectionError when it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            vectors, values, scales = data["directions"], data["values"], data["scales"]
            meta = json.loads(str(data["meta"]))
    except FileNotFoundError:
        raise DirectionError(f"{path}: no such direction file") from None
    except (OSError, KeyError, ValueError) as err:
        raise DirectionError(f"{path}: not a direction file (.npz from `stylegan directions`): {err}") from None
    if vectors.ndim != 2 or vectors.shape[1] != meta.get("w_dim"):
        raise DirectionError(f"{path}: directions of shape {list(vectors.shape)} disagree with its w_dim")
    extra = {k: v for k, v in meta.items() if k not in ("format", "method", "layers", "model_hash", "w_dim", "num_ws")}
    return DirectionSet(
        vectors.astype(np.float32),
        values,
        scales,
        str(meta["method"]),
        tuple(meta["layers"]),
        str(meta["model_hash"]),
        int(meta["num_ws"]),
        extra,
    )


def directions_cache_dir() -> Path:
    """Cached directions, beside the model cache: $STYLEGAN_CACHE/directions (else ~/.cache/stylegan/directions)."""
    from stylegan.io.cache import model_cache_dir

    return model_cache_dir().parent / "directions"


def cached_ganspace(G, *, samples: int = GANSPACE_SAMPLES, cache_dir: str | Path | None = None) -> DirectionSet:
    """GANSpace directions of G, computed once per model hash and sample count, then read from the cache."""
    folder = Path(cache_dir) if cache_dir is not None else directions_cache_dir()
    path = folder / model_hash(G) / f"ganspace-{samples}.npz"
    if path.is_file():
        try:
            return load_directions(path)
        except DirectionError:
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
    dirs = ganspace(G, samples=samples)
    save_directions(dirs, path)
    return dirs


# ---------------------------------------------------------------------------------------------- by name


def resolve_direction(
    G, spec: str, *, ganspace_samples: int = GANSPACE_SAMPLES, cache_dir: str | Path | None = None
) -> Direction:
    """A direction from its name: sefa:K[@LAYERS], ganspace:K, boundary:FILE[:K], FILE[:K] (an .npz path).

    Checks that the direction fits G (w_dim, num_ws); a file made for another model (hash differs) is allowed,
    since fine-tuned models share their W, but its name says so. DirectionError on anything unknown.
    """
    spec = spec.strip()
    method, _, rest = spec.partition(":")
    if method in ("sefa", "ganspace"):
        index, layers = _index_and_layers(G, spec, rest)
        if method == "sefa":
            dirs = sefa(G, layers=layers)
        else:
            dirs = cached_ganspace(G, samples=ganspace_samples, cache_dir=cache_dir)
            dirs = dirs if layers is None else _with_layers(dirs, layers)
        return dirs.pick(index, spec)
    path_spec = rest if method == "boundary" else spec
    return _from_file(G, path_spec, spec)


def _index_and_layers(G, spec: str, rest: str) -> tuple[int, tuple[int, ...] | None]:
    m = re.fullmatch(r"(\d+)(?:@(.+))?", rest)
    if not m:
        raise DirectionError(f"bad direction {spec!r}: use sefa:K or ganspace:K (K = 0, 1, ...), optionally @LAYERS")
    return int(m.group(1)), parse_layers(G, m.group(2)) if m.group(2) else None


def _with_layers(dirs: DirectionSet, layers: tuple[int, ...]) -> DirectionSet:
    from dataclasses import replace

    return replace(dirs, layers=layers)


def _from_file(G, path_spec: str, spec: str) -> Direction:
    path, index = Path(path_spec), 0
    m = re.fullmatch(r"(.+):(\d+)", path_spec)
    if not path.is_file() and m:
        path, index = Path(m.group(1)), int(m.group(2))
    if not path.is_file():
        raise DirectionError(
            f"unknown direction {spec!r}: use sefa:K, ganspace:K, boundary:FILE or the path of a direction .npz"
        )
    dirs = load_directions(path)
    check_fits(G, dirs, path)
    note = "" if dirs.model_hash == model_hash(G) else f" (made for model {dirs.model_hash})"
    return dirs.pick(index, f"{path.name}:{index}{note}" if len(dirs) > 1 else f"{path.name}{note}")


def check_fits(G, dirs: DirectionSet, path: str | Path) -> None:
    """DirectionError when a loaded set's w_dim, num_ws or layers do not fit G."""
    if dirs.w_dim != G.w_dim:
        raise DirectionError(f"{path}: directions have w_dim {dirs.w_dim}, this model has w_dim {G.w_dim}")
    if dirs.num_ws != G.num_ws or max(dirs.layers, default=0) >= G.num_ws:
        raise DirectionError(f"{path}: directions were made for {dirs.num_ws} ws, this model has {G.num_ws}")
