"""The metric registry (NVIDIA's names and sample counts) and `calc_metric`, the one entry point."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from stylegan.images import to_uint8
from stylegan.metrics import features as feat
from stylegan.metrics.features import Detector


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its kind, the number of generated images, how many real images (None: all) and options."""

    kind: str  # fid | kid | pr | is | ppl | ls | eq
    num_gen: int
    max_real: int | None = None
    detector: str = "inception"  # inception | inception_logits | vgg16 | fmnist | lpips | none
    options: dict = field(default_factory=dict)

    @property
    def needs_data(self) -> bool:
        return self.kind in ("fid", "kid", "pr")


def _ppl(space: str, sampling: str, crop: bool) -> MetricSpec:
    opts = dict(space=space, sampling=sampling, crop=crop, epsilon=1e-4)
    return MetricSpec("ppl", 50000, detector="lpips", options=opts)


KID_OPTS = dict(num_subsets=100, max_subset_size=1000)
METRICS: dict[str, MetricSpec] = {
    # ADA-PT (stylegan2-ada-pytorch metrics/metric_main.py)
    "fid50k_full": MetricSpec("fid", 50000),
    "kid50k_full": MetricSpec("kid", 50000, max_real=1_000_000, options=KID_OPTS),
    "pr50k3_full": MetricSpec("pr", 50000, max_real=200_000, detector="vgg16", options=dict(k=3)),
    "is50k": MetricSpec("is", 50000, detector="inception_logits", options=dict(num_splits=10)),
    "fid50k": MetricSpec("fid", 50000, max_real=50000),
    "kid50k": MetricSpec("kid", 50000, max_real=50000, options=KID_OPTS),
    "pr50k3": MetricSpec("pr", 50000, max_real=50000, detector="vgg16", options=dict(k=3)),
    "ppl2_wend": _ppl("w", "end", crop=False),
    "ppl_zfull": _ppl("z", "full", crop=True),
    "ppl_wfull": _ppl("w", "full", crop=True),
    "ppl_zend": _ppl("z", "end", crop=True),
    "ppl_wend": _ppl("w", "end", crop=True),
    # StyleGAN3 paper (appendix E): PSNR in dB of g(moved input) against the moved g(input); StyleGAN3 only.
    "eqt50k_int": MetricSpec("eq", 50000, detector="none", options=dict(mode="int")),
    "eqt50k_frac": MetricSpec("eq", 50000, detector="none", options=dict(mode="frac")),
    "eqr50k": MetricSpec("eq", 50000, detector="none", options=dict(mode="rot")),
    # StyleGAN paper: 200k generated, the most confident half kept; labels from our Fashion-MNIST classifier.
    "ls": MetricSpec("ls", 200_000, detector="fmnist_probs", options=dict(keep=0.5)),
    # Offline domain metrics on the shipped Fashion-MNIST classifier.
    "fid_fmnist": MetricSpec("fid", 10000, detector="fmnist"),
    "kid_fmnist": MetricSpec("kid", 10000, detector="fmnist", options=KID_OPTS),
    "pr3_fmnist": MetricSpec("pr", 10000, detector="fmnist", options=dict(k=3)),
}


def list_metrics() -> list[str]:
    """Names accepted by `calc_metric`."""
    return list(METRICS)


class MissingDependencyError(ImportError):
    """A metric needs a package that is not installed; the message says which extra to install."""


_PACKAGES = {"fid": ("scipy",)}  # metric kind -> importable modules it needs beyond the core install


def check_metrics_ready(names: list[str], weights: dict | None = None, download: bool = False) -> None:
    """Checks, before any work, that `names` are known and their packages and weights files are there.

    Args:
        names: metric names (keys of METRICS).
        weights: detector name -> weights path or None (as calc_metric's inception/vgg16/lpips/fmnist).
        download: fetch missing weights now (see weights.resolve_weights) instead of refusing.
    Raises:
        ValueError (unknown name), MissingDependencyError, MissingWeightsError: one line naming the fix.
    """
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    for name in names:
        _check_packages(name)
    weights = weights or {}
    for detector in sorted({METRICS[n].detector for n in names}):
        _check_detector_weights(detector, weights, download)


