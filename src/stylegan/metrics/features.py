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

from stylegan.images import to_uint8
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


def iterate_real(
    data, batch_size: int, max_items: int | None = None, rank: int = 0, world: int = 1
) -> Iterator[Images]:
    """uint8 batches [N, C, H, W] from a path, a map-style Dataset of [C, H, W] images, or batches.

    With `world` processes a map-style dataset yields this rank's contiguous slice of its items; an iterable
    cannot be split, so rank 0 yields all of it and the other ranks nothing.
    """
    dataset = open_dataset(data)
    if _map_style(dataset):
        n = len(dataset) if max_items is None else min(len(dataset), max_items)
        part = shard(n, rank, world)
        for i in range(part.start, part.stop, batch_size):
            yield torch.cat([_as_uint8_batch(dataset[j]) for j in range(i, min(i + batch_size, part.stop))])
        return
    if rank != 0:
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


def _map_style(dataset) -> bool:
    return isinstance(dataset, torch.utils.data.Dataset) and not isinstance(dataset, torch.utils.data.IterableDataset)


def _num_real(data, max_items: int | None, rank: int, world: int) -> int | None:
    """How many real images this rank extracts (for the progress bar); None where unknown."""
    if not _map_style(data):
        return max_items if rank == 0 else 0
    n = len(data) if max_items is None else min(len(data), max_items)
    return len(shard(n, rank, world))


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


# ---- several processes ----


def shard(n: int, rank: int = 0, world: int = 1) -> range:
    """This rank's contiguous part of range(n); the parts of ranks 0..world-1, in order, make up range(n)."""
    return range(n * rank // world, n * (rank + 1) // world)


def gather_rows(x: np.ndarray, rank: int, world: int, device: torch.device) -> np.ndarray:
    """Every rank's rows [n_r, ...] concatenated in rank order (float32); x itself for one process.

    All ranks must call it (a collective); `device` carries the exchange (CUDA for NCCL).
    """
    if world == 1:
        return x
    from stylegan.distributed import ProcessInfo, all_gather_rows

    out = all_gather_rows(torch.from_numpy(x), ProcessInfo(rank, world, rank), device)
    return np.zeros((0,), np.float32) if out is None else out.numpy()


def _all_true(flag: bool, rank: int, world: int, device: torch.device) -> bool:
    """True when `flag` is true on every rank (a collective)."""
    if world == 1:
        return flag
    from stylegan.distributed import ProcessInfo, all_reduce_sum

    misses = torch.tensor([0.0 if flag else 1.0])
    return float(all_reduce_sum(misses, ProcessInfo(rank, world, rank), device)[0]) == 0


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
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0,), np.float32)


def real_features(
    detector: Detector,
    data,
    *,
    max_items: int | None,
    batch_size: int,
    use_cache: bool = True,
    progress: bool = False,
    rank: int = 0,
    world: int = 1,
) -> np.ndarray:
    """Features [N, D] of up to `max_items` real images, cached on disk when the dataset has a fingerprint.

    With `world` processes (a group already joined) each rank extracts its slice and every rank gets all
    features in dataset order; only rank 0 writes the cache, every rank reads it.
    """
    fingerprint = dataset_fingerprint(data) if use_cache else None
    cache_file = None
    if fingerprint is not None:
        key = hashlib.sha256(json.dumps([fingerprint, detector.key, max_items]).encode()).hexdigest()[:32]
        cache_file = cache_dir() / "features" / f"{detector.key}-{key}.npy"
    if _all_true(cache_file is not None and cache_file.is_file(), rank, world, detector.device):
        return np.load(cache_file)
    data = open_dataset(data)
    batches = iterate_real(data, batch_size, max_items, rank, world)
    local = extract(detector, batches, _num_real(data, max_items, rank, world), progress, "real")
    feats = gather_rows(local, rank, world, detector.device)
    if cache_file is not None and rank == 0:
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


def latent_batches(
    G, num: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(z [n, z_dim], c [n, c_dim]) on the CPU for this rank's batches of `num` latents.

    One seeded stream, batch after batch, decides the latents of global image i whatever the number of
    processes: rank r draws (cheaply) through the batches before its contiguous share and keeps its own.
    """
    gen = torch.Generator().manual_seed(seed)
    mine = shard(-(-num // batch_size), rank, world)  # global batch indices
    for b in range(mine.stop):
        n = min(batch_size, num - b * batch_size)
        z = torch.randn(n, G.z_dim, generator=gen)
        c = random_labels(G, n, gen)
        if b >= mine.start:
            yield z, c


def num_latents(num: int, batch_size: int, rank: int = 0, world: int = 1) -> int:
    """How many of the `num` latents `latent_batches` gives this rank."""
    mine = shard(-(-num // batch_size), rank, world)
    return max(0, min(mine.stop * batch_size, num) - mine.start * batch_size)


@torch.no_grad()
def iterate_generated(
    G,
    num: int,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    truncation_psi: float = 1.0,
    rank: int = 0,
    world: int = 1,
) -> Iterator[Images]:
    """uint8 batches [B, C, H, W] of (this rank's share of) `num` images from G(z, c), noise_mode='const'."""
    for z, c in latent_batches(G, num, batch_size, seed, rank, world):
        yield to_uint8(G(z.to(device), c.to(device), truncation_psi=truncation_psi, noise_mode="const").float())


def generated_features(
    detector: Detector,
    G,
    *,
    num: int,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    progress: bool = False,
    rank: int = 0,
    world: int = 1,
) -> np.ndarray:
    """Features [num, D] of generated images; with `world` processes each makes its share, all get all."""
    batches = iterate_generated(G, num, batch_size, device, seed, rank=rank, world=world)
    local = extract(detector, batches, num_latents(num, batch_size, rank, world), progress, "generated")
    return gather_rows(local, rank, world, detector.device)
