"""The training loop: a short orchestrator of named steps over a `Run` that holds the state.

Determinism: every chunk of every phase of every step reseeds the global RNG from (seed, step, phase, chunk),
and real images come from a seeded sampler whose position is saved. A resumed run therefore repeats the
uninterrupted one exactly, and N processes see the same numbers as one process accumulating N chunks.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylegan import distributed as dist_utils
from stylegan.device import select_device
from stylegan.distributed import ProcessInfo
from stylegan.images import save_png, tile, to_uint8
from stylegan.io import atomic_write, load_native, save_networks
from stylegan.networks.presets import build_configs
from stylegan.networks.registry import build_network
from stylegan.training.augment import AdaController
from stylegan.training.augment_adapter import build_augment_pipe
from stylegan.training.ema import ema_beta, update_ema
from stylegan.training.loss import LossConfig, StyleGAN2Loss
from stylegan.training.options import (
    Hyper,
    OptionsError,
    TrainingOptions,
    optimizer_settings,
    resolve_hyper,
)
from stylegan.training.state import (
    InfiniteSampler,
    chunk_seed,
    get_rng_states,
    load_training_state,
    next_run_dir,
    read_run_config,
    save_training_state,
    set_rng_states,
)


class TrainingDiverged(RuntimeError):
    """A loss or gradient became NaN/inf; the message names the phase, the loss and the last good snapshot."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM stopped the run; the message says which snapshot was saved and how to continue."""


@dataclass(frozen=True)
class Phase:
    """One optimisation phase: which network, how often, with which optimizer."""

    name: str
    module: nn.Module
    opt: torch.optim.Optimizer
    interval: int


@dataclass
class Run:
    """Everything the loop reads and mutates."""

    opts: TrainingOptions
    hyper: Hyper
    info: ProcessInfo
    device: torch.device
    run_dir: Path
    dataset: object
    labels: torch.Tensor  # [len, c_dim]
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    loss: StyleGAN2Loss
    phases: list[Phase]
    augment_pipe: nn.Module | None
    ada: AdaController | None
    sampler: InfiniteSampler
    cur_nimg: int = 0
    batch_idx: int = 0
    cur_tick: int = 0
    tick_start_nimg: int = 0
    tick_start_time: float = 0.0
    start_time: float = 0.0
    elapsed_before: float = 0.0  # training seconds of earlier sessions of this run
    last_snapshot: Path | None = None
    tick_stats: dict = field(default_factory=lambda: defaultdict(lambda: [0.0, 0]))
    writers: dict = field(default_factory=dict)
    phase_seconds: dict = field(default_factory=dict)  # wall time of each phase's first run (for the estimate)
    say: Callable[[str], None] = lambda _msg: None  # one-line notes for the user (rank 0 with progress)

    @property
    def total_nimg(self) -> int:
        return int(round(self.opts.kimg * 1000))

    @property
    def done(self) -> bool:
        return self.cur_nimg >= self.total_nimg


# ---- public entry points -----------------------------------------------------------------------------------


def training_loop(
    opts: TrainingOptions,
    info: ProcessInfo | None = None,
    resume_state: Path | None = None,
    progress: bool = True,
    dataset=None,
) -> Path:
    """Trains until opts.kimg, writing the run folder; returns it.

    Args:
        opts: all options (for a resumed run, those of its config.json with kimg/snap/tick/metrics updated).
        info: rank and world size when launched as several processes (process group already joined).
        resume_state: a training-state file to continue from.
        progress: show a tqdm bar (rank 0 only).
        dataset: the result of open_dataset(opts), when already open.
    """
    info = info or ProcessInfo()
    say = _stderr_line if progress and info.is_main else (lambda _msg: None)
    run = setup_run(opts, info, resume_state, dataset, say=say)
    bar = _progress_bar(run, progress)
    try:
        with _StopRequests() as stop:
            while not run.done:
                train_step(run)
                bar.update(run.hyper.batch)
                if run.batch_idx == 1 and run.device.type == "cpu" and not run.done:
                    say(cpu_estimate_line(run))
                if stop.agreed(run):
                    stop_with_snapshot(run, stop.signal_name)
                if _tick_due(run):
                    end_tick(run)
    finally:
        bar.close()
        for w in run.writers.values():
            w.close()
    return run.run_dir


