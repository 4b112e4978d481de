"""Skips that CI must not take: a missing test oracle, dataset or optional extra fails the run when CI=true.

`skip_or_fail` is for tests; `tests/conftest.py` applies the same rule to skips raised elsewhere (`importorskip`,
`skipif` marks) whose reason names one of the `CI_REQUIRED` things, so every test file gets it without change.
"""

from __future__ import annotations

import os
import re
from typing import NoReturn

import pytest

# What CI installs (Makefile, .ci/run), so that a skip mentioning it means the set-up is broken.
# Modules as `importorskip` names them ("could not import 'lpips'"); then words the skip reasons of our tests use.
CI_REQUIRED_MODULES = ("scipy", "pytorch_fid", "lpips", "torchvision", "imageio", "imageio_ffmpeg", "safetensors")
CI_REQUIRED_WORDS = (
    "fashion-mnist",
    "pytorch-fid",
    "lpips",
    "torchvision",
    "imageio",
    "[video]",
    "asset missing",
    "packaged default model",
)
_IMPORT_SKIP = re.compile(r"could not import '(?P<module>[\w.]+)'")


def ci_is_strict() -> bool:
    """CI=true (what GitHub Actions, GitLab CI and `.ci/run` set) turns required skips into failures."""
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the running test, or fail it when CI=true: for things CI installs (oracles, datasets, extras)."""
    if ci_is_strict():
        pytest.fail(reason + " (CI=true: required)", pytrace=False)
    pytest.skip(reason)


def is_required(reason: str) -> bool:
    """Whether a skip reason names something CI installs (so that under CI=true the skip is a failure).

    GPU, platform and other legitimate skips ("needs a CUDA device", "needs a POSIX shell") do not match.
    """
    match = _IMPORT_SKIP.search(reason)
    if match:
        top = match["module"].split(".")[0]
        return top in CI_REQUIRED_MODULES or top == "stylegan"
    text = reason.lower()
    return any(word in text for word in CI_REQUIRED_WORDS)
