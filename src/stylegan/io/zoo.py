"""The model zoo: NVIDIA's published StyleGAN, StyleGAN2, StyleGAN2-ADA and StyleGAN3 models by name.

A name stands for one public URL. The URLs are those NVIDIA's READMEs give (NGC for StyleGAN3 and the PyTorch
StyleGAN2 exports, nvlabs-fi-cdn for the TensorFlow StyleGAN2 and the ADA-PyTorch release, Google Drive for the
2019 StyleGAN). `sha256` is filled where the digest is known; otherwise the cache records it on first download.

A mirror (`STYLEGAN_ZOO_MIRROR=http://host/path`, or `mirror=` in Python) replaces the scheme: the entry
`https://nvlabs-fi-cdn.nvidia.com/a/b.pkl` is fetched from `http://host/path/nvlabs-fi-cdn.nvidia.com/a/b.pkl`,
the layout `wget --force-directories` writes (Google Drive entries: `<mirror>/drive.google.com/<file name>`).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

MIRROR_ENV = "STYLEGAN_ZOO_MIRROR"

_SG3 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
_SG2_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_SG2_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_GDRIVE = "https://drive.google.com/uc?id="


@dataclass(frozen=True)
class ZooEntry:
    """One published model: where it is and what it is."""

    name: str
    url: str
    family: str  # stylegan1 | stylegan2 | stylegan3
    resolution: str  # "1024", "512x384"
    dataset: str
    sha256: str | None = None
    file_name: str | None = None  # for URLs whose path does not end in the file name (Google Drive)

    @property
    def filename(self) -> str:
        """The file name the download is stored under."""
        return self.file_name or urlsplit(self.url).path.rsplit("/", 1)[-1]


def _sg3() -> list[ZooEntry]:
    sets = [("ffhq", "1024"), ("ffhqu", "1024"), ("ffhqu", "256"), ("metfaces", "1024"), ("metfacesu", "1024")]
    sets.append(("afhqv2", "512"))
    entries = []
    for cfg in ("t", "r"):
        for data, res in sets:
            name = f"stylegan3-{cfg}-{data}-{res}"
            entries.append(ZooEntry(name, f"{_SG3}{name}x{res}.pkl", "stylegan3", res, data))
    return entries


def _sg2_pytorch() -> list[ZooEntry]:
    """StyleGAN2 re-exported for the PyTorch code bases (the list in the StyleGAN3 README)."""
    sets = "ffhq 1024,ffhq 512,ffhq 256,ffhqu 1024,ffhqu 256,metfaces 1024,metfacesu 1024,afhqv2 512,afhqcat 512,"
    sets += "afhqdog 512,afhqwild 512,brecahad 512,cifar10 32,celebahq 256,lsundog 256"
    pairs = [item.split() for item in sets.split(",")]
    return [
        ZooEntry(f"stylegan2-{data}-{res}", f"{_SG2_NGC}stylegan2-{data}-{res}x{res}.pkl", "stylegan2", res, data)
        for data, res in pairs
    ]


def _sg2_tf() -> list[ZooEntry]:
    """The TensorFlow StyleGAN2 paper models, config F."""
    sets = [("ffhq", "1024"), ("car", "512x384"), ("cat", "256"), ("church", "256"), ("horse", "256")]
    return [
        ZooEntry(f"stylegan2-tf-{data}-{res}", f"{_SG2_TF}stylegan2-{data}-config-f.pkl", "stylegan2", res, data)
        for data, res in sets
    ]


def _ada() -> list[ZooEntry]:
    """The stylegan2-ada-pytorch release (its README's `pretrained/` folder)."""
    sets = [("ffhq", "1024"), ("metfaces", "1024"), ("afhqcat", "512"), ("afhqdog", "512"), ("afhqwild", "512")]
    sets += [("brecahad", "512"), ("cifar10", "32")]
    return [ZooEntry(f"stylegan2-ada-{data}-{res}", f"{_ADA}{data}.pkl", "stylegan2", res, data) for data, res in sets]


def _sg1() -> list[ZooEntry]:
    """The 2019 StyleGAN models: published on Google Drive only (a big file there may need a browser)."""
    ids = {
        ("ffhq", "1024"): "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ",
        ("celebahq", "1024"): "1MGqJl28pN4t7SAtSrPdSRJSQJqahkzUf",
        ("bedrooms", "256"): "1MOSKeGF0FJcivpBI7s63V9YHloUTORiF",
        ("cars", "512x384"): "1MJ6iCfNtMIRicihwRorsM3b7mmtmK9c3",
        ("cats", "256"): "1MQywl0FNt6lHu8E_EUqnRbviagS7fbiJ",
    }
    return [
        ZooEntry(
            f"stylegan1-{data}-{res}",
            _GDRIVE + drive_id,
            "stylegan1",
            res,
            data,
            file_name=f"karras2019stylegan-{data}-{res if 'x' in res else f'{res}x{res}'}.pkl",
        )
        for (data, res), drive_id in ids.items()
    ]


MODELS: dict[str, ZooEntry] = {entry.name: entry for entry in _sg3() + _sg2_pytorch() + _sg2_tf() + _ada() + _sg1()}


def mirrored(entry: ZooEntry, mirror: str | None) -> str:
    """The URL to fetch: the entry's own, or `mirror/<host>/<folder>/<file name>` (the query is dropped)."""
    if not mirror:
        return entry.url
    parts = urlsplit(entry.url)
    folder = parts.path.rsplit("/", 1)[0]
    return f"{mirror.rstrip('/')}/{parts.netloc}{folder}/{entry.filename}"


def zoo_mirror(mirror: str | None = None) -> str | None:
    """The mirror in force: the argument, else $STYLEGAN_ZOO_MIRROR, else none."""
    return mirror if mirror is not None else (os.environ.get(MIRROR_ENV) or None)


def entry_for_url(url: str) -> ZooEntry | None:
    """The zoo entry published at `url`, if any (so a URL and its name share one cache entry)."""
    return next((entry for entry in MODELS.values() if entry.url == url), None)


def close_names(name: str, limit: int = 3) -> list[str]:
    """Zoo names that look like a mistyped `name`."""
    return difflib.get_close_matches(name, MODELS, n=limit, cutoff=0.6)
