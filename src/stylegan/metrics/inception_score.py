"""Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) || p(y)), mean and std over splits."""

from __future__ import annotations

import numpy as np


def inception_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """Class logits [N, K] -> (mean, std) of the score over `num_splits` consecutive splits."""
    logits = np.asarray(logits, dtype=np.float64)
    logp = logits - logits.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))  # log softmax
    parts = np.array_split(logp, min(num_splits, len(logp)))
    scores = np.array([_split_score(part) for part in parts])
    return float(scores.mean()), float(scores.std())


def _split_score(logp: np.ndarray) -> float:
    """exp of the mean KL(p(y|x) || p(y)) over one split of log-probabilities [n, K]."""
    log_marginal = np.log(np.exp(logp).mean(axis=0, keepdims=True))
    kl = (np.exp(logp) * (logp - log_marginal)).sum(axis=1)
    return float(np.exp(kl.mean()))
