"""TrainingOptions: every option of a run (saved as config.json) and the hyper-parameters they resolve to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from stylegan.networks.presets import AUTO, PRESETS, Preset, blur_fade_kimg, heuristic_gamma, resolve_preset

AUG_MODES = ("ada", "fixed", "noaug")


class OptionsError(ValueError):
    """An option value or combination a user has to change."""


@dataclass
class TrainingOptions:
    """All options of `stylegan train`. None means "from the --cfg preset"."""

    data: str = ""
    outdir: str = "runs"
    cfg: str = "auto"
    gpus: int = 1
    batch: int | None = None
    batch_gpu: int | None = None
    gamma: float | None = None
    kimg: float = 25000
    snap: int = 50
    tick: float = 4
    cond: bool = False
    mirror: bool = False
    resolution: int | None = None
    aug: str = "ada"
    augpipe: str = "bgc"
    p: float | None = None
    target: float = 0.6
    ada_kimg: float = 500
    ada_interval: int = 4
    seed: int = 0
    metrics: tuple[str, ...] = ()
    device: str = "auto"
    fp32: bool = False
    cbase: int | None = None
    cmax: int | None = None
    map_depth: int | None = None
    num_layers: int | None = None  # StyleGAN3 synthesis layers (NVIDIA: 14)
    mbstd_group: int | None = None
    z_dim: int = 512
    w_dim: int = 512
    glr: float | None = None
    dlr: float | None = None
    ema_kimg: float | None = None
    pl_weight: float | None = None
    style_mixing: float | None = None
    grid_size: int = 32
    desc: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["metrics"] = list(self.metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainingOptions:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["metrics"] = tuple(kwargs.get("metrics", ()))
        return cls(**kwargs)

    def validate(self) -> None:
        """Raises OptionsError with a one-line message for values that cannot work."""
        if self.cfg not in PRESETS:
            raise OptionsError(f"--cfg {self.cfg!r} is unknown; choose one of {', '.join(PRESETS)}")
        if self.aug not in AUG_MODES:
            raise OptionsError(f"--aug {self.aug!r} is unknown; choose one of {', '.join(AUG_MODES)}")
        if self.gpus < 1:
            raise OptionsError(f"--gpus must be >= 1, got {self.gpus}")
        for name in ("batch", "batch_gpu"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OptionsError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.kimg <= 0 or self.tick <= 0 or self.snap < 1:
            raise OptionsError("--kimg and --tick must be > 0 and --snap >= 1")
        if self.p is not None and not 0 <= self.p <= 1:
            raise OptionsError(f"--p must be in [0, 1], got {self.p}")
        if self.aug == "fixed" and self.p is None:
            raise OptionsError("--aug fixed needs --p")
        if not 0 < self.target < 1:
            raise OptionsError(f"--target must be in (0, 1), got {self.target}")
        if self.num_layers is not None and PRESETS[self.cfg].family != "stylegan3":
            raise OptionsError("--num-layers sets StyleGAN3's synthesis layers: use it with --cfg stylegan3-t/-r")
        if self.num_layers is not None and self.num_layers < 3:
            raise OptionsError(f"--num-layers must be >= 3 (two of them are critically sampled), got {self.num_layers}")


@dataclass(frozen=True)
class Hyper:
    """Numbers the loop uses, resolved from the options, the preset and the data resolution."""

    preset: Preset
    batch: int
    batch_gpu: int
    rounds: int  # accumulation rounds per process per step
    gamma: float
    glr: float
    dlr: float
    ema_kimg: float
    ema_rampup: float | None
    pl_weight: float
    style_mixing: float
    mbstd_group: int
    blur_sigma: float = 0.0  # D-input blur at kimg 0 (stylegan3-r: 10 px), fading linearly ...
    blur_fade_kimg: float = 0.0  # ... to 0 at this kimg


def resolve_hyper(opts: TrainingOptions, resolution: int, world_size: int) -> Hyper:
    """Combines options with the preset; checks that batch splits evenly over processes and rounds."""
    p = resolve_preset(opts.cfg, resolution, world_size)
    batch = opts.batch if opts.batch is not None else p.batch
    batch_gpu = opts.batch_gpu if opts.batch_gpu is not None else batch // world_size
    if batch_gpu < 1 or batch % (world_size * batch_gpu):
        raise OptionsError(
            f"--batch {batch} is not divisible by --gpus {world_size} x --batch-gpu {batch_gpu}; "
            f"choose --batch a multiple of {world_size * max(batch_gpu, 1)}"
        )
    mbstd = opts.mbstd_group if opts.mbstd_group is not None else min(p.mbstd, batch_gpu)
    if batch_gpu % mbstd:
        raise OptionsError(
            f"--batch-gpu {batch_gpu} must be a multiple of the minibatch-std group {mbstd} (set --mbstd-group)"
        )
    derived_ema = opts.cfg == "auto" or p.ema_kimg == AUTO
    ema_kimg = opts.ema_kimg if opts.ema_kimg is not None else (batch * 10 / 32 if derived_ema else p.ema_kimg)
    preset_gamma = heuristic_gamma(resolution, batch) if p.gamma == AUTO else p.gamma
    return Hyper(
        preset=p,
        batch=batch,
        batch_gpu=batch_gpu,
        rounds=batch // (world_size * batch_gpu),
        gamma=opts.gamma if opts.gamma is not None else preset_gamma,
        glr=opts.glr if opts.glr is not None else p.lrate,
        dlr=opts.dlr if opts.dlr is not None else (p.d_lrate or p.lrate),
        ema_kimg=ema_kimg,
        ema_rampup=p.ema_rampup,
        pl_weight=opts.pl_weight if opts.pl_weight is not None else p.pl_weight,
        style_mixing=opts.style_mixing if opts.style_mixing is not None else p.style_mixing_prob,
        mbstd_group=mbstd,
        blur_sigma=p.blur_sigma,
        blur_fade_kimg=blur_fade_kimg(p, batch),
    )


def optimizer_settings(hyper: Hyper) -> dict[str, dict]:
    """Adam settings of G and D as NVIDIA's recipe yields them, and how often each regulariser runs.

    A network regularised lazily, every k > 1 steps, gets lr * k / (k + 1) and beta2 ** (k / (k + 1)): a cycle
    of k main steps and one regulariser step then moves as far as k steps at the base settings. NVIDIA keeps k even
    when the regulariser is off (`--cfg cifar` has no path length). StyleGAN2 presets: G k = 4, D k = 16;
    StyleGAN3: G k = 1 (no lazy regularisation: lr and betas as given), D k = 16; the 2019 recipe (`stylegan1`)
    regularises at every step, k = 1 for both.

    Returns:
        {"G": {...}, "D": {...}}, each with lr, betas, eps and reg_interval (k).
    """
    intervals = {"G": hyper.preset.g_reg_interval, "D": hyper.preset.d_reg_interval}
    out = {}
    for net, base_lr in (("G", hyper.glr), ("D", hyper.dlr)):
        k = intervals[net]
        share = k / (k + 1) if k > 1 else 1.0
        out[net] = {"lr": base_lr * share, "betas": (0.0, 0.99**share), "eps": 1e-8, "reg_interval": k}
    return out
