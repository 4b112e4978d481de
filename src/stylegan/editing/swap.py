"""Face swap: the source photo's identity on the target photo's face, through the generator's latent space.

Steps (`swap_faces`):

1. Detect and align the largest face of each photo at the model's resolution (stylegan.faces; a grey model sees
   the aligned face's luma).
2. Project both faces (stylegan.editing.project). The face whose G draws the result (`render`: the source by
   default) is projected with the chosen mode (PTI by default: its tuned G reproduces that face closely); the
   other only gives its latent, so it is projected in W (W+ with mode 'w+') without tuning.
3. Mix: the ws rows in `layers` come from the source, the others from the target. The default, DEFAULT_LAYERS
   ('coarse,middle': every layer up to 32², 4²-32² at any size), carries the face's shape and features; the fine
   layers (>= 64²) keep the target's skin texture and light. See docs/swap.md for the measured alternatives.
4. Synthesise with that G (the tuned one for PTI), warp back into the target photo with the inverse of its
   alignment, and blend (stylegan.editing.blend: landmark mask, colour matching, alpha or Poisson). Target pixels
   outside the mask are untouched, bit for bit.

`write_swap` saves the result as PNG with the provenance mark and metadata (source, target, settings).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylegan.editing import blend as B
from stylegan.faces import AlignedFace, NoFaceError, align_face, detect_faces, warp_to_photo

MODES = ("w", "w+", "pti")
RENDERERS = ("target", "source")
DEFAULT_LAYERS = "coarse,middle"
# The mark touches every pixel; this strength keeps the photo outside the swapped face >= 45 dB from the target.
SWAP_MARK_PSNR = 46.0


@dataclass(frozen=True)
class SwapSettings:
    """How a swap is made.

    Attributes:
        mode: projection of the target: 'w', 'w+' or 'pti' (the source: 'w', or 'w+' when mode is 'w+').
        steps: Adam steps in W (the first stage of every projection).
        plus_steps: further steps in W+ (mode 'w+').
        tune_steps: fine-tuning steps of G on the target (mode 'pti').
        layers: ws rows taken from the source: indices '0-7', groups 'coarse', 'middle', 'fine' or a mix of both.
        blend: 'alpha' (feathered mask) or 'poisson' (screened Poisson inside the mask, then the feather).
        colour: match the new face's mean / std to the target's inside the mask (YCbCr).
        erode: the mask's hull is shrunk by this fraction of the face size (sqrt of the detector box's area).
        feather: ... and faded to 0 over this fraction.
        w_avg_samples: mapped samples for the projection's starting point and w spread.
        seed: seeds the projections (and is the seed the provenance mark carries).
        render: whose G draws the mixed ws: 'target' (the target is projected with `mode`, the source in W) or
            'source' (the source with `mode`, e.g. PTI-tuned on the source face, which keeps its identity sharper;
            the target in W, it only gives the rows outside `layers`).
    """

    mode: str = "pti"
    steps: int = 300
    plus_steps: int = 150
    tune_steps: int = 300
    layers: str = DEFAULT_LAYERS
    blend: str = "alpha"
    colour: bool = True
    erode: float = 0.0
    feather: float = 0.08
    w_avg_samples: int = 10_000
    seed: int = 0
    render: str = "source"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.render not in RENDERERS:
            raise ValueError(f"render must be one of {', '.join(RENDERERS)}, got {self.render!r}")
        if self.blend not in B.BLENDS:
            raise ValueError(f"blend must be one of {', '.join(B.BLENDS)}, got {self.blend!r}")
        for name in ("erode", "feather"):
            if not 0 <= getattr(self, name) <= 1:
                value = getattr(self, name)
                raise ValueError(f"{name} must be within [0, 1] (a fraction of the face size), got {value}")

    def describe(self) -> dict[str, str]:
        """The settings as text, for metadata."""
        return {name: str(value) for name, value in asdict(self).items()}


@dataclass
class Projected:
    """One face in latent space: the aligned face, its ws [1, num_ws, w_dim] and the G that reproduces it."""

    aligned: AlignedFace
    ws: torch.Tensor
    G: nn.Module


@dataclass
class SwapResult:
    """Attributes:
    image: the swapped target photo, uint8 [H, W, C] like the target.
    mask: float32 [H, W], the blending weight (0: the target's pixel, untouched).
    face: the generated face in aligned space, uint8 [R, R, img_channels].
    source, target: the two projections.
    layers: the ws rows taken from the source.
    """

    image: np.ndarray
    mask: np.ndarray
    face: np.ndarray
    source: Projected
    target: Projected
    layers: tuple[int, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------------------------------------------
# Faces in, latents out.


def find_face(photo: np.ndarray, resolution: int, *, what: str = "photo") -> AlignedFace:
    """The largest face of a photo uint8 [H, W, C], aligned at resolution²; NoFaceError naming `what` if none."""
    faces = detect_faces(photo)
    if not faces:
        raise NoFaceError(f"no face found in the {what}")
    return align_face(photo, faces[0], resolution=resolution)


def model_input(aligned: AlignedFace, G: nn.Module) -> torch.Tensor:
    """The aligned face as the projection's target: uint8 [img_channels, R, R] (luma for a grey model)."""
    img = aligned.image.astype(np.float64)
    if G.img_channels == 1 and img.shape[2] == 3:
        img = B.to_ycc(img)[..., :1]
    elif G.img_channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    pixels = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def projection_settings(settings: SwapSettings, *, tune: bool):
    """The ProjectionSettings of one face (the swap's step counts and seed)."""
    from stylegan.editing.project import ProjectionSettings

    return ProjectionSettings(
        steps=settings.steps,
        plus_steps=settings.plus_steps,
        tune_steps=settings.tune_steps if tune else 0,
        w_avg_samples=settings.w_avg_samples,
        seed=settings.seed,
    )


def project_face(
    G: nn.Module,
    aligned: AlignedFace,
    settings: SwapSettings,
    *,
    role: str,
    lpips=None,
    device=None,
    callback: Callable | None = None,
) -> Projected:
    """Project one aligned face: the role whose G renders (settings.render) uses settings.mode; the other never
    tunes G (only its ws is used)."""
    from stylegan.editing.project import project

    mode = settings.mode if role == settings.render else ("w+" if settings.mode == "w+" else "w")
    result = project(
        G,
        model_input(aligned, G),
        mode=mode,
        settings=projection_settings(settings, tune=mode == "pti"),
        lpips=lpips,
        device=device,
        callback=callback,
    )
    tuned = result.G_tuned if result.G_tuned is not None else _with_noise(G, result.noise)
    return Projected(aligned, result.ws, tuned)


def _with_noise(G: nn.Module, noise: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of G whose stored noise maps are the projection's (so G(ws) is the projection)."""
    import copy

    from stylegan.editing.project import install_noise

    work = copy.deepcopy(G).eval().requires_grad_(False)
    device = next(work.parameters()).device
    install_noise(work, {name: tensor.to(device) for name, tensor in noise.items()})
    return work


# ----------------------------------------------------------------------------------------------------------------
# Mixing, synthesis and blending.


def swap_layers(G: nn.Module, layers: str | tuple[int, ...]) -> tuple[int, ...]:
    """ws rows named by '0-7', 'coarse,middle', ... (see editing.directions.parse_layers)."""
    from stylegan.editing.directions import parse_layers

    return parse_layers(G, layers)


def mix_ws(source_ws: torch.Tensor, target_ws: torch.Tensor, layers: tuple[int, ...]) -> torch.Tensor:
    """[1, num_ws, w_dim]: the target's ws with the rows in `layers` replaced by the source's."""
    mixed = target_ws.clone()
    index = torch.tensor(list(layers), dtype=torch.long)
    mixed[:, index] = source_ws[:, index].to(mixed)
    return mixed


@torch.no_grad()
def synthesize_face(G: nn.Module, ws: torch.Tensor) -> np.ndarray:
    """G's image of ws as float32 [R, R, C] in 0..255 (not quantised: it is resampled and blended next)."""
    device = next(G.parameters()).device
    img = G.synthesis(ws.to(device), noise_mode="const", force_fp32=True)[0]  # [C, R, R] about [-1, 1]
    return (img.float() * 127.5 + 127.5).clamp(0, 255).permute(1, 2, 0).cpu().numpy()


def blend_face(photo: np.ndarray, face: np.ndarray, aligned: AlignedFace, settings: SwapSettings):
    """Warp an aligned-space face float [R, R, C'] into the photo and blend it there.

    Returns (uint8 [H, W, C] photo, float32 [H, W] mask). The mask is cut to where the warped face exists.
    """
    height, width = photo.shape[:2]
    mask = B.face_mask(aligned.face, height, width, erode=settings.erode, feather=settings.feather)
    coverage = warp_to_photo(np.ones(face.shape[:2], np.float32), aligned)  # 1 inside the aligned square
    mask = np.where(coverage > 0.999, mask, 0.0).astype(np.float32)
    warped = warp_to_photo(face, aligned)
    warped = warped[..., None] if warped.ndim == 2 else warped
    return B.composite(photo, warped, mask, blend=settings.blend, colour=settings.colour), mask


def swap_projected(
    source: Projected, target: Projected, target_photo: np.ndarray, settings: SwapSettings
) -> SwapResult:
    """The swap from two projections (e.g. to try several layer splits without projecting again)."""
    renderer = source.G if settings.render == "source" else target.G
    layers = swap_layers(renderer, settings.layers)
    face = synthesize_face(renderer, mix_ws(source.ws, target.ws, layers))
    image, mask = blend_face(target_photo, face, target.aligned, settings)
    face_u8 = np.clip(np.rint(face), 0, 255).astype(np.uint8)
    return SwapResult(image, mask, face_u8, source, target, layers)


def swap_faces(
    G: nn.Module,
    source_photo: np.ndarray,
    target_photo: np.ndarray,
    settings: SwapSettings | None = None,
    *,
    lpips=None,
    device=None,
    callback: Callable[[str, object], None] | None = None,
) -> SwapResult:
    """Swap the largest face of `source_photo` onto the largest face of `target_photo`.

    Args:
        G: the generator (any family; grey or RGB); projected with LPIPS, so `lpips` or its cached weights.
        source_photo, target_photo: uint8 [H, W, C] (see stylegan.faces.load_photo).
        settings: SwapSettings (defaults: PTI, DEFAULT_LAYERS, alpha blend with colour matching).
        callback: called as callback(face, progress) during the projections, face being 'source' or 'target'.

    Raises:
        NoFaceError: a photo without a face (the message says which).
    """
    settings = settings or SwapSettings()
    faces = find_faces(G, source_photo, target_photo, settings)
    return swap_aligned(G, *faces, target_photo, settings, lpips=lpips, device=device, callback=callback)


def find_faces(G: nn.Module, source_photo: np.ndarray, target_photo: np.ndarray, settings: SwapSettings):
    """(source, target) AlignedFace at G's resolution; checks the layer spec first. NoFaceError says which photo."""
    swap_layers(G, settings.layers)
    res = G.img_resolution
    return find_face(source_photo, res, what="source"), find_face(target_photo, res, what="target")


def swap_aligned(
    G: nn.Module,
    source_face: AlignedFace,
    target_face: AlignedFace,
    target_photo: np.ndarray,
    settings: SwapSettings,
    *,
    lpips=None,
    device=None,
    callback: Callable[[str, object], None] | None = None,
) -> SwapResult:
    """swap_faces after the faces are found: project both, mix, synthesise, blend."""
    if lpips is None:
        from stylegan.metrics.lpips import load_lpips

        lpips = load_lpips(device=device or next(G.parameters()).device)

    def report(role):
        return None if callback is None else (lambda p: callback(role, p))

    source = project_face(
        G, source_face, settings, role="source", lpips=lpips, device=device, callback=report("source")
    )
    target = project_face(
        G, target_face, settings, role="target", lpips=lpips, device=device, callback=report("target")
    )
    return swap_projected(source, target, target_photo, settings)


# ----------------------------------------------------------------------------------------------------------------
# Files.


def swap_metadata(
    source: str | os.PathLike, target: str | os.PathLike, settings: SwapSettings, layers: tuple[int, ...]
) -> dict[str, str]:
    """The swap's own text chunks (without the 'stylegan:' prefix): file names, settings, the layers used."""
    from stylegan.editing.generate import format_range

    info = {"operation": "face swap", "source": Path(source).name, "target": Path(target).name}
    info.update(settings.describe())
    info["layers"] = f"{settings.layers} (ws {format_range(list(layers))} from the source)"
    return info


def write_swap(
    image: np.ndarray,
    out: str | os.PathLike,
    *,
    model: str,
    settings: SwapSettings,
    info: dict[str, str],
    mark: bool = True,
    credentials=None,
) -> Path:
    """Save a swapped photo uint8 [H, W, C] as PNG with metadata (the swap's `info` as `stylegan:` text chunks) and
    the provenance mark (photos of >= 128 px a side). The mark touches every pixel, so it is embedded at
    SWAP_MARK_PSNR: the photo outside the face stays within 45 dB of the target. credentials
    (forensics.c2pa.SigningCredentials): also signed C2PA content credentials, declaring a composite of a real
    photo and generated parts."""
    from stylegan.images import save_png

    out = Path(out)
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    metadata = {"model": model, "seed": settings.seed, "noise_mode": "const"}
    save_png(tensor, out, mark=mark, metadata=metadata, mark_psnr=SWAP_MARK_PSNR, extra=info)
    if credentials is not None:
        from stylegan.forensics import c2pa

        c2pa.sign_output(out, credentials, source_type=c2pa.COMPOSITE)
    return out
