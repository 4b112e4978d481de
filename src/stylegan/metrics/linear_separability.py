"""Linear separability (Karras et al. 2019, sec. 4.2): how well a linear SVM in z or w predicts attributes.

For each binary attribute, keep the half of the samples the classifier is most sure of, fit a linear SVM
from the latent to the label, and measure the conditional entropy H(Y | X) of the label Y given the SVM's
side X. The score is exp(sum over attributes of H(Y | X)); smaller is more separable.
"""

from __future__ import annotations

import numpy as np
import torch


def fit_linear_svm(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, steps: int = 100) -> torch.Tensor:
    """L2-regularised squared-hinge linear SVM (as liblinear's default) by L-BFGS; x [N, D], y in {0, 1} [N].

    Returns:
        Predicted sides [N] (bool) on the training samples.
    """
    x = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)  # bias as a feature
    sign = y.double() * 2 - 1
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        margin = (1 - sign * (x @ weight)).clamp(min=0)
        loss = 0.5 * weight.square().sum() + c * margin.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return (x @ weight.detach()) > 0


def conditional_entropy(y: np.ndarray, x: np.ndarray) -> float:
    """H(Y | X) in nats for two binary arrays."""
    h = 0.0
    for side in (False, True):
        mask = x == side
        if not mask.any():
            continue
        p1 = y[mask].mean()
        h_side = -sum(p * np.log(p) for p in (p1, 1 - p1) if p > 0)
        h += mask.mean() * h_side
    return float(h)


def attribute_entropy(latents: torch.Tensor, prob: torch.Tensor, keep: float = 0.5) -> float:
    """H(label | SVM side) for one attribute; prob [N] is the classifier's probability that it is present."""
    order = torch.argsort((prob - 0.5).abs(), descending=True)[: int(len(prob) * keep)]
    y = prob[order] > 0.5
    if y.all() or not y.any():  # one class only: nothing to separate
        return 0.0
    side = fit_linear_svm(latents[order], y)
    return conditional_entropy(y.numpy(), side.numpy())


def linear_separability(latents: torch.Tensor, probs: torch.Tensor, keep: float = 0.5) -> float:
    """exp(sum_i H(Y_i | X_i)) over attributes; latents [N, D], probs [N, A] attribute probabilities."""
    return float(np.exp(sum(attribute_entropy(latents, probs[:, i], keep) for i in range(probs.shape[1]))))
