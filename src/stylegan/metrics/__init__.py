"""Metrics: FID, KID, precision/recall, IS, PPL, linear separability, and offline Fashion-MNIST metrics.

`calc_metric(name, G=..., dataset=...)` is the entry point; `METRICS` lists the names (NVIDIA's, plus
*_fmnist). Formulas are pure functions of features (fid.py, kid.py, ...); feature networks live in
inception.py, lpips.py and fmnist.py. Heavy modules load lazily.
"""

from stylegan.metrics.metric_main import (
    METRICS,
    MetricSpec,
    MissingDependencyError,
    calc_metric,
    calc_metrics,
    check_metrics_ready,
    list_metrics,
)
from stylegan.metrics.weights import MissingWeightsError

__all__ = [
    "METRICS",
    "MetricSpec",
    "MissingDependencyError",
    "MissingWeightsError",
    "calc_metric",
    "calc_metrics",
    "check_metrics_ready",
    "list_metrics",
]