def _stderr_line(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


class _StopRequests:
    """Turns SIGINT/SIGTERM into a request honoured at the next step boundary (a second SIGINT stops at once).

    Handlers are installed only in the main thread; with several ranks the request is agreed by an all-reduce,
    so every rank stops after the same step.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.signal_name: str | None = None
        self._saved: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self._saved[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        return False

    def _note(self, signum, _frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now, without a snapshot
        self.signal_name = signal.Signals(signum).name

    def agreed(self, run: Run) -> bool:
        """Whether any rank was asked to stop (an all-reduce with several ranks)."""
        local = torch.tensor([0.0 if self.signal_name is None else 1.0])
        if run.info.world_size == 1:
            return bool(local.item())
        stop = float(dist_utils.all_reduce_sum(local, run.info, run.device)) > 0
        self.signal_name = self.signal_name or ("a signal on another rank" if stop else None)
        return stop


def stop_with_snapshot(run: Run, why: str | None) -> None:
    """Ends the tick early with a snapshot and training state, then raises TrainingInterrupted."""
    end_tick(run, force_snapshot=True, metrics=False)
    raise TrainingInterrupted(
        f"stopped by {why} at kimg {run.cur_nimg / 1000:.3f} (step {run.batch_idx}); saved "
        f"{snapshot_name('training-state', run.cur_nimg)} in {run.run_dir}; continue with --resume latest"
    )


def cpu_estimate_line(run: Run) -> str:
    """Seconds per kimg from the first step's phase timings (each phase weighted by 1/interval)."""
    per_step = sum(run.phase_seconds.get(ph.name, 0.0) / ph.interval for ph in run.phases)
    per_kimg = per_step * 1000 / run.hyper.batch
    left = (run.total_nimg - run.cur_nimg) / 1000 * per_kimg
    return f"CPU: about {per_kimg:.0f} s per kimg at this size, so about {_duration(left)} to kimg {run.opts.kimg:g}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# ---- setup -------------------------------------------------------------------------------------------------


def setup_run(
    opts: TrainingOptions,
    info: ProcessInfo,
    resume_state: Path | None = None,
    dataset=None,
    say: Callable[[str], None] | None = None,
) -> Run:
    """Builds data, networks, loss, optimizers and augmentation; restores a state file when resuming.

    `say` gets one-line notes: the run folder, what is resumed, and on a CPU the size and a CPU recipe.
    """
    opts.validate()
    device = select_device(opts.device, local_rank=info.local_rank)
    torch.backends.cudnn.benchmark = True  # NVIDIA's choice: speed over bitwise-repeatable CUDA kernels
    dataset = dataset if dataset is not None else open_dataset(opts)
    hyper = resolve_hyper(opts, dataset.resolution, info.world_size)
    G, D = build_networks(opts, hyper, dataset, device)
    for module in (G, D):
        dist_utils.broadcast_module(module, info)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    augment_pipe, ada = build_augment_pipe(opts, hyper.batch, device)
    loss_cfg = LossConfig(
        r1_gamma=hyper.gamma, style_mixing_prob=hyper.style_mixing, pl_weight=hyper.pl_weight,
        blur_sigma=hyper.blur_sigma, blur_fade_kimg=hyper.blur_fade_kimg,
    )  # fmt: skip
    loss = StyleGAN2Loss(G, D, loss_cfg, augment_pipe, on_real_logits=ada.observe if ada is not None else None)
    if resume_state:
        run_dir = Path(resume_state).parent
    else:
        run_dir = next_run_dir(opts.outdir, run_description(opts, dataset, hyper))
    dist_utils.barrier(info)  # every rank has chosen the same folder before rank 0 creates it
    labels = torch.from_numpy(np.stack([dataset.get_label(i) for i in range(len(dataset))]))  # [len, c_dim]
    sampler = InfiniteSampler(len(dataset), seed=opts.seed)
    run = Run(opts=opts, hyper=hyper, info=info, device=device, run_dir=run_dir, dataset=dataset,
              labels=labels, G=G, D=D, G_ema=G_ema, loss=loss, phases=make_phases(G, D, hyper),
              augment_pipe=augment_pipe, ada=ada, sampler=sampler, say=say or (lambda _msg: None))  # fmt: skip
    if resume_state:
        restore_state(run, Path(resume_state))
        run.say(resume_line(run, Path(resume_state)))
    else:
        if info.is_main:
            start_run_dir(run)
        run.say(f"run folder: {run.run_dir}")
    if device.type == "cpu":
        run.say(cpu_size_line(run))
    if info.is_main:
        run.writers = _open_writers(run.run_dir)
    run.start_time = run.tick_start_time = time.time()
    return run


class _CachedDataset:
    """Keeps decoded images of a small dataset in memory (decoding and resizing once per image)."""

    def __init__(self, dataset, limit_bytes: int = 1 << 30):
        self.dataset, self._cache = dataset, {}
        self._enabled = len(dataset) * int(np.prod(dataset.image_shape)) <= limit_bytes

    def image(self, idx: int) -> np.ndarray:
        if idx in self._cache:
            return self._cache[idx]
        img = self.dataset[idx][0]
        if self._enabled:
            self._cache[idx] = img
        return img

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)


