"""What a view asks for, read from a query string and checked against the model, and the CLI line that makes it.

Every request is parsed into a frozen dataclass before any work is queued: a bad value is a `ParamError` (one
line, reported as HTTP 400) and never reaches the network. `cli_command()` is the `stylegan generate` / `mix` /
`edit` line that writes the same pixels, so the page can show it for copying. Directions are named only as
`sefa:K` / `ganspace:K` (K < MAX_DIRECTION): no client text ever reaches a direction file's path.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from stylegan.editing.generate import format_range, parse_range

NOISE_MODES = ("const", "random", "none")
MAX_SEED = 2**32 - 1
MAX_MIX_SEEDS = 8  # per side of the mixing grid: 8 x 8 cells is plenty to look at and bounds the work
MAX_SHIFT = 1.0  # SG3 translate, canvas units (1 = the whole image)
MAX_TEXT = 200  # characters of a seed or layer list
MAX_DIRECTION = 10  # sefa:0..9, ganspace:0..9
MAX_STRENGTH = 10.0  # in standard deviations of the model's w along the direction
LAYER_CHOICES = ("all", "coarse", "middle", "fine")
PROJECTION_ID = re.compile(r"[0-9a-f]{32}")


class ParamError(ValueError):
    """A request parameter a client got wrong; the message says which and what is accepted."""


@dataclass(frozen=True)
class ModelInfo:
    """What parsing needs to know of a model (see `stylegan.serve.models.describe`)."""

    num_ws: int
    c_dim: int
    sg3: bool
    default_psi: float
    default_cutoff: int | None
    spec: str | None  # as given to `--network` (None: the built-in model)


@dataclass(frozen=True)
class Truncation:
    """Shared by both views: psi, cutoff (None = all ws), class and noise mode."""

    psi: float
    cutoff: int | None
    class_idx: int | None
    noise_mode: str

    def kwargs(self) -> dict:
        return dict(
            truncation_psi=self.psi,
            truncation_cutoff=self.cutoff,
            class_idx=self.class_idx,
            noise_mode=self.noise_mode,
        )

    def cli_args(self, info: ModelInfo) -> list[str]:
        args = _opt("--trunc", self.psi)
        if self.cutoff != info.default_cutoff:
            args += ["--trunc-cutoff", str(info.num_ws if self.cutoff is None else self.cutoff)]
        if self.class_idx is not None:
            args += ["--class", str(self.class_idx)]
        if self.noise_mode != "const":
            args += ["--noise-mode", self.noise_mode]
        return args


@dataclass(frozen=True)
class GenerateRequest:
    seed: int
    trunc: Truncation
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0

    @classmethod
    def parse(cls, query: Mapping[str, str], info: ModelInfo) -> GenerateRequest:
        translate = (
            _float(query, "tx", 0.0, -MAX_SHIFT, MAX_SHIFT),
            _float(query, "ty", 0.0, -MAX_SHIFT, MAX_SHIFT),
        )
        rotate = _float(query, "rotate", 0.0, -360.0, 360.0)
        if not info.sg3 and (translate != (0.0, 0.0) or rotate != 0.0):
            raise ParamError("translate/rotate need a StyleGAN3 model; this one is not")
        return cls(_int(query, "seed", 0, 0, MAX_SEED), parse_truncation(query, info), translate, rotate)

    def cli_command(self, info: ModelInfo) -> str:
        args = ["stylegan", "generate", *_network(info), "--seeds", str(self.seed), *self.trunc.cli_args(info)]
        if self.translate != (0.0, 0.0):
            args.append(f"--translate={_num(self.translate[0])},{_num(self.translate[1])}")  # may start with '-'
        if self.rotate:
            args += _opt("--rotate", self.rotate)
        return shlex.join([*args, "--outdir", "out"])


@dataclass(frozen=True)
class MixRequest:
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    styles: tuple[int, ...]
    trunc: Truncation

    @classmethod
    def parse(cls, query: Mapping[str, str], info: ModelInfo, default_styles: list[int]) -> MixRequest:
        rows = seed_list(query.get("rows", "85,100,75,458,1500"), "rows", MAX_MIX_SEEDS)
        cols = seed_list(query.get("cols", "55,821,1789,293"), "cols", MAX_MIX_SEEDS)
        text = query.get("styles", "")
        styles = seed_list(text, "styles", info.num_ws) if text.strip() else default_styles
        outside = [i for i in styles if i >= info.num_ws]
        if outside:
            raise ParamError(f"styles {format_range(outside)} out of range: this model has layers 0-{info.num_ws - 1}")
        return cls(tuple(rows), tuple(cols), tuple(styles), parse_truncation(query, info))

    def cli_command(self, info: ModelInfo) -> str:
        seeds = ["--rows", format_range(self.rows), "--cols", format_range(self.cols)]
        args = ["stylegan", "mix", *_network(info), *seeds, "--styles", format_range(self.styles)]
        return shlex.join([*args, *self.trunc.cli_args(info), *NATIVE_SIZE, "--out", "mixing.png"])


@dataclass(frozen=True)
class EditRequest:
    """A seed (or a projection's latent, by its id) moved by `strength` along `direction` in `layers`."""

    seed: int | None
    projection: str | None
    method: str  # "sefa" or "ganspace"
    index: int
    strength: float
    layers: str  # one of LAYER_CHOICES
    trunc: Truncation

    @property
    def direction(self) -> str:
        return f"{self.method}:{self.index}"

    @classmethod
    def parse(cls, query: Mapping[str, str], info: ModelInfo) -> EditRequest:
        projection = query.get("projection", "") or None
        if projection is not None and not PROJECTION_ID.fullmatch(projection):
            raise ParamError("projection must be the id the Project view gave (32 hex digits)")
        if projection is not None and query.get("seed", ""):
            raise ParamError("give either seed or projection, not both")
        m = re.fullmatch(r"(sefa|ganspace):(\d{1,2})", query.get("direction", "sefa:0"))
        if not m or int(m.group(2)) >= MAX_DIRECTION:
            raise ParamError(f"direction must be sefa:K or ganspace:K with K in 0-{MAX_DIRECTION - 1}")
        layers = query.get("layers", "all")
        if layers not in LAYER_CHOICES:
            raise ParamError(f"layers must be one of {', '.join(LAYER_CHOICES)}; got {layers[:40]!r}")
        seed = None if projection is not None else _int(query, "seed", 0, 0, MAX_SEED)
        strength = _float(query, "strength", 0.0, -MAX_STRENGTH, MAX_STRENGTH)
        trunc = parse_truncation(query, info)
        return cls(seed, projection, m.group(1), int(m.group(2)), strength, layers, trunc)

    def cli_command(self, info: ModelInfo) -> str:
        """`stylegan edit` writing the same image; a projection's latent is the projected_w.npz it offers."""
        if self.projection is None:
            source = ["--seeds", str(self.seed), *self.trunc.cli_args(info)]
        else:
            noise = [] if self.trunc.noise_mode == "const" else ["--noise-mode", self.trunc.noise_mode]
            source = ["--projected-w", "projected_w.npz", *noise]
        args = ["stylegan", "edit", *_network(info), *source, "--direction", self.direction]
        args += _opt("--strengths", self.strength)
        if self.layers != "all":
            args += ["--layers", self.layers]
        return shlex.join([*args, *NATIVE_SIZE, "--out", "edit.png"])


def parse_truncation(query: Mapping[str, str], info: ModelInfo) -> Truncation:
    """psi in [-1, 2], cutoff in [0, num_ws] (num_ws = all), class for conditional models, noise mode."""
    psi = _float(query, "psi", info.default_psi, -1.0, 2.0)
    default_cutoff = info.num_ws if info.default_cutoff is None else info.default_cutoff
    cutoff = _int(query, "cutoff", default_cutoff, 0, info.num_ws)
    noise_mode = query.get("noise", "const")
    if noise_mode not in NOISE_MODES:
        raise ParamError(f"noise must be one of {', '.join(NOISE_MODES)}; got {noise_mode[:40]!r}")
    return Truncation(psi, None if cutoff == info.num_ws else cutoff, _class(query, info), noise_mode)


def _class(query: Mapping[str, str], info: ModelInfo) -> int | None:
    if info.c_dim == 0:
        if query.get("class", "") != "":
            raise ParamError("this model is unconditional: drop class")
        return None
    return _int(query, "class", 0, 0, info.c_dim - 1)


def project_steps(query: Mapping[str, str], default: int, most: int) -> int:
    """W steps of a projection: 1 to `most`."""
    return _int(query, "steps", default, 1, most)


def seed_list(text: str, what: str, max_count: int) -> list[int]:
    """'1-3,7' -> [1, 2, 3, 7], refusing more than max_count values before expanding any range."""
    text = str(text)
    if len(text) > MAX_TEXT:
        raise ParamError(f"{what} is too long (over {MAX_TEXT} characters)")
    spans = re.findall(r"(\d+)\s*-\s*(\d+)", text)
    count = text.count(",") + 1 + sum(max(0, int(hi) - int(lo)) for lo, hi in spans)
    if count > max_count:
        raise ParamError(f"{what} names {count} values; at most {max_count} are allowed")
    try:
        values = parse_range(text, what=what)
    except ValueError as err:
        raise ParamError(str(err)) from None
    if any(v > MAX_SEED for v in values):
        raise ParamError(f"{what}: values are integers in [0, {MAX_SEED}]")
    return values


def _int(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    text = query.get(name, "")
    if text == "":
        return default
    if not re.fullmatch(r"-?\d{1,12}", text.strip()) or not lo <= int(text) <= hi:
        raise ParamError(f"{name} must be an integer in [{lo}, {hi}]; got {text[:40]!r}")
    return int(text)


def _float(query: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    text = query.get(name, "")
    if text == "":
        return default
    try:
        value = float(text[:40])
    except ValueError:
        value = math.nan
    if not lo <= value <= hi:  # also refuses nan and inf
        raise ParamError(f"{name} must be a number in [{_num(lo)}, {_num(hi)}]; got {text[:40]!r}")
    return value + 0.0  # -0.0 -> 0.0


def _num(x: float) -> str:
    """Shortest text that reads back as the same float: 0.7 -> '0.7', 1.0 -> '1'."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _opt(flag: str, value: float) -> list[str]:
    """['--trunc', '0.7']; a negative value joins its flag ('--trunc=-0.5') so that it cannot read as an option."""
    return [flag, _num(value)] if value >= 0 else [f"{flag}={_num(value)}"]


NATIVE_SIZE = ["--zoom", "1"]  # the page shows the model's own size; the CLI would enlarge small models' figures


def _network(info: ModelInfo) -> list[str]:
    return [] if info.spec is None else ["--network", info.spec]
