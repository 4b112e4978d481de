"""Feature extraction for metrics: detectors, real images from any dataset, generated images, and the
on-disk cache of real-image features keyed by a hash of the dataset and the options."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylegan.metrics.weights import cache_dir

Images = torch.Tensor  # uint8 [N, C, H, W]


@dataclass
class Detector:
    """A feature network: uint8 images [N, C, H, W] -> features [N, D]. `key` names it for the cache."""

    key: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device

    @torch.no_grad()
    def __call__(self, img: Images) -> torch.Tensor:
        return self.fn(img.to(self.device)).float()


# ---- real images ----


def _as_uint8_batch(item) -> torch.Tensor:
    """One item of a dataset or iterable -> uint8 [N, C, H, W]; (image, label) tuples and arrays too."""
    if isinstance(item, (tuple, list)):
        item = item[0]
    img = torch.as_tensor(np.asarray(item)) if not isinstance(item, torch.Tensor) else item
    if img.dtype != torch.uint8:
        raise ValueError(f"dataset images must be uint8, got {img.dtype}")
    return img[None] if img.ndim == 3 else img


def open_dataset(data):
    """A path (folder or .zip) becomes an ImageFolderDataset (imported lazily); anything else stays."""
    if isinstance(data, (str, os.PathLike)):
        from stylegan.data import ImageFolderDataset

        return ImageFolderDataset(os.fspath(data))
    return data


def iterate_real(data, batch_size: int, max_items: int | None = None) -> Iterator[Images]:
    """uint8 batches [N, C, H, W] from a path, a map-style Dataset of [C, H, W] images, or batches."""
    dataset = open_dataset(data)
    map_style = isinstance(dataset, torch.utils.data.Dataset) and not isinstance(
        dataset, torch.utils.data.IterableDataset
    )
    if map_style:
        n = len(dataset) if max_items is None else min(len(dataset), max_items)
        for i in range(0, n, batch_size):
            yield torch.cat([_as_uint8_batch(dataset[j]) for j in range(i, min(i + batch_size, n))])
        return
    seen = 0
    for item in dataset:
        batch = _as_uint8_batch(item)
        if max_items is not None:
            batch = batch[: max_items - seen]
        seen += len(batch)
        if len(batch):
            yield batch
        if max_items is not None and seen >= max_items:
            return


def dataset_fingerprint(data) -> str | None:
    """A string that changes when the dataset changes (path, size, mtime), or None where it cannot be told."""
    path = data if isinstance(data, (str, os.PathLike)) else getattr(data, "path", None)
    if path is None or not os.path.exists(path):
        return None
    path = Path(path).resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = [(str(p.relative_to(path.parent)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    extra = _dataset_options(data) if not isinstance(data, (str, os.PathLike)) else []
    return hashlib.sha256(json.dumps([stats, repr(extra)]).encode()).hexdigest()


def _dataset_options(data) -> list:
    """What else decides the images of a dataset object: length, resolution, channels, subset and flips."""
    extra = [len(data) if hasattr(data, "__len__") else None]
    extra += [getattr(data, k, None) for k in ("resolution", "num_channels")]
    for k in ("_raw_idx", "_xflip"):  # ImageFolderDataset's subset and x-flip choice
        if getattr(data, k, None) is not None:
            extra.append(hashlib.sha256(np.asarray(getattr(data, k)).tobytes()).hexdigest())
    return extra


# ---- features ----


def extract(
    detector: Detector,
    batches: Iterable[Images],
    total: int | None = None,
    progress: bool = False,
    desc: str = "",
) -> np.ndarray:
    """Run the detector over uint8 batches -> features [N, D] float32."""
    from tqdm import tqdm

    out = []
    with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for batch in batches:
            out.append(detector(batch).cpu().numpy())
            bar.update(len(batch))
    return np.concatenate(out).astype(np.float32)


def real_features(
    detector: Detector,
    data,
    *,
    max_items: int | None,
    batch_size: int,
    use_cache: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Features [N, D] of up to `max_items` real images, cached on disk when the dataset has a fingerprint."""
    fingerprint = dataset_fingerprint(data) if use_cache else None
    cache_file = None
    if fingerprint is not None:
        key = hashlib.sha256(json.dumps([fingerprint, detector.key, max_items]).encode()).hexdigest()[:32]
        cache_file = cache_dir() / "features" / f"{detector.key}-{key}.npy"
        if cache_file.is_file():
            return np.load(cache_file)
    feats = extract(detector, iterate_real(data, batch_size, max_items), max_items, progress, "real")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npy")
        np.save(tmp, feats)
        tmp.replace(cache_file)
    return feats


# ---- generated images ----


def random_labels(G, n: int, generator: torch.Generator) -> torch.Tensor:
    """Uniformly random one-hot class labels [n, c_dim] (empty [n, 0] for unconditional G)."""
    c = torch.zeros(n, G.c_dim)
    if G.c_dim:
        c[torch.arange(n), torch.randint(G.c_dim, (n,), generator=generator)] = 1
    return c


def to_uint8(img: torch.Tensor) -> Images:
    """Generator output [N, C, H, W] in [-1, 1] -> uint8, rounding as NVIDIA does."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def iterate_generated(
    G, num: int, batch_size: int, device: torch.device, seed: int = 0, truncation_psi: float = 1.0
) -> Iterator[Images]:
    """uint8 batches [B, C, H, W] of `num` images from G(z, c) with noise_mode='const'."""
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, num, batch_size):
        n = min(batch_size, num - i)
        z = torch.randn(n, G.z_dim, generator=gen).to(device)
        c = random_labels(G, n, gen).to(device)
        yield to_uint8(G(z, c, truncation_psi=truncation_psi, noise_mode="const").float())


def generated_features(
    detector: Detector,
    G,
    *,
    num: int,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Features [num, D] of generated images."""
    return extract(detector, iterate_generated(G, num, batch_size, device, seed), num, progress, "generated")
