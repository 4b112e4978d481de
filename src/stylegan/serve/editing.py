"""The Edit view's rendering: a seed's latent (or a projection's) moved along a SeFa or GANSpace direction.

Runs on the model's worker thread. A model's direction sets are computed once and kept on its slot (SeFa: a
factorisation of the style weights, ~0.5 s; GANSpace: 20,000 sampled w, cached on disk per model by the library as
`stylegan edit` caches them), so moving the strength slider costs one synthesis. The image is made by
`stylegan.editing.edit.edit_figure` with one direction and one strength: the same function `stylegan edit` calls,
so the page's CLI line writes the same pixels.
"""

from __future__ import annotations

import torch

from stylegan.editing import directions as D
from stylegan.editing.edit import edit_figure
from stylegan.editing.generate import compute_ws
from stylegan.serve.models import ModelSlot, served_png
from stylegan.serve.params import EditRequest, ParamError


def direction_set(slot: ModelSlot, method: str) -> D.DirectionSet:
    """The model's SeFa (all style layers) or GANSpace directions, computed on first use (worker thread only)."""
    if method not in slot.cache:
        G = slot.G
        slot.cache[method] = D.sefa(G) if method == "sefa" else D.cached_ganspace(G, samples=D.GANSPACE_SAMPLES)
    return slot.cache[method]


def render_edit(slot: ModelSlot, req: EditRequest, projected: torch.Tensor | None) -> bytes:
    """PNG bytes of the edited image. projected: the projection's ws [1, num_ws, w_dim] when req names one."""
    dirs = direction_set(slot, req.method)
    if req.index >= len(dirs):
        raise ParamError(f"direction {req.direction}: this model has {len(dirs)} {req.method} directions")
    direction = dirs.pick(req.index, req.direction)
    try:
        layers = None if req.layers == "all" else D.parse_layers(slot.G, req.layers)
    except D.DirectionError as err:
        raise ParamError(str(err)) from None
    if projected is not None:
        ws = projected.to(slot.device)
    else:
        t = req.trunc
        ws = compute_ws(
            slot.G,
            [req.seed],
            truncation_psi=t.psi,
            truncation_cutoff=t.cutoff,
            class_idx=t.class_idx,
            device=slot.device,
        )
    with torch.no_grad():
        img = edit_figure(slot.G, ws, [direction], [req.strength], layers, noise_mode=req.trunc.noise_mode)
    return served_png(img, slot, req.trunc, req.seed)
