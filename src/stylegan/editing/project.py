"""Projection: find the latent (and, for PTI, the generator weights) that reproduce a given image.

Three modes, each built on the one before:

- "w": one w for every layer. Adam on w (started at the mean of 10k mapped samples) and on the per-layer noise
  maps, to minimise the LPIPS distance between G's image and the target (both area-down-sampled to 256² when
  larger). The noise maps are pushed towards white noise by a multi-scale autocorrelation penalty (weight 1e5) and
  renormalised to zero mean, unit variance after each step. The learning rate ramps up linearly over the first
  5 % of the steps and down along a half cosine over the last 75 %; Gaussian noise of standard deviation
  w_std * 0.05 * max(0, 1 - t / 0.75)² is added to w while it is early (t = step / steps), w_std being the RMS
  distance of the samples to their mean. This is the recipe of Karras et al. 2020 (StyleGAN2, section 5). The
  result keeps the optimised maps or G's stored ones, whichever renders it closer to the target (NVIDIA's projector
  shows its w with the stored ones).
- "w+": the W result, then one w per layer (ws [1, num_ws, w_dim]) optimised further with the same loss.
- "pti": pivotal tuning (Roich et al. 2021): the W (or W+) result is the pivot; a copy of G is then fine-tuned so
  that G(pivot) matches the target (LPIPS + L2), while a locality regulariser keeps G's images at latents
  between the pivot and random samples as they were.

Images are uint8 [C, H, W] (see stylegan.images); the generator's outputs are floats about [-1, 1].
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F
from torch import nn

from stylegan.images import to_uint8

MODES = ("w", "w+", "pti")
LPIPS_MAX_SIDE = 256  # LPIPS sees images area-down-sampled to this size when larger
MIN_TARGET_SIDE = 16  # and at least 1/8 of G's resolution: a target blown up more is mostly blur
MAX_TARGET_SIDE = 16384  # larger images are refused from the header, before any pixel is decoded
MAX_TARGET_PIXELS = 64 * 1024 * 1024
FACE_DATASETS = ("faces", "ffhq", "celeba", "metfaces")  # names of models whose domain is (aligned) faces


@dataclass(frozen=True)
class ProjectionSettings:
    """Hyper-parameters; the defaults are the published ones (StyleGAN2's projector, PTI's paper).

    Attributes:
        steps: Adam steps in W (the first stage of every mode).
        plus_steps: further steps in W+ (mode "w+", and "pti" with pivot="w+").
        tune_steps: fine-tuning steps of G (mode "pti").
        pivot: the latent PTI tunes around: "w" or "w+".
        w_avg_samples: mapped samples whose mean starts w and whose spread sets w_std.
        lr: peak learning rate of the latent stages.
        lr_rampup, lr_rampdown: fractions of a stage spent ramping the learning rate up and down.
        w_noise_scale, w_noise_ramp: noise on w: w_std * scale * max(0, 1 - t / ramp)².
        noise_weight: weight of the noise maps' autocorrelation penalty.
        tune_lr: Adam learning rate of the fine-tuning (PTI: 3e-4).
        l2_weight: weight of the pixel L2 term in the fine-tuning loss (LPIPS has weight 1).
        locality_weight: weight of the locality regulariser (PTI: 0.1), 0 to turn it off.
        locality_alpha: distance from the pivot of the regulariser's latents, in w units (PTI: 30).
        locality_every: the regulariser runs every this many tuning steps (PTI: 10).
        seed: seeds the w samples, the noise maps and every random draw, so a run repeats exactly.
    """

    steps: int = 1000
    plus_steps: int = 500
    tune_steps: int = 350
    pivot: str = "w"
    w_avg_samples: int = 10_000
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.75
    w_noise_scale: float = 0.05
    w_noise_ramp: float = 0.75
    noise_weight: float = 1e5
    tune_lr: float = 3e-4
    l2_weight: float = 1.0
    locality_weight: float = 0.1
    locality_alpha: float = 30.0
    locality_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "plus_steps", "tune_steps", "w_avg_samples", "locality_every"):
            if getattr(self, name) < (1 if name in ("w_avg_samples", "locality_every") else 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.pivot not in ("w", "w+"):
            raise ValueError(f"pivot must be 'w' or 'w+', got {self.pivot!r}")


@dataclass
class Progress:
    """What a callback receives after every step: stage ('w', 'w+' or 'tune'), step (1-based) of steps, loss."""

    stage: str
    step: int
    steps: int
    loss: float
    lpips: float


@dataclass
class ProjectionResult:
    """Attributes:
    ws: the projected latent [1, num_ws, w_dim] float32 (in W mode all rows are equal), on the CPU.
    image: G's image of ws with `noise` (the tuned G for PTI), uint8 [C, H, W].
    noise: the noise maps by buffer name (e.g. 'synthesis.b8.conv0.noise_const'), [r, r] each: the optimised ones,
        or G's stored ones where those render the result closer to the target.
    pivot_image: for PTI, the original G's image of ws before tuning, uint8 [C, H, W]; else equal to image.
    G_tuned: for PTI, the fine-tuned copy of G (noise maps included); None otherwise.
    history: one Progress per step, in order.
    frames: uint8 [C, H, W] images every `frame_every` steps (empty unless asked).
    """

    ws: torch.Tensor
    image: torch.Tensor
    noise: dict[str, torch.Tensor]
    pivot_image: torch.Tensor
    G_tuned: nn.Module | None = None
    history: list[Progress] = field(default_factory=list)
    frames: list[torch.Tensor] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# Targets.


def read_target(path, resolution: int) -> PIL.Image.Image:
    """Open an image file, checking its size from the header before decoding any pixel.

    Raises:
        ValueError: one line: not an image, truncated, too small for a `resolution`² model, or too large.
        OSError: the file cannot be opened (missing, a folder, no permission).
    """
    import warnings as _warnings

    path = str(path)
    try:
        with _warnings.catch_warnings():  # a decompression-bomb warning becomes the error below
            _warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            img = PIL.Image.open(path)
            _check_target_size(*img.size, resolution)
            img.load()
    except (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
        raise ValueError(f"{path}: not an image (PNG, JPEG, WebP, PGM, ...) or too large to decode") from None
    except (SyntaxError, EOFError) as err:
        raise ValueError(f"{path}: cannot read the image ({err})") from None
    except OSError as err:
        if err.errno is not None:
            raise
        raise ValueError(f"{path}: truncated or corrupt image ({str(err).splitlines()[0]})") from None
    return PIL.ImageOps.exif_transpose(img)


def _check_target_size(width: int, height: int, resolution: int) -> None:
    smallest = max(MIN_TARGET_SIDE, resolution // 8)
    if min(width, height) < smallest:
        raise ValueError(f"image is {width}x{height}: too small for a {resolution}² model (sides >= {smallest} px)")
    if max(width, height) > MAX_TARGET_SIDE or width * height > MAX_TARGET_PIXELS:
        raise ValueError(
            f"image is {width}x{height}: too large (sides <= {MAX_TARGET_SIDE} px, "
            f"at most {MAX_TARGET_PIXELS // 2**20} Mpx); resize it first"
        )


def is_face_model(name: str | None) -> bool:
    """Whether a model's name (built-in, zoo name or file name) says it was trained on faces."""
    return name is not None and any(tag in str(name).lower() for tag in FACE_DATASETS)