def open_dataset(opts: TrainingOptions) -> _CachedDataset:
    """The training images (ImageFolderDataset) behind an in-memory cache."""
    from stylegan.data import ImageFolderDataset

    if not opts.data:
        raise OptionsError("--data is required")
    # A zip is normally made by `stylegan dataset`, which already decoded every image once: skip that check.
    verify = not str(opts.data).lower().endswith(".zip")
    ds = ImageFolderDataset(
        opts.data, resolution=opts.resolution, use_labels=opts.cond, xflip=opts.mirror, verify=verify
    )
    if opts.cond and not ds.has_labels:
        raise OptionsError(f"--cond: {opts.data} has no labels (dataset.json)")
    return _CachedDataset(ds)


def build_networks(opts: TrainingOptions, hyper: Hyper, dataset, device: torch.device):
    """G and D of the preset at the data resolution, with the small-network overrides; seeded by --seed."""
    given = dict(
        channel_base=opts.cbase, channel_max=opts.cmax, mapping_layers=opts.map_depth, num_layers=opts.num_layers
    )
    overrides = {k: v for k, v in given.items() if v is not None}
    g_cfg, d_cfg = build_configs(
        opts.cfg,
        dataset.resolution,
        img_channels=dataset.num_channels,
        c_dim=dataset.label_dim,
        gpus=opts.gpus,
        num_fp16_res=0 if opts.fp32 else 4,
        conv_clamp=None if opts.fp32 else 256,
        batch=hyper.batch,
        mbstd_group_size=hyper.mbstd_group,
        z_dim=opts.z_dim,
        w_dim=opts.w_dim,
        **overrides,
    )
    torch.manual_seed(opts.seed)
    G = build_network(g_cfg).train().requires_grad_(False).to(device)
    D = build_network(d_cfg).train().requires_grad_(False).to(device)
    return G, D


def make_phases(G: nn.Module, D: nn.Module, hyper: Hyper) -> list[Phase]:
    """The optimisation phases and their Adam optimizers (see options.optimizer_settings).

    A network with regulariser interval k > 1 gets a main phase every step and a reg phase every k steps, the
    latter only when its weight is > 0 (an empty phase would still move Adam's state); with k = 1 one 'both'
    phase every step. StyleGAN2: Gmain, Greg/4, Dmain, Dreg/16. StyleGAN3: Gboth (no path length, so G's loss
    alone), Dmain, Dreg/16. StyleGAN1: Gboth and Dboth (R1) every step.
    """
    settings = optimizer_settings(hyper)
    reg_weight = {"G": hyper.pl_weight, "D": hyper.gamma}
    phases = []
    for net, module in (("G", G), ("D", D)):
        s = settings[net]
        opt = torch.optim.Adam(module.parameters(), lr=s["lr"], betas=s["betas"], eps=s["eps"])
        k = s["reg_interval"]
        if k == 1:
            phases.append(Phase(f"{net}both", module, opt, 1))
            continue
        phases.append(Phase(f"{net}main", module, opt, 1))
        if reg_weight[net] > 0:
            phases.append(Phase(f"{net}reg", module, opt, k))
    return phases


