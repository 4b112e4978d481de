"""The models a server holds, and the two renderings the views ask for, as PNG bytes in memory.

A `ModelSlot` is one loaded generator with its own `Worker` thread (so a model runs one request at a time). The
render functions run on that thread; a StyleGAN3 translate/rotate is set for one request and the model's stored
transform is put back afterwards, so nothing of one request leaks into the next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from stylegan.editing.figures import default_truncation, layer_groups, style_mixing_figure
from stylegan.editing.generate import generate_images
from stylegan.editing.project import is_face_model
from stylegan.images import png_bytes
from stylegan.networks import stylegan3
from stylegan.serve.params import GenerateRequest, MixRequest, ModelInfo, Truncation
from stylegan.serve.worker import Worker

BUILTIN_LABEL = "built-in (Fashion-MNIST 32², StyleGAN2)"
FACES_LABEL = "built-in faces (AT&T faces 64², StyleGAN2)"


@dataclass
class ModelSlot:
    """One generator the server offers: `key` is what clients name it by (never a path)."""

    key: str
    label: str
    spec: str | None
    G: nn.Module
    device: torch.device
    worker: Worker = field(repr=False)
    cache: dict = field(default_factory=dict, repr=False)  # per-model results kept by views (direction sets)
    signing: object | None = field(default=None, repr=False)  # forensics.c2pa.SigningCredentials: sign what is sent

    @property
    def info(self) -> ModelInfo:
        psi, cutoff = default_truncation(self.G)
        return ModelInfo(self.G.num_ws, self.G.c_dim, is_sg3(self.G), psi, cutoff, self.spec)

    def describe(self) -> dict:
        """What the page needs to lay out its controls, as JSON."""
        G, info = self.G, self.info
        return dict(
            key=self.key,
            label=self.label,
            resolution=G.img_resolution,
            channels=G.img_channels,
            num_ws=info.num_ws,
            c_dim=info.c_dim,
            sg3=info.sg3,
            psi=info.default_psi,
            cutoff=info.num_ws if info.default_cutoff is None else info.default_cutoff,
            groups=layer_groups(G),
            face=is_face_model(self.spec),
        )


def builtin_specs() -> list[str | None]:
    """What `stylegan serve` offers without --network: the built-in model, and the faces model when installed."""
    from stylegan.io.loader import builtin_model_path

    return [None] + (["faces"] if builtin_model_path("faces") is not None else [])


def is_sg3(G: nn.Module) -> bool:
    return isinstance(getattr(getattr(G, "synthesis", None), "input", None), stylegan3.SynthesisInput)


def served_png(img: torch.Tensor, slot: ModelSlot, trunc: Truncation, seed: int | None = None) -> bytes:
    """uint8 [C, H, W] -> PNG file contents with the provenance mark and metadata a CLI-written file would carry
    (fast compression: the bytes only cross the loopback), and a signed C2PA manifest when the slot has signing
    credentials (about 4 ms an image), so a picture saved from the page carries them."""
    metadata = {
        "model": slot.spec if slot.spec is not None else "default",
        "seed": seed,
        "truncation_psi": trunc.psi,
        "truncation_cutoff": trunc.cutoff,
        "noise_mode": trunc.noise_mode,
        "class_idx": trunc.class_idx,
    }
    data = png_bytes(img, metadata=metadata, compress_level=1)
    if slot.signing is None:
        return data
    from stylegan.forensics.c2pa import sign_png

    return sign_png(data, slot.signing)


@contextlib.contextmanager
def transformed(G: nn.Module, translate: tuple[float, float], angle: float) -> Iterator[None]:
    """StyleGAN3 content moved/turned inside the block; the stored transform is restored after, even on error."""
    if translate == (0.0, 0.0) and angle == 0.0:
        yield
        return
    saved = G.synthesis.input.transform.detach().clone()
    try:
        stylegan3.set_transform(G, translate, angle)
        yield
    finally:
        with torch.no_grad():
            G.synthesis.input.transform.copy_(saved)


def render_generate(slot: ModelSlot, req: GenerateRequest) -> bytes:
    """One image for req.seed: PNG bytes of uint8 [C, H, W]. Runs on the slot's worker thread."""
    with transformed(slot.G, req.translate, req.rotate):
        images = generate_images(slot.G, [req.seed], device=slot.device, **req.trunc.kwargs())
    return served_png(images[0], slot, req.trunc, req.seed)


def render_mix(slot: ModelSlot, req: MixRequest) -> bytes:
    """The style-mixing grid (paper Fig. 3) as PNG bytes. Runs on the slot's worker thread."""
    rows = [(seed, list(req.styles)) for seed in req.rows]
    fig = style_mixing_figure(slot.G, list(req.cols), rows, device=slot.device, **req.trunc.kwargs())
    return served_png(fig, slot, req.trunc)


def load_slots(
    specs: list[str | None],
    device: torch.device,
    *,
    max_pending: int = 64,
    timeout_s: float = 30.0,
    signing=None,
) -> list[ModelSlot]:
    """Loads each model once (paths, zoo names or URLs as `load_generator` takes them; None = the built-in one).
    signing: forensics.c2pa.SigningCredentials for every generated PNG the slots serve, or None.

    Raises what `load_generator` raises (ValueError / OSError subclasses with one-line messages).
    """
    from stylegan.io import load_generator

    slots = []
    for i, spec in enumerate(specs):
        G = load_generator(spec, device=device).eval().requires_grad_(False)
        worker = Worker(str(i), max_pending=max_pending, timeout_s=timeout_s)
        slots.append(ModelSlot(str(i), _label(spec, G), spec, G, device, worker, signing=signing))
    return slots


def _label(spec: str | None, G: nn.Module) -> str:
    if spec is None:
        return BUILTIN_LABEL
    if spec == "faces":
        from stylegan.io.loader import builtin_model_path

        if builtin_model_path("faces") is not None and not Path(spec).exists():
            return FACES_LABEL
    family = getattr(getattr(G, "config", None), "family", "stylegan3" if is_sg3(G) else "")
    return f"{spec} ({G.img_resolution}², {family})".replace(", )", ")")