def prepare_target(img: PIL.Image.Image, resolution: int, channels: int) -> torch.Tensor:
    """Centre-crop a PIL image to a square, resize it (Lanczos) to resolution² and convert to `channels`.

    Returns uint8 [channels, resolution, resolution].
    """
    from stylegan.data.images import make_square, to_channels, to_chw

    square = make_square(to_channels(img, channels), resolution, "center-crop", "lanczos")
    return torch.from_numpy(to_chw(square).copy())


def _as_lpips_input(img: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] floats in [-1, 1] -> [N, 3, h, w] with h, w <= 256 (area down-sampling, grey repeated)."""
    if img.shape[1] == 1:
        img = img.expand(-1, 3, -1, -1)
    side = max(img.shape[-2:])
    if side > LPIPS_MAX_SIDE:
        img = F.adaptive_avg_pool2d(img, [s * LPIPS_MAX_SIDE // side for s in img.shape[-2:]])
    return img


def _target_float(target: torch.Tensor, G: nn.Module, device: torch.device) -> torch.Tensor:
    """uint8 [C, H, W] -> float [1, C, H, W] in [-1, 1] on device; checks it fits G."""
    want = (G.img_channels, G.img_resolution, G.img_resolution)
    if target.dtype != torch.uint8 or tuple(target.shape) != want:
        raise ValueError(
            f"target must be uint8 {list(want)} (use prepare_target), got {target.dtype} {list(target.shape)}"
        )
    return target.to(device).float()[None] / 127.5 - 1


# ----------------------------------------------------------------------------------------------------------------
# Latent statistics, noise maps and schedules.


def w_statistics(G: nn.Module, c: torch.Tensor | None, samples: int, seed: int) -> tuple[torch.Tensor, float]:
    """Mean w [1, w_dim] of `samples` mapped random z, and w_std: the RMS distance of those w to their mean."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    ws = []
    with torch.no_grad():
        for n in _chunks(samples, 2048):
            z = torch.randn([n, G.z_dim], generator=gen).to(device)
            labels = None if c is None else c.expand(n, -1)
            ws.append(G.mapping(z, labels)[:, 0].float())  # [n, w_dim]
    w = torch.cat(ws)
    mean = w.mean(dim=0, keepdim=True)
    return mean, (w - mean).square().sum(dim=1).mean().sqrt().item()


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def noise_maps(G: nn.Module) -> dict[str, torch.Tensor]:
    """G's stored per-layer noise maps (buffers named `noise_const`), by full buffer name. SG3 has none."""
    return {name: buf for name, buf in G.named_buffers() if name.rsplit(".", 1)[-1] == "noise_const"}