def run_description(opts: TrainingOptions, dataset, hyper: Hyper) -> str:
    """NVIDIA-style folder suffix: <data>-<cfg>-gpus<N>-batch<B>-gamma<G>[-desc]."""
    desc = f"{dataset.name}-{opts.cfg}-gpus{opts.gpus}-batch{hyper.batch}-gamma{hyper.gamma:g}"
    return desc + (f"-{opts.desc}" if opts.desc else "")


# The packaged model's recipe: 100 kimg of 32x32 images in about an hour on 2 cores.
CPU_RECIPE = "--cfg cifar --batch 32 --cbase 1024 --cmax 64 --z-dim 64 --w-dim 64 --map-depth 2 --aug noaug"
# StyleGAN3 on a CPU: 16² Fashion-MNIST learns visibly in 1 kimg (about 2 min on 2 cores) with this size.
CPU_RECIPE_SG3 = "--batch 8 --cbase 512 --cmax 64 --num-layers 6 --z-dim 64 --w-dim 64 --aug noaug"
CPU_LARGE_PARAMS = 2_000_000  # G parameters above which a CPU run gets the recipe hint


def cpu_size_line(run: Run) -> str:
    """One line on what runs on the CPU; for a large G, the small recipe and a smoke-run command."""
    n = sum(p.numel() for p in run.G.parameters())
    res = run.dataset.resolution
    line = f"CPU run: --cfg {run.opts.cfg} at {res}x{res}, G {n / 1e6:.2f}M parameters, batch {run.hyper.batch}"
    if n <= CPU_LARGE_PARAMS:
        return line
    data = f"{run.opts.data}" + (f" --resolution {run.opts.resolution}" if run.opts.resolution else "")
    sg3 = run.hyper.preset.family == "stylegan3"
    recipe = f"--cfg {run.opts.cfg} {CPU_RECIPE_SG3}" if sg3 else CPU_RECIPE
    return (
        f"{line}: a GPU-sized network, slow here. A CPU-sized one: stylegan train --data {data} {recipe} "
        "--kimg 100 (smoke run: --kimg 0.1)"
    )


def resume_line(run: Run, state_path: Path) -> str:
    """What --resume continues: the run folder, the snapshot and where it stands."""
    return (
        f"resuming {run.run_dir} from {state_path.name} (kimg {run.cur_nimg / 1000:.3f}, step {run.batch_idx}, "
        f"tick {run.cur_tick}) to kimg {run.opts.kimg:g}"
    )