def _check_packages(name: str) -> None:
    import importlib.util

    missing = [m for m in _PACKAGES.get(METRICS[name].kind, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"metric {name} needs {', '.join(missing)}, which is not installed: pip install 'stylegan[metrics]'"
        )


def _check_detector_weights(detector: str, weights: dict, download: bool) -> None:
    """Resolves (or downloads) every weights file the detector will load; raises MissingWeightsError."""
    from stylegan.metrics import weights as w

    if detector.startswith("inception"):
        w.resolve_weights(w.INCEPTION_WEIGHTS, weights.get("inception"), download=download)
    elif detector == "vgg16":
        w.resolve_weights(w.VGG16_WEIGHTS, weights.get("vgg16"), download=download)
    elif detector == "lpips" and weights.get("lpips") is not None:
        w.resolve_weights(w.VGG16_WEIGHTS, weights["lpips"])
    elif detector == "lpips":
        from stylegan.metrics.lpips import _lpips_package_heads

        w.resolve_weights(w.VGG16_WEIGHTS, weights.get("vgg16"), download=download)
        w.resolve_weights(w.LPIPS_VGG_LIN_WEIGHTS, _lpips_package_heads(), download=download)
    elif detector.startswith("fmnist"):
        from stylegan.metrics.fmnist import default_fmnist_weights

        path = Path(weights.get("fmnist") or default_fmnist_weights())
        if not path.is_file():
            raise w.MissingWeightsError(f"Fashion-MNIST classifier weights not found: {path}")


@dataclass
class MetricOptions:
    """What a metric needs besides its spec: networks, data, device and the weights files of the detectors.

    With num_gpus > 1 every rank of an already joined process group calls the metric with its own `rank`
    (and its own device); the images are split over the ranks, the features gathered, and the result
    computed on rank 0 (other ranks get empty results).
    """

    G: torch.nn.Module | None
    dataset: object = None
    device: torch.device = torch.device("cpu")
    batch_size: int = 32
    progress: bool = True
    weights: dict = field(default_factory=dict)  # detector name -> path (None: cache/shipped)
    download: bool = False  # fetch missing weights (progress bar, sha256 check) instead of refusing
    use_cache: bool = True
    seed: int = 0
    rank: int = 0
    num_gpus: int = 1
    _detectors: dict = field(default_factory=dict)
    _features: dict = field(default_factory=dict)  # shared by metrics of one calc_metrics call

    def detector(self, name: str) -> Detector:
        if name not in self._detectors:
            self._detectors[name] = _load_detector(name, self.weights, self.device, self.download)
        return self._detectors[name]

    @property
    def shard(self) -> dict:
        """rank/world keywords for the feature functions."""
        return dict(rank=self.rank, world=self.num_gpus)


def _weights_tag(path) -> str:
    if path is None:
        return "default"
    st = os.stat(path)
    return f"{Path(path).name}-{st.st_size}-{st.st_mtime_ns}"


def _load_detector(name: str, weights: dict, device: torch.device, download: bool = False) -> Detector:
    """Build a detector: its network (weights from `weights`, the cache or the package) and its output."""
    if name in ("inception", "inception_logits"):
        from stylegan.metrics.inception import load_inception

        net = load_inception(weights.get("inception"), device=device, download=download)
        fn = net.features if name == "inception" else (lambda x: net.logits(net.features(x)))
        return Detector(f"{name}-{_weights_tag(weights.get('inception'))}", fn, device)
    if name == "vgg16":
        from stylegan.metrics.lpips import load_vgg16_classifier

        net = load_vgg16_classifier(weights.get("vgg16"), device=device, download=download)
        return Detector(f"vgg16-{_weights_tag(weights.get('vgg16'))}", net, device)
    if name in ("fmnist", "fmnist_probs"):
        from stylegan.metrics.fmnist import load_fmnist_classifier

        net = load_fmnist_classifier(weights.get("fmnist"), device=device)
        fn = (
            (lambda x: net.features(x.float() / 127.5 - 1))
            if name == "fmnist"
            else (lambda x: net(x.float() / 127.5 - 1).softmax(dim=1))
        )
        from stylegan.metrics.fmnist import default_fmnist_weights

        tag = _weights_tag(weights.get("fmnist") or default_fmnist_weights())  # a retrained asset: new cache
        return Detector(f"{name}-pooled-{tag}", fn, device)  # "pooled": features() changed, old caches differ
    if name == "lpips":
        from stylegan.metrics.lpips import load_lpips_vgg

        net = load_lpips_vgg(weights.get("lpips"), vgg_path=weights.get("vgg16"), device=device, download=download)
        return Detector("lpips", net, device)
    raise ValueError(f"unknown detector {name!r}")


# ---- one function per kind ----


def _real_and_gen(spec: MetricSpec, opts: MetricOptions, num_gen: int) -> tuple[np.ndarray, np.ndarray]:
    det = opts.detector(spec.detector)
    real_key, gen_key = ("real", spec.detector, spec.max_real), ("gen", spec.detector, num_gen)
    if real_key not in opts._features:
        opts._features[real_key] = feat.real_features(
            det,
            opts.dataset,
            max_items=spec.max_real,
            batch_size=opts.batch_size,
            use_cache=opts.use_cache,
            progress=opts.progress,
            **opts.shard,
        )
    if gen_key not in opts._features:
        opts._features[gen_key] = _generated_features(det, opts, num_gen)
    return opts._features[real_key], opts._features[gen_key]


def _generated_features(det, opts: MetricOptions, num_gen: int):
    """The detector's features of num_gen images of opts.G (this rank's share), seeded by opts.seed."""
    return feat.generated_features(
        det,
        opts.G,
        num=num_gen,
        batch_size=opts.batch_size,
        device=opts.device,
        seed=opts.seed,
        progress=opts.progress,
        **opts.shard,
    )


def _run_fid(name: str, spec: MetricSpec, opts: MetricOptions, num_gen: int) -> dict:
    from stylegan.metrics.fid import fid_from_features

    real, gen = _real_and_gen(spec, opts, num_gen)
    return {name: fid_from_features(real, gen)} if opts.rank == 0 else {}


def _run_kid(name: str, spec: MetricSpec, opts: MetricOptions, num_gen: int) -> dict:
    from stylegan.metrics.kid import kid_from_features

    real, gen = _real_and_gen(spec, opts, num_gen)
    return {name: kid_from_features(real, gen, seed=opts.seed, **spec.options)} if opts.rank == 0 else {}


def _run_pr(name: str, spec: MetricSpec, opts: MetricOptions, num_gen: int) -> dict:
    from stylegan.metrics.precision_recall import precision_recall

    real, gen = _real_and_gen(spec, opts, num_gen)
    if opts.rank != 0:
        return {}
    pr = precision_recall(torch.from_numpy(real), torch.from_numpy(gen), **spec.options)
    return {f"{name}_precision": pr["precision"], f"{name}_recall": pr["recall"]}


def _run_is(name: str, spec: MetricSpec, opts: MetricOptions, num_gen: int) -> dict:
    from stylegan.metrics.inception_score import inception_score

    det = opts.detector(spec.detector)
    logits = _generated_features(det, opts, num_gen)
    if opts.rank != 0:
        return {}
    mean, std = inception_score(logits, **spec.options)
    return {f"{name}_mean": mean, f"{name}_std": std}


def _run_ppl(name: str, spec: MetricSpec, opts: MetricOptions, num_gen: int) -> dict:
    from tqdm import tqdm

    from stylegan.metrics.ppl import filter_and_mean, ppl_distances

    lpips = opts.detector("lpips").fn
    mine = feat.shard(-(-num_gen // opts.batch_size), **opts.shard)  # global batch indices
    dist = [np.zeros((0,), np.float32)]
    total = feat.num_latents(num_gen, opts.batch_size, **opts.shard)
    with tqdm(total=total, desc=name, unit="img", disable=not opts.progress, leave=False) as bar:
        for b in mine:
            n = min(opts.batch_size, num_gen - b * opts.batch_size)
            gen = torch.Generator().manual_seed(_batch_seed(opts.seed, b))  # the same for any number of ranks
            c = feat.random_labels(opts.G, n, gen).to(opts.device)
            dist.append(ppl_distances(opts.G, lpips, c, generator=gen, **spec.options).float().cpu().numpy())
            bar.update(n)
    dist_all = feat.gather_rows(np.concatenate(dist), opts.rank, opts.num_gpus, opts.device)
    return {name: filter_and_mean(dist_all.astype(np.float64))} if opts.rank == 0 else {}


def _batch_seed(seed: int, batch: int) -> int:
    """A seed of its own for each batch of a metric, so a rank can start anywhere."""
    return (seed * 1_000_003 + batch) % (2**63)


@torch.no_grad()
def _run_ls(name: str, spec: MetricSpec, opts: MetricOptions, num_gen: int) -> dict:
    from stylegan.metrics.linear_separability import linear_separability

    det = opts.detector(spec.detector)
    zs, ws, probs = [], [], []
    for z, c in feat.latent_batches(opts.G, num_gen, opts.batch_size, opts.seed, **opts.shard):
        w = opts.G.mapping(z.to(opts.device), c.to(opts.device))  # [n, num_ws, w_dim]
        probs.append(det(to_uint8(opts.G.synthesis(w, noise_mode="const").float())).cpu())
        zs.append(z)
        ws.append(w[:, 0].cpu())
    z_all, w_all, p_all = (_gather(parts, opts) for parts in (zs, ws, probs))
    if opts.rank != 0:
        return {}
    return {
        f"{name}_z": linear_separability(z_all, p_all, **spec.options),
        f"{name}_w": linear_separability(w_all, p_all, **spec.options),
    }


def _gather(parts: list[torch.Tensor], opts: MetricOptions) -> torch.Tensor:
    """Rows of every rank, in global order."""
    local = torch.cat(parts).float().numpy() if parts else np.zeros((0,), np.float32)
    return torch.from_numpy(feat.gather_rows(local, opts.rank, opts.num_gpus, opts.device))


def _run_eq(name: str, spec: MetricSpec, opts: MetricOptions, num_gen: int) -> dict:
    from tqdm import tqdm

    from stylegan.metrics.equivariance import equivariance_psnr, psnr

    mine = feat.shard(-(-num_gen // opts.batch_size), **opts.shard)
    total = feat.num_latents(num_gen, opts.batch_size, **opts.shard)
    with tqdm(total=total, desc=name, unit="img", disable=not opts.progress, leave=False) as bar:
        rows = equivariance_psnr(
            opts.G, spec.options["mode"], num_gen, opts.batch_size, opts.device,
            batch_seed=lambda b: _batch_seed(opts.seed, b), batches=mine, progress=bar.update,
        )  # fmt: skip
    rows = feat.gather_rows(rows.astype(np.float32), opts.rank, opts.num_gpus, opts.device).reshape(-1, 2)
    return {name: psnr(float(rows[:, 0].sum()), float(rows[:, 1].sum()))} if opts.rank == 0 else {}


_RUNNERS = {
    "fid": _run_fid, "kid": _run_kid, "pr": _run_pr, "is": _run_is, "ppl": _run_ppl, "ls": _run_ls, "eq": _run_eq,
}  # fmt: skip


def calc_metric(
    name: str,
    *,
    G,
    dataset=None,
    num_gen: int | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    progress: bool = True,
    inception: str | os.PathLike | None = None,
    vgg16: str | os.PathLike | None = None,
    lpips: str | os.PathLike | None = None,
    fmnist: str | os.PathLike | None = None,
    use_cache: bool = True,
    seed: int = 0,
    rank: int = 0,
    num_gpus: int = 1,
    download: bool = False,
    options: MetricOptions | None = None,
) -> dict:
    """Compute one registered metric of generator G against `dataset`.

    Args:
        name: a key of METRICS (fid50k_full, kid50k_full, pr50k3_full, is50k, ppl2_wend, ls, fid_fmnist...).
        G: NVIDIA-API generator (z_dim, c_dim, mapping, synthesis, G(z, c, truncation_psi, noise_mode)).
        dataset: a folder/.zip path, a map-style Dataset of uint8 [C, H, W] images (or (image, label)
            pairs), or an iterable of uint8 [N, C, H, W] batches. Needed by fid/kid/pr.
        num_gen: generated images (default: the metric's count, e.g. 50000).
        inception, vgg16, lpips, fmnist: weights files (default: the cache, or the classifier shipped with
            the package). A missing file raises MissingWeightsError naming it, unless `download` is True.
        download: fetch missing weights into the cache (progress bar, sha256 check).
        rank, num_gpus: this process's rank in a joined process group of num_gpus processes, all calling
            with the same arguments (each its own device); the images are split over the ranks.
        options: reuse loaded detectors across several calls (see `calc_metrics`).

    Returns:
        dict(results={name: value, ...}, metric=name, total_time=seconds, num_gen=N); results is empty on
        ranks other than 0.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    _check_packages(name)
    spec = METRICS[name]
    if spec.needs_data and dataset is None:
        raise ValueError(f"metric {name} needs a dataset of real images (--data)")
    if options is None:
        weights = dict(inception=inception, vgg16=vgg16, lpips=lpips, fmnist=fmnist)
        options = MetricOptions(
            G=G,
            dataset=dataset,
            device=torch.device(device),
            batch_size=batch_size,
            progress=progress,
            weights=weights,
            use_cache=use_cache,
            seed=seed,
            rank=rank,
            num_gpus=num_gpus,
            download=download,
        )
    num_gen = spec.num_gen if num_gen is None else int(num_gen)
    start = time.time()
    was_training = G.training
    G.eval()
    try:
        results = _RUNNERS[spec.kind](name, spec, options, num_gen)
    finally:
        G.train(was_training)
    return dict(results=results, metric=name, total_time=time.time() - start, num_gen=num_gen)


def iter_metrics(names: list[str], **kwargs) -> Iterator[dict]:
    """Yield `calc_metric(name, **kwargs)` for each name as it is done; detectors and features are shared."""
    keys = ("inception", "vgg16", "lpips", "fmnist")
    opts = MetricOptions(
        G=kwargs["G"],
        dataset=kwargs.get("dataset"),
        device=torch.device(kwargs.get("device", "cpu")),
        batch_size=kwargs.get("batch_size", 32),
        progress=kwargs.get("progress", True),
        weights={k: kwargs.get(k) for k in keys},
        use_cache=kwargs.get("use_cache", True),
        seed=kwargs.get("seed", 0),
        rank=kwargs.get("rank", 0),
        num_gpus=kwargs.get("num_gpus", 1),
        download=kwargs.get("download", False),
    )
    for name in names:
        yield calc_metric(name, **kwargs, options=opts)


def calc_metrics(names: list[str], **kwargs) -> list[dict]:
    """`calc_metric` for several names (same keyword arguments); detectors and features load once."""
    return list(iter_metrics(names, **kwargs))