def install_noise(G: nn.Module, maps: dict[str, torch.Tensor]) -> None:
    """Puts `maps` into G's noise buffers (the tensors themselves, so gradients reach them)."""
    for name, tensor in maps.items():
        owner, attr = name.rsplit(".", 1)
        setattr(G.get_submodule(owner), attr, tensor)


def _white_noise(G: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Fresh unit Gaussian maps shaped like G's noise buffers, requiring grad."""
    return {
        name: torch.randn(buf.shape, generator=gen).to(buf.device).requires_grad_(True)
        for name, buf in noise_maps(G).items()
    }


def noise_penalty(maps: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and scales of the squared mean products of each pixel with its right and lower neighbour.

    White noise has zero autocorrelation at every lag; the map is halved (2x2 average) down to 8x8 so that
    correlations at larger distances are penalised too. The roll wraps around, so the shift is circular.
    """
    total = torch.zeros([], device=maps[0].device) if maps else torch.zeros([])
    for noise in maps:
        x = noise[None, None]  # [1, 1, r, r]
        while True:
            total = total + (x * x.roll(1, dims=3)).mean().square() + (x * x.roll(1, dims=2)).mean().square()
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


def _renormalise(maps: list[torch.Tensor]) -> None:
    """Each map back to zero mean and unit variance, in place (outside autograd)."""
    with torch.no_grad():
        for noise in maps:
            noise.sub_(noise.mean()).div_(noise.square().mean().sqrt())


def learning_rate(t: float, peak: float, rampup: float, rampdown: float) -> float:
    """peak, scaled by a linear ramp up over [0, rampup] and a half-cosine ramp down over [1 - rampdown, 1]."""
    up = min(1.0, t / rampup) if rampup > 0 else 1.0
    down_phase = min(1.0, max(0.0, (t - (1 - rampdown)) / rampdown)) if rampdown > 0 else 0.0
    return peak * up * 0.5 * (1 + math.cos(math.pi * down_phase))


def w_noise_std(t: float, w_std: float, settings: ProjectionSettings) -> float:
    """Standard deviation of the noise added to w at time t: w_std * scale * max(0, 1 - t / ramp)²."""
    return w_std * settings.w_noise_scale * max(0.0, 1 - t / settings.w_noise_ramp) ** 2


# ----------------------------------------------------------------------------------------------------------------
# The optimisation stages.


@dataclass
class _Run:
    """State shared by the stages of one projection."""

    G: nn.Module  # a private copy of the caller's G
    lpips: nn.Module
    target: torch.Tensor  # [1, C, R, R] in [-1, 1]
    target_features: list[torch.Tensor]
    settings: ProjectionSettings
    gen: torch.Generator
    callback: Callable[[Progress], None] | None
    frame_every: int
    history: list[Progress] = field(default_factory=list)
    frames: list[torch.Tensor] = field(default_factory=list)

    def distance(self, img: torch.Tensor) -> torch.Tensor:
        """LPIPS distance [N] of G's images [N, C, R, R] to the target."""
        feats = self.lpips.features(_as_lpips_input(img))
        targets = [f.expand(img.shape[0], -1, -1, -1) for f in self.target_features]
        return self.lpips.distance_of_features(feats, targets)

    def synth(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode="const", force_fp32=True)

    def report(self, stage: str, step: int, steps: int, loss: torch.Tensor, dist: torch.Tensor, img) -> None:
        event = Progress(stage, step, steps, loss.item(), dist.item())
        self.history.append(event)
        if self.frame_every and (len(self.history) % self.frame_every == 0):
            self.frames.append(to_uint8(img.detach())[0].cpu())
        if self.callback is not None:
            self.callback(event)


def _optimise_latent(run: _Run, start: torch.Tensor, noise: list[torch.Tensor], steps: int, stage: str, w_std: float):
    """Adam on a latent (w [1, 1, w_dim] or ws [1, num_ws, w_dim]) and the noise maps; returns the latent."""
    latent = start.detach().contiguous().clone().requires_grad_(True)
    opt = torch.optim.Adam([latent, *noise], lr=run.settings.lr, betas=(0.9, 0.999))
    num_ws = run.G.num_ws
    for step in range(steps):
        t = step / steps
        for group in opt.param_groups:
            group["lr"] = learning_rate(t, run.settings.lr, run.settings.lr_rampup, run.settings.lr_rampdown)
        jitter = torch.randn(latent.shape, generator=run.gen).to(latent.device) * w_noise_std(t, w_std, run.settings)
        img = run.synth((latent + jitter).expand(-1, num_ws, -1))
        dist = run.distance(img)[0]
        loss = dist + run.settings.noise_weight * noise_penalty(noise) if noise else dist
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _renormalise(noise)
        run.report(stage, step + 1, steps, loss, dist, img)
    return latent.detach()


def _tune(run: _Run, pivot: torch.Tensor, c: torch.Tensor | None) -> None:
    """PTI's second stage: fine-tune run.G's synthesis so that G(pivot) is the target, with the locality term."""
    s = run.settings
    frozen = copy.deepcopy(run.G.synthesis).requires_grad_(False)  # G before tuning, for the regulariser
    params = list(run.G.synthesis.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=s.tune_lr)
    for step in range(s.tune_steps):
        img = run.synth(pivot)
        dist = run.distance(img)[0]
        loss = dist + s.l2_weight * (img - run.target).square().mean()
        if s.locality_weight > 0 and step % s.locality_every == 0:
            loss = loss + s.locality_weight * _locality(run, frozen, pivot, c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.report("tune", step + 1, s.tune_steps, loss, dist, img)
    run.G.requires_grad_(False)


def _locality(run: _Run, frozen: nn.Module, pivot: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """PTI's locality regulariser: at w_r = w_p + alpha (w_z - w_p) / |w_z - w_p| for a random z, the tuned G's
    image must stay what the original G made there (L2 + LPIPS)."""
    z = torch.randn([1, run.G.z_dim], generator=run.gen).to(pivot.device)
    with torch.no_grad():
        w_z = run.G.mapping(z, c)  # [1, num_ws, w_dim]
        direction = w_z - pivot
        w_r = pivot + run.settings.locality_alpha * direction / direction.norm(dim=-1, keepdim=True)
        before = frozen(w_r, noise_mode="const", force_fp32=True)
    after = run.synth(w_r)
    lp = run.lpips(_as_lpips_input(after), _as_lpips_input(before))[0]
    return run.settings.l2_weight * (after - before).square().mean() + lp


# ----------------------------------------------------------------------------------------------------------------
# The entry point.


def project(
    G: nn.Module,
    target: torch.Tensor,
    *,
    mode: str = "w",
    settings: ProjectionSettings | None = None,
    c: torch.Tensor | None = None,
    lpips: nn.Module | None = None,
    device: torch.device | str | None = None,
    callback: Callable[[Progress], None] | None = None,
    frame_every: int = 0,
) -> ProjectionResult:
    """Project `target` into G's latent space (W, W+) or tune G around it (PTI). G itself is left unchanged.

    Args:
        G: a generator of any family we load (SG1, SG2, SG3), grey or RGB, conditional or not.
        target: uint8 [img_channels, img_resolution, img_resolution] (see `prepare_target`).
        mode: "w", "w+" or "pti".
        settings: hyper-parameters (default: the published ones; 1000 steps in W).
        c: the label [1, c_dim] for a conditional G (required then), None otherwise.
        lpips: an LPIPSVGG16 (default: `stylegan.metrics.lpips.load_lpips()`, the released weights).
        device: where to run (default: G's device).
        callback: called with a Progress after every step (e.g. to move a progress bar).
        frame_every: keep G's image every this many steps in result.frames (for a video); 0 keeps none.

    Raises:
        ValueError: an unknown mode, a target that does not fit G, or a missing / superfluous label.
        MissingWeightsError: no LPIPS weights (the message says what to install).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    settings = settings or ProjectionSettings()
    device = torch.device(device) if device is not None else next(G.parameters()).device
    run = _start(G, target, settings, c, lpips, device, callback, frame_every)
    c = _check_label(G, c, device)
    w_mean, w_std = w_statistics(run.G, c, settings.w_avg_samples, settings.seed)
    stored = {name: buf.detach().clone() for name, buf in noise_maps(run.G).items()}
    noise = _white_noise(run.G, run.gen)
    install_noise(run.G, noise)
    ws = _optimise_latent(run, w_mean[:, None], list(noise.values()), settings.steps, "w", w_std)
    ws = ws.expand(-1, run.G.num_ws, -1)
    if mode == "w+" or (mode == "pti" and settings.pivot == "w+"):
        ws = _optimise_latent(run, ws, list(noise.values()), settings.plus_steps, "w+", w_std)
    fixed = _closer_noise(run, ws, {name: n.detach().clone() for name, n in noise.items()}, stored)
    pivot_image = _image(run, ws)
    if mode == "pti":
        _tune(run, ws.contiguous(), c)
    return _result(run, ws, fixed, pivot_image, tuned=mode == "pti")


def _closer_noise(run: _Run, ws: torch.Tensor, optimised: dict, stored: dict) -> dict[str, torch.Tensor]:
    """Installs and returns the optimised noise maps or G's own stored ones, whichever renders ws closer to the
    target (the LPIPS the stages minimise). NVIDIA's projector shows its w with the stored maps: on an image G made
    with them (noise_mode "const", our CLI's default) they are the truth that the optimisation, started from fresh
    noise, does not find again; on a photograph the optimised ones are usually closer."""
    if not stored:  # SG3: no noise maps to choose between
        install_noise(run.G, optimised)
        return optimised
    best: tuple[float, dict] | None = None
    for maps in (optimised, stored):
        install_noise(run.G, maps)
        with torch.no_grad():
            dist = run.distance(run.synth(ws.contiguous())).item()
        if best is None or dist < best[0]:
            best = (dist, maps)
    install_noise(run.G, best[1])
    return best[1]


def _start(G, target, settings, c, lpips, device, callback, frame_every) -> _Run:
    """A private copy of G on device, the LPIPS network and the target's features."""
    if lpips is None:
        from stylegan.metrics.lpips import load_lpips

        lpips = load_lpips(device=device)
    lpips = lpips.to(device)
    work = copy.deepcopy(G).to(device).eval().requires_grad_(False)
    target_f = _target_float(target, work, device)
    with torch.no_grad():
        feats = lpips.features(_as_lpips_input(target_f))
    gen = torch.Generator().manual_seed(settings.seed + 1)
    return _Run(work, lpips, target_f, feats, settings, gen, callback, frame_every)


def _check_label(G: nn.Module, c: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    if G.c_dim == 0:
        if c is not None and c.numel() > 0:
            raise ValueError("this model is unconditional (c_dim=0): give no label")
        return None
    if c is None or tuple(c.shape) != (1, G.c_dim):
        raise ValueError(f"this model is conditional: give its label c as a [1, {G.c_dim}] tensor (a class)")
    return c.to(device).float()


def _image(run: _Run, ws: torch.Tensor) -> torch.Tensor:
    """run.G's image of ws as uint8 [C, H, W] on the CPU."""
    with torch.no_grad():
        return to_uint8(run.synth(ws.contiguous()))[0].cpu()


def _result(run: _Run, ws: torch.Tensor, noise: dict, pivot_image: torch.Tensor, tuned: bool) -> ProjectionResult:
    return ProjectionResult(
        ws=ws.detach().float().cpu().contiguous(),
        image=_image(run, ws) if tuned else pivot_image,
        noise={name: n.cpu() for name, n in noise.items()},
        pivot_image=pivot_image,
        G_tuned=run.G if tuned else None,
        history=run.history,
        frames=run.frames,
    )


# ----------------------------------------------------------------------------------------------------------------
# Scores and files.


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two uint8 images [C, H, W] (peak 255)."""
    mse = (a.double() - b.double()).square().mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def projected_w_npz(ws: torch.Tensor) -> dict[str, np.ndarray]:
    """The arrays of NVIDIA's projected_w.npz: {'w': float32 [1, num_ws, w_dim]} (what --projected-w reads)."""
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise ValueError(f"ws must be [1, num_ws, w_dim], got {list(ws.shape)}")
    return {"w": ws.detach().cpu().numpy().astype(np.float32)}