def start_run_dir(run: Run) -> None:
    """Creates the run folder with config.json (options and resolved hyper-parameters) and a grid of reals."""
    try:
        run.run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as err:
        raise OptionsError(f"--outdir: cannot create the run folder {run.run_dir}: {err.strerror or err}") from None
    config = {**run.opts.to_dict(), "resolved": _hyper_dict(run)}
    atomic_write(run.run_dir / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    idx = np.random.default_rng(run.opts.seed).permutation(len(run.dataset))[: _grid_count(run)]
    reals = torch.from_numpy(np.stack([run.dataset.image(int(i)) for i in idx]))
    save_png(tile(reals, cols=_grid_cols(len(reals)), fill=0), run.run_dir / "reals.png", generated=False)


def _hyper_dict(run: Run) -> dict:
    h = run.hyper
    return {
        "batch": h.batch,
        "batch_gpu": h.batch_gpu,
        "rounds": h.rounds,
        "gamma": h.gamma,
        "glr": h.glr,
        "dlr": h.dlr,
        "ema_kimg": h.ema_kimg,
        "ema_rampup": h.ema_rampup,
        "pl_weight": h.pl_weight,
        "style_mixing": h.style_mixing,
        "mbstd_group": h.mbstd_group,
        "blur_sigma": h.blur_sigma,
        "blur_fade_kimg": h.blur_fade_kimg,
        "world_size": run.info.world_size,
        "resolution": run.dataset.resolution,
        "channels": run.dataset.num_channels,
        "c_dim": run.dataset.label_dim,
        "num_images": len(run.dataset),
        "G": run.G.config.to_dict(),
        "D": run.D.config.to_dict(),
        "optimizers": optimizer_settings(h),
    }


def _open_writers(run_dir: Path) -> dict:
    writers = {"stats": open(run_dir / "stats.jsonl", "a")}  # noqa: SIM115 (closed by training_loop)
    try:
        from torch.utils.tensorboard import SummaryWriter

        writers["tb"] = SummaryWriter(str(run_dir))
    except ImportError:
        pass
    return writers


# ---- one training step -------------------------------------------------------------------------------------


def train_step(run: Run) -> None:
    """One optimiser step over the global batch: every due phase, then EMA, counters and ADA."""
    idx = run.sampler.take(run.hyper.batch)  # [batch] the same on every rank
    chunks = my_chunks(run)
    real_img, real_c = load_real(run, idx, chunks)
    for phase_idx, phase in enumerate(run.phases):
        if run.batch_idx % phase.interval == 0:
            run_phase(run, phase_idx, phase, real_img, real_c, chunks)
    update_ema(run.G_ema, run.G, ema_beta(run.hyper.batch, run.hyper.ema_kimg, run.cur_nimg, run.hyper.ema_rampup))
    run.cur_nimg += run.hyper.batch
    run.batch_idx += 1
    adjust_augment(run)


def my_chunks(run: Run) -> list[int]:
    """Global indices of this rank's chunks: chunk k holds images [k*batch_gpu, (k+1)*batch_gpu)."""
    w = run.info.world_size
    return [r * w + run.info.rank for r in range(run.hyper.rounds)]


def load_real(run: Run, idx: np.ndarray, chunks: list[int]) -> tuple[dict, dict]:
    """This rank's real images (float in [-1, 1], [batch_gpu, C, H, W] per chunk) and labels."""
    bg = run.hyper.batch_gpu
    imgs, cs = {}, {}
    for k in chunks:
        sel = idx[k * bg : (k + 1) * bg]
        img = torch.from_numpy(np.stack([run.dataset.image(int(i)) for i in sel]))  # [bg, C, H, W] uint8
        imgs[k] = img.to(run.device).to(torch.float32) / 127.5 - 1
        cs[k] = torch.from_numpy(np.stack([run.dataset.get_label(int(i)) for i in sel])).to(run.device)
    return imgs, cs


def run_phase(run: Run, phase_idx: int, phase: Phase, real_img: dict, real_c: dict, chunks: list[int]) -> None:
    """Accumulates the phase's gradients over this rank's chunks, sums them over ranks and steps."""
    started = time.perf_counter()
    params = list(phase.module.parameters())
    for param in params:
        param.grad = None
    num_chunks = run.hyper.rounds * run.info.world_size
    stats = defaultdict(float)
    with _trainable(phase.module):
        for k in chunks:
            torch.manual_seed(chunk_seed(run.opts.seed, run.batch_idx, phase_idx, k))
            gen_z, gen_c = draw_latents(run)
            out = run.loss.accumulate_gradients(
                phase.name, real_img[k], real_c[k], gen_z, gen_c, gain=phase.interval / num_chunks,
                cur_nimg=run.cur_nimg,
            )  # fmt: skip
            for name, value in out.items():
                stats[name] += float(value)
    if "pl" in run.loss.active_terms(phase.name):
        s, n = run.loss.pop_pl_update()
        total = dist_utils.all_reduce_sum(torch.stack([s, torch.tensor(float(n), device=s.device)]), run.info)
        run.loss.update_pl_mean(total[0] / total[1])
    flat = dist_utils.all_reduce_sum_grads(params, run.info)
    check_finite(run, phase, stats, flat)
    phase.opt.step()
    record_phase_stats(run, stats, len(chunks))
    run.phase_seconds.setdefault(phase.name, time.perf_counter() - started)


@contextlib.contextmanager
def _trainable(module: nn.Module):
    """Gradients flow into `module`'s parameters only inside the block."""
    module.requires_grad_(True)
    try:
        yield
    finally:
        module.requires_grad_(False)


def draw_latents(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """z [batch_gpu, z_dim] and c [batch_gpu, c_dim] (labels of random images), from the global RNG."""
    bg = run.hyper.batch_gpu
    gen_z = torch.randn([bg, run.G.z_dim]).to(run.device)
    gen_c = run.labels[torch.randint(len(run.labels), [bg])].to(run.device)
    return gen_z, gen_c


def check_finite(run: Run, phase: Phase, stats: dict, flat: torch.Tensor | None) -> None:
    """Stops the run (on every rank alike) when a loss or the reduced gradient is NaN/inf."""
    bad_losses = sorted(name for name, v in stats.items() if not math.isfinite(v))
    flags = torch.tensor([float(len(bad_losses)), 0.0 if flat is None else float(~torch.isfinite(flat).all())])
    flags = dist_utils.all_reduce_sum(flags, run.info, run.device)
    if flags.sum() == 0:
        return
    what = ", ".join(bad_losses) if bad_losses else ("losses on another process" if flags[0] else "gradients")
    snap = run.last_snapshot.name if run.last_snapshot else "none yet"
    raise TrainingDiverged(
        f"training diverged at kimg {run.cur_nimg / 1000:.3f} (step {run.batch_idx}), phase "
        f"{phase.name}: non-finite {what}; last good snapshot: {snap} in {run.run_dir}"
    )


def record_phase_stats(run: Run, stats: dict, num_chunks: int) -> None:
    """Adds chunk-mean losses to the tick's running sums ('Loss/<name>')."""
    for name, value in stats.items():
        entry = run.tick_stats[f"Loss/{name}"]
        entry[0] += value / num_chunks
        entry[1] += 1


def adjust_augment(run: Run) -> None:
    """Every ada_interval steps: ADA moves p toward the r_t target using the sign of D's real logits."""
    if run.ada is not None:
        run.ada.step()


# ---- ticks, snapshots, stats -------------------------------------------------------------------------------


def _tick_due(run: Run) -> bool:
    return (
        run.done
        or run.cur_tick == 0
        and run.batch_idx == 1
        or (run.cur_nimg >= run.tick_start_nimg + run.opts.tick * 1000)
    )


def end_tick(run: Run, force_snapshot: bool = False, metrics: bool = True) -> None:
    """Writes the tick's stats line; every --snap ticks (at the end, and when forced) a snapshot and grid."""
    now = time.time()
    line = tick_stats_line(run, now)
    if run.info.is_main:
        write_stats(run, line)
    if force_snapshot or run.done or run.cur_tick % run.opts.snap == 0:
        save_snapshot(run, metrics=metrics)
    run.cur_tick += 1
    run.tick_start_nimg, run.tick_start_time = run.cur_nimg, time.time()


def tick_stats_line(run: Run, now: float) -> dict:
    """Averages the tick's stats over ranks; adds counters, timing and ADA."""
    names = sorted(run.tick_stats)
    local = torch.tensor(
        [run.tick_stats[n][0] for n in names] + [run.tick_stats[n][1] for n in names], dtype=torch.float64
    )
    total = dist_utils.all_reduce_sum(local, run.info, run.device).tolist()
    k = len(names)
    losses = {n: total[i] / max(total[k + i], 1) for i, n in enumerate(names)}
    run.tick_stats.clear()
    tick_kimg = (run.cur_nimg - run.tick_start_nimg) / 1000
    sec = now - run.tick_start_time
    return {
        "tick": run.cur_tick,
        "kimg": run.cur_nimg / 1000,
        "step": run.batch_idx,
        **losses,
        "Progress/augment_p": _pipe_p(run),
        "Progress/r_t": run.ada.rt if run.ada else None,
        "Progress/pl_mean": float(run.loss.pl_mean),
        "Timing/sec_per_tick": sec,
        "Timing/sec_per_kimg": sec / max(tick_kimg, 1e-9),
        "Timing/total_sec": run.elapsed_before + now - run.start_time,
        **_gpu_memory(run.device),
        "timestamp": now,
    }


def _gpu_memory(device: torch.device) -> dict:
    """Peak CUDA memory of the tick in GiB (as NVIDIA's Resources/peak_gpu_mem_gb); resets the peak."""
    if device.type != "cuda":
        return {}
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return {"Resources/peak_gpu_mem_gb": peak}


def _pipe_p(run: Run) -> float | None:
    return float(run.augment_pipe.p) if run.augment_pipe is not None else None


def write_stats(run: Run, line: dict) -> None:
    """Appends to stats.jsonl (flushed per line) and TensorBoard."""
    run.writers["stats"].write(json.dumps(line) + "\n")
    run.writers["stats"].flush()
    tb = run.writers.get("tb")
    if tb is not None:
        for name, value in line.items():
            if isinstance(value, float) and name != "timestamp":
                tb.add_scalar(name, value, global_step=int(line["kimg"] * 1000))
        tb.flush()


def snapshot_name(kind: str, cur_nimg: int) -> str:
    """network-000012.000.safetensors / training-state-000012.000.pt / fakes-000012.000.png (kimg)."""
    ext = {"network": "safetensors", "training-state": "pt", "fakes": "png"}[kind]
    return f"{kind}-{cur_nimg / 1000:010.3f}.{ext}"


def save_snapshot(run: Run, metrics: bool = True) -> None:
    """Networks (native format), the training-state file (written last: marks a whole snapshot), grid;
    then --metrics unless `metrics` is False."""
    if run.info.is_main:
        save_networks(
            run.run_dir / snapshot_name("network", run.cur_nimg),
            {"G": run.G, "D": run.D, "G_ema": run.G_ema},
            extra={"kimg": run.cur_nimg / 1000, "training_options": run.opts.to_dict()},
        )
        fakes = sample_grid(run)
        save_png(tile(fakes, cols=_grid_cols(len(fakes)), fill=0), run.run_dir / snapshot_name("fakes", run.cur_nimg))
        save_training_state(run.run_dir / snapshot_name("training-state", run.cur_nimg), collect_state(run))
        run.last_snapshot = run.run_dir / snapshot_name("network", run.cur_nimg)
    if metrics:
        run_metrics(run)


def collect_state(run: Run) -> dict:
    """Optimizers, counters, ADA, pl_mean, sampler position and RNG states: tensors and plain types only."""
    return {
        "cur_nimg": run.cur_nimg,
        "batch_idx": run.batch_idx,
        "cur_tick": run.cur_tick + 1,
        "elapsed_sec": run.elapsed_before + time.time() - run.start_time,
        "optimizers": {ph.name[0]: ph.opt.state_dict() for ph in run.phases},
        "pl_mean": run.loss.pl_mean.detach().cpu(),
        "ada": run.ada.state_dict() if run.ada else None,
        "augment_p": _pipe_p(run),
        "sampler_position": run.sampler.position,
        "rng": get_rng_states(),
        "network_file": snapshot_name("network", run.cur_nimg),
        "world_size": run.info.world_size,
    }


def restore_state(run: Run, state_path: Path) -> None:
    """Loads networks and state of a snapshot; trims stats.jsonl to the lines written before it."""
    state = load_training_state(state_path)
    nets = load_native(state_path.parent / state["network_file"])
    for name in ("G", "D", "G_ema"):
        getattr(run, name).load_state_dict(nets[name].state_dict())
    for ph in run.phases:
        ph.opt.load_state_dict(state["optimizers"][ph.name[0]])
    run.loss.pl_mean.copy_(state["pl_mean"])
    if run.ada is not None and state["ada"] is not None:
        run.ada.load_state_dict(state["ada"])
    elif run.augment_pipe is not None and state["augment_p"] is not None:
        run.augment_pipe.p.copy_(torch.as_tensor(state["augment_p"]))
    run.cur_nimg, run.batch_idx, run.cur_tick = state["cur_nimg"], state["batch_idx"], state["cur_tick"]
    run.tick_start_nimg, run.elapsed_before = run.cur_nimg, state["elapsed_sec"]
    run.sampler.position = state["sampler_position"]
    set_rng_states(state["rng"])
    run.last_snapshot = state_path.parent / state["network_file"]
    if run.info.is_main:
        trim_stats(run.run_dir / "stats.jsonl", run.cur_nimg)


def trim_stats(path: Path, cur_nimg: int) -> None:
    """Drops stats lines written after the snapshot we resume from (a killed run may have gone further)."""
    if not path.is_file():
        return
    keep = [
        ln
        for ln in path.read_text().splitlines(keepends=True)
        if ln.strip() and ln.endswith("\n") and json.loads(ln)["kimg"] * 1000 <= cur_nimg + 0.5
    ]
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(keep)))


