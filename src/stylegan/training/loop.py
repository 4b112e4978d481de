"""The training loop: a short orchestrator of named steps over a `Run` that holds the state.

Determinism: every chunk of every phase of every step reseeds the global RNG from (seed, step, phase, chunk),
and real images come from a seeded sampler whose position is saved. A resumed run therefore repeats the
uninterrupted one exactly, and N processes see the same numbers as one process accumulating N chunks.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylegan.io import atomic_write, load_native, save_networks
from stylegan.networks.presets import build_configs
from stylegan.networks.registry import build_network
from stylegan.training import distributed as dist_utils
from stylegan.training.augment import AdaController
from stylegan.training.augment_adapter import build_augment_pipe
from stylegan.training.distributed import ProcessInfo
from stylegan.training.ema import ema_beta, update_ema
from stylegan.training.loss import LossConfig, StyleGAN2Loss
from stylegan.training.options import Hyper, OptionsError, TrainingOptions, resolve_hyper
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

    @property
    def total_nimg(self) -> int:
        return int(round(self.opts.kimg * 1000))

    @property
    def done(self) -> bool:
        return self.cur_nimg >= self.total_nimg


# ---- public entry points -----------------------------------------------------------------------------------


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; 'cuda' uses the process's local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise OptionsError("--device cuda: no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


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
    run = setup_run(opts, info, resume_state, dataset)
    bar = _progress_bar(run, progress)
    try:
        while not run.done:
            train_step(run)
            bar.update(run.hyper.batch)
            if _tick_due(run):
                end_tick(run)
    finally:
        bar.close()
        for w in run.writers.values():
            w.close()
    return run.run_dir


# ---- setup -------------------------------------------------------------------------------------------------


def setup_run(
    opts: TrainingOptions, info: ProcessInfo, resume_state: Path | None = None, dataset=None
) -> Run:
    """Builds data, networks, loss, optimizers and augmentation; restores a state file when resuming."""
    opts.validate()
    device = pick_device(opts.device, info.local_rank)
    torch.backends.cudnn.benchmark = True  # NVIDIA's choice: speed over bitwise-repeatable CUDA kernels
    dataset = dataset if dataset is not None else open_dataset(opts)
    hyper = resolve_hyper(opts, dataset.resolution, info.world_size)
    G, D = build_networks(opts, hyper, dataset, device)
    for module in (G, D):
        dist_utils.broadcast_module(module, info)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    augment_pipe, ada = build_augment_pipe(opts, hyper.batch, device)
    loss_cfg = LossConfig(
        r1_gamma=hyper.gamma, style_mixing_prob=hyper.style_mixing, pl_weight=hyper.pl_weight
    )
    loss = StyleGAN2Loss(
        G, D, loss_cfg, augment_pipe, on_real_logits=ada.observe if ada is not None else None
    )
    if resume_state:
        run_dir = Path(resume_state).parent
    else:
        run_dir = next_run_dir(opts.outdir, run_description(opts, dataset, hyper))
    dist_utils.barrier(info)  # every rank has chosen the same folder before rank 0 creates it
    labels = torch.from_numpy(np.stack([dataset.get_label(i) for i in range(len(dataset))]))  # [len, c_dim]
    sampler = InfiniteSampler(len(dataset), seed=opts.seed)
    run = Run(opts=opts, hyper=hyper, info=info, device=device, run_dir=run_dir, dataset=dataset,
              labels=labels, G=G, D=D, G_ema=G_ema, loss=loss, phases=make_phases(G, D, hyper),
              augment_pipe=augment_pipe, ada=ada, sampler=sampler)  # fmt: skip
    if resume_state:
        restore_state(run, Path(resume_state))
    elif info.is_main:
        start_run_dir(run)
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
    overrides = {
        k: v
        for k, v in dict(
            channel_base=opts.cbase, channel_max=opts.cmax, mapping_layers=opts.map_depth
        ).items()
        if v is not None
    }
    g_cfg, d_cfg = build_configs(
        opts.cfg,
        dataset.resolution,
        img_channels=dataset.num_channels,
        c_dim=dataset.label_dim,
        gpus=opts.gpus,
        num_fp16_res=0 if opts.fp32 else 4,
        conv_clamp=None if opts.fp32 else 256,
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
    """Gmain/Greg/Dmain/Dreg with lazy regularisation (lr and betas scaled by k/(k+1)), or G/Dboth without."""
    phases = []
    g_reg = 4 if hyper.pl_weight > 0 else None
    d_reg = 16 if hyper.gamma > 0 else None
    for name, module, lr, reg_interval in (("G", G, hyper.glr, g_reg), ("D", D, hyper.dlr, d_reg)):
        ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
        opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
        if reg_interval is None:
            phases.append(Phase(f"{name}both", module, opt, 1))
        else:
            phases += [Phase(f"{name}main", module, opt, 1), Phase(f"{name}reg", module, opt, reg_interval)]
    return phases


def run_description(opts: TrainingOptions, dataset, hyper: Hyper) -> str:
    """NVIDIA-style folder suffix: <data>-<cfg>-gpus<N>-batch<B>-gamma<G>[-desc]."""
    desc = f"{dataset.name}-{opts.cfg}-gpus{opts.gpus}-batch{hyper.batch}-gamma{hyper.gamma:g}"
    return desc + (f"-{opts.desc}" if opts.desc else "")


def start_run_dir(run: Run) -> None:
    """Creates the run folder with config.json (options and resolved hyper-parameters) and a grid of reals."""
    run.run_dir.mkdir(parents=True, exist_ok=False)
    config = {**run.opts.to_dict(), "resolved": _hyper_dict(run)}
    atomic_write(run.run_dir / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    idx = np.random.default_rng(run.opts.seed).permutation(len(run.dataset))[: _grid_count(run)]
    reals = torch.from_numpy(np.stack([run.dataset.image(int(i)) for i in idx]))
    save_image_grid(reals, run.run_dir / "reals.png")


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
        "world_size": run.info.world_size,
        "resolution": run.dataset.resolution,
        "channels": run.dataset.num_channels,
        "c_dim": run.dataset.label_dim,
        "num_images": len(run.dataset),
        "G": run.G.config.to_dict(),
        "D": run.D.config.to_dict(),
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
    update_ema(
        run.G_ema, run.G, ema_beta(run.hyper.batch, run.hyper.ema_kimg, run.cur_nimg, run.hyper.ema_rampup)
    )
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


def run_phase(
    run: Run, phase_idx: int, phase: Phase, real_img: dict, real_c: dict, chunks: list[int]
) -> None:
    """Accumulates the phase's gradients over this rank's chunks, sums them over ranks and steps."""
    phase.module.requires_grad_(True)
    phase.opt.zero_grad(set_to_none=True)
    num_chunks = run.hyper.rounds * run.info.world_size
    stats = defaultdict(float)
    for k in chunks:
        torch.manual_seed(chunk_seed(run.opts.seed, run.batch_idx, phase_idx, k))
        gen_z, gen_c = draw_latents(run)
        out = run.loss.accumulate_gradients(
            phase.name, real_img[k], real_c[k], gen_z, gen_c, gain=phase.interval / num_chunks
        )
        for name, value in out.items():
            stats[name] += float(value)
    phase.module.requires_grad_(False)
    if phase.name in ("Greg", "Gboth") and run.hyper.pl_weight > 0:
        s, n = run.loss.pop_pl_update()
        total = dist_utils.all_reduce_sum(torch.stack([s, torch.tensor(float(n), device=s.device)]), run.info)
        run.loss.update_pl_mean(total[0] / total[1])
    flat = dist_utils.all_reduce_sum_grads([p for p in phase.module.parameters()], run.info)
    check_finite(run, phase, stats, flat)
    phase.opt.step()
    record_phase_stats(run, stats, len(chunks))


def draw_latents(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """z [batch_gpu, z_dim] and c [batch_gpu, c_dim] (labels of random images), from the global RNG."""
    bg = run.hyper.batch_gpu
    gen_z = torch.randn([bg, run.G.z_dim]).to(run.device)
    gen_c = run.labels[torch.randint(len(run.labels), [bg])].to(run.device)
    return gen_z, gen_c


def check_finite(run: Run, phase: Phase, stats: dict, flat: torch.Tensor | None) -> None:
    """Stops the run (on every rank alike) when a loss or the reduced gradient is NaN/inf."""
    bad_losses = sorted(name for name, v in stats.items() if not math.isfinite(v))
    flags = torch.tensor(
        [float(len(bad_losses)), 0.0 if flat is None else float(~torch.isfinite(flat).all())]
    )
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


def end_tick(run: Run) -> None:
    """Writes the tick's stats line; every --snap ticks (and at the end) a snapshot and sample grid."""
    now = time.time()
    line = tick_stats_line(run, now)
    if run.info.is_main:
        write_stats(run, line)
    if run.done or run.cur_tick % run.opts.snap == 0:
        save_snapshot(run)
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


