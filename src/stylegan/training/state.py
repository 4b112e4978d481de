"""What a run needs to continue exactly: the sampler, RNG states, the training-state file and run folders.

The training-state file is a `torch.save` of tensors and plain Python types only, so it loads with
`torch.load(..., weights_only=True)`; the networks live beside it in the native safetensors snapshot.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import torch

from stylegan.io import atomic_write

STATE_FORMAT = 1
_RUN_RE = re.compile(r"^(\d{5})-")
_STATE_RE = re.compile(r"^training-state-(\d+(?:\.\d+)?)\.pt$")


class ResumeError(ValueError):
    """A --resume target that is not a run folder or a training-state file."""


class InfiniteSampler:
    """Dataset indices: a seeded permutation per epoch, forever; `position` (items drawn) is the state."""

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, position: int = 0):
        if size < 1:
            raise ValueError("the dataset is empty")
        self.size, self.seed, self.shuffle, self.position = size, seed, shuffle, position
        self._epoch, self._order = -1, None

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
            self._epoch = epoch
        return self._order

    def take(self, n: int) -> np.ndarray:
        """The next n indices [n] (int64)."""
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            epoch, offset = divmod(self.position, self.size)
            out[i] = self._epoch_order(epoch)[offset]
            self.position += 1
        return out


def chunk_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed from the run seed and integer keys (step, phase, chunk); equal in every process."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(2, np.uint64)[0] >> np.uint64(1))


# ---- RNG states --------------------------------------------------------------------------------------------


def get_rng_states() -> dict:
    """torch, CUDA (when initialised), numpy and Python RNG states as tensors and plain types."""
    np_state = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restores what get_rng_states() returned."""
    torch.set_rng_state(states["torch"])
    np_s = states["numpy"]
    np.random.set_state(
        (
            np_s["name"],
            np_s["keys"].numpy().astype(np.uint32),
            np_s["pos"],
            np_s["has_gauss"],
            np_s["cached_gaussian"],
        )
    )
    random.setstate(_to_tuples(states["python"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, tuple | list) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


# ---- training-state file -----------------------------------------------------------------------------------


def save_training_state(path: str | Path, state: dict) -> None:
    """Writes the state dict (tensors and plain types) atomically, with a format number."""
    payload = {"format": STATE_FORMAT, **state}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_training_state(path: str | Path) -> dict:
    """Reads a training-state file with weights_only=True (no code runs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad file
        raise ResumeError(f"{path}: not a readable training-state file ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ResumeError(f"{path}: not a training-state file of this version")
    return state


# ---- run folders -------------------------------------------------------------------------------------------


def next_run_dir(outdir: str | Path, desc: str) -> Path:
    """outdir/<NNNNN>-<desc> with the next free number (NVIDIA's layout)."""
    outdir = Path(outdir)
    ids = [int(m.group(1)) for p in outdir.glob("*") if (m := _RUN_RE.match(p.name)) and p.is_dir()]
    return outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"


def latest_state_file(run_dir: Path) -> Path | None:
    """The training-state file with the highest kimg in a run folder, or None."""
    found = [(float(m.group(1)), p) for p in run_dir.glob("training-state-*.pt") if (m := _STATE_RE.match(p.name))]
    return max(found)[1] if found else None


def find_resume_state(resume: str, outdir: str | Path) -> Path:
    """Resolves --resume: 'latest' (newest run in outdir with a state file), a run folder or a state file."""
    if resume == "latest":
        runs = sorted((p for p in Path(outdir).glob("*") if _RUN_RE.match(p.name) and p.is_dir()), reverse=True)
        for run in runs:
            if (state := latest_state_file(run)) is not None:
                return state
        raise ResumeError(f"--resume latest: no run in {outdir} has a training-state file yet")
    path = Path(resume)
    if path.is_dir():
        state = latest_state_file(path)
        if state is None or not (path / "config.json").is_file():
            raise ResumeError(f"--resume {resume}: not a run folder (needs config.json and a training-state-*.pt)")
        return state
    if path.is_file() and _STATE_RE.match(path.name) and (path.parent / "config.json").is_file():
        return path
    raise ResumeError(f"--resume {resume}: give 'latest', a run folder, or a training-state-*.pt inside one")


def read_run_config(run_dir: Path) -> dict:
    """The options a run was started with (its config.json)."""
    return json.loads((run_dir / "config.json").read_text())