def resume_options(state_path: Path, **updates) -> TrainingOptions:
    """The options of the run that wrote `state_path`, with `updates` (e.g. kimg, snap) applied."""
    d = read_run_config(state_path.parent)
    d.pop("resolved", None)
    d.update({k: v for k, v in updates.items() if v is not None})
    return TrainingOptions.from_dict(d)


# ---- images and metrics ------------------------------------------------------------------------------------


def _grid_count(run: Run) -> int:
    return min(run.opts.grid_size, len(run.dataset))


@torch.no_grad()
def sample_grid(run: Run) -> torch.Tensor:
    """G_ema on fixed latents (seeded by --seed): uint8 [N, C, H, W]."""
    gen = torch.Generator().manual_seed(run.opts.seed)
    n = _grid_count(run)
    z = torch.randn([n, run.G.z_dim], generator=gen).to(run.device)
    c = run.labels[torch.randint(len(run.labels), [n], generator=gen)].to(run.device)
    pairs = zip(z.split(16), c.split(16), strict=True)
    img = torch.cat([run.G_ema(zz, cc, noise_mode="const") for zz, cc in pairs])  # [n, C, H, W]
    return to_uint8(img).cpu()


def _grid_cols(n: int) -> int:
    """Columns of a sample grid: about twice as wide as tall."""
    return math.ceil(math.sqrt(2 * n))


def run_metrics(run: Run) -> None:
    """--metrics on G_ema, split over every rank; rank 0 appends to metric-<name>.jsonl."""
    if not run.opts.metrics:
        return
    from stylegan.metrics import calc_metric  # its packages and weights were checked before training

    for name in run.opts.metrics:
        result = calc_metric(
            name, G=run.G_ema, dataset=run.dataset.dataset, device=run.device, progress=False,
            rank=run.info.rank, num_gpus=run.info.world_size,
        )  # fmt: skip
        if not run.info.is_main:
            continue
        line = {
            **result,
            "kimg": run.cur_nimg / 1000,
            "snapshot": snapshot_name("network", run.cur_nimg),
            "timestamp": time.time(),
        }
        with open(run.run_dir / f"metric-{name}.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        tb = run.writers.get("tb")
        for key, value in result.get("results", {}).items():
            if tb is not None and isinstance(value, float):
                tb.add_scalar(f"Metrics/{key}", value, global_step=run.cur_nimg)


def _progress_bar(run: Run, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=run.total_nimg,
        initial=min(run.cur_nimg, run.total_nimg),
        unit="img",
        unit_scale=True,
        disable=not (enabled and run.info.is_main),
        dynamic_ncols=True,
        desc="train",
    )