def save_snapshot(run: Run) -> None:
    """Networks (native format), the training-state file (written last: marks a whole snapshot), grid."""
    if run.info.is_main:
        save_networks(
            run.run_dir / snapshot_name("network", run.cur_nimg),
            {"G": run.G, "D": run.D, "G_ema": run.G_ema},
            extra={"kimg": run.cur_nimg / 1000, "training_options": run.opts.to_dict()},
        )
        save_image_grid(sample_grid(run), run.run_dir / snapshot_name("fakes", run.cur_nimg))
        save_training_state(run.run_dir / snapshot_name("training-state", run.cur_nimg), collect_state(run))
        run.last_snapshot = run.run_dir / snapshot_name("network", run.cur_nimg)
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
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()


def save_image_grid(img: torch.Tensor, path: Path, cols: int | None = None) -> None:
    """Tiles uint8 images [N, C, H, W] (C = 1 or 3) into one PNG, written atomically."""
    import PIL.Image

    n, c, h, w = img.shape
    cols = cols or max(int(math.ceil(math.sqrt(n * 2))), 1) if n > 1 else 1
    cols = min(cols, n)
    rows = -(-n // cols)
    canvas = torch.zeros([c, rows * h, cols * w], dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[:, r * h : (r + 1) * h, q * w : (q + 1) * w] = img[i]
    arr = canvas.permute(1, 2, 0).numpy()
    pil = PIL.Image.fromarray(arr[:, :, 0] if c == 1 else arr, "L" if c == 1 else "RGB")
    atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))


def run_metrics(run: Run) -> None:
    """--metrics on G_ema, split over every rank; rank 0 appends to metric-<name>.jsonl."""
    if not run.opts.metrics:
        return
    try:
        from stylegan.metrics import calc_metric
    except ImportError:
        return
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
