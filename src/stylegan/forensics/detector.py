"""Detectors for generated images that carry no mark, with calibrated probabilities.

Two kinds, both trained by `train_detector` on folders of real and generated images:

- `spectral`: logistic regression on the radial power-spectrum profile of the high-pass residual (spectral.features);
  fast, and the profile can be plotted next to the verdict.
- `cnn`: a small CNN on a residual of the grey image divided by its local RMS (residual_cnn): each pixel minus the
  top-left pixel of its 2x2 block (norm="npr", what 2x up-sampling leaves between neighbours), or the image minus
  its 3x3 box blur (norm="local"); by default both, one CNN each, scored by their mean logit (norm="npr+local").

Both see laundered images in training (launder; after Wang et al. 2020, "CNN-generated images are surprisingly easy
to spot... for now": random blur and JPEG; for the spectral model with a random down-size as well, which would wipe
out the 2x2 blocks the CNN reads), so that re-encoded copies are still recognised. DEFAULT_AUGMENT and DEFAULT_NORM
were chosen on validation data (benchmarks/bench_detector.py --validate; the numbers are in its docstring).

A quarter of the training images (stratified, seeded) is held out and only used to calibrate: Platt scaling, i.e. a
temperature and a bias on the raw score, fitted by maximum likelihood, so that p(generated) = 0.7 means "7 in 10 of
the images like these scored this way were generated", for images like the training data (half of the held-out
quarter is laundered). The held-out accuracy and expected calibration error are stored with the weights. On images
unlike the training data (other generators, other subjects, heavy re-encoding) the probability is a score, not a
frequency: `calibration_note` says so, and benchmarks/bench_detector.py measures how far it carries.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageFilter
import torch

from stylegan.forensics import spectral
from stylegan.forensics.residual_cnn import NORMS

KINDS = ("spectral", "cnn")
HELD_OUT = 0.25
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method: x [N, D], y [N] in {0, 1} -> weights [D + 1] (bias last).

    Minimises mean cross-entropy + l2/2 |w|^2 (the bias is not penalised); converges in a few steps for D <~ 100.
    """
    design = np.hstack([x, np.ones((len(x), 1))])  # [N, D + 1]
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    w = np.zeros(design.shape[1])
    for _ in range(steps):
        p = sigmoid(design @ w)  # clipped: separable data drives w (and the logits) up without overflow
        grad = design.T @ (p - y) / len(y) + penalty * w
        hess = (design * (p * (1 - p))[:, None]).T @ design / len(y) + np.diag(penalty + 1e-9)
        delta = np.linalg.solve(hess, grad)
        w -= delta
        if np.abs(delta).max() < 1e-8:
            break
    return w


MAX_REPLICATION = 16  # the largest --zoom factor the figure commands write


def undo_pixel_replication(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """(image, k): an image enlarged k times by pixel replication (nearest neighbour at a whole factor, as `--zoom`
    and many viewers write it) brought back to its own pixels, and k; other images as they are, k = 1.

    Only exact replication counts (lossless files): every k x k block of equal pixels, the image a whole number of
    blocks. The detectors read pixel-level traces, which replication hides under its own block edges."""
    h, w = pixels.shape[:2]
    for k in range(min(MAX_REPLICATION, h, w), 1, -1):
        if h % k or w % k or not (pixels[:k] == pixels[:1]).all():  # the first rows decide most cases cheaply
            continue
        blocks = pixels.reshape(h // k, k, w // k, k, *pixels.shape[2:])
        if (blocks == blocks[:, :1, :, :1]).all():
            return np.ascontiguousarray(blocks[:, 0, :, 0]), k
    return pixels, 1


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |observed frequency - mean predicted p| over equal-width bins of p, weighted by bin size."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    gaps = [
        abs(y[which == b].mean() - p[which == b].mean()) * (which == b).sum() for b in range(bins) if (which == b).any()
    ]
    return float(sum(gaps) / len(p))


@dataclass
class Detector:
    """A trained detector: `kind`, its tensors, Platt calibration (temperature, bias) and what training measured."""

    kind: str
    tensors: dict[str, torch.Tensor]
    temperature: float = 1.0
    bias: float = 0.0
    info: dict = field(default_factory=dict)

    def raw_scores(self, images: list[np.ndarray]) -> np.ndarray:
        """uint8 images ([H, W] or [H, W, 3], any sizes) -> [N] uncalibrated logits."""
        if self.kind == "spectral":
            x = (np.stack([spectral.features(img) for img in images]) - self.tensors["mean"].numpy()) / self.tensors[
                "std"
            ].numpy()
            return x @ self.tensors["weight"].numpy() + float(self.tensors["bias"])
        from stylegan.forensics.residual_cnn import cnn_logits, gray_tensor

        grays = [gray_tensor(img) for img in images]
        return np.mean([cnn_logits(model, grays).numpy() for model in self._cnns()], axis=0)

    def probability(self, images: list[np.ndarray]) -> np.ndarray:
        """[N] calibrated p(generated)."""
        return sigmoid(self.calibrated_logits(images))

    def calibrated_logits(self, images: list[np.ndarray]) -> np.ndarray:
        """[N] the raw scores after Platt scaling: log-odds of p(generated)."""
        return self.raw_scores(images) / self.temperature + self.bias

    def _cnns(self) -> list:
        """The CNNs whose mean logit is the score: one per residual named in info['norm'] ('npr+local': two, their
        tensors under 'cnn0.' and 'cnn1.'; a single one under 'cnn.')."""
        from stylegan.forensics.residual_cnn import ResidualCNN

        if not hasattr(self, "_models"):
            self._models = []
            for norm, prefix in _members(self.info.get("norm", "none")):
                model = ResidualCNN(norm=norm)
                model.load_state_dict(
                    {k.removeprefix(prefix): v for k, v in self.tensors.items() if k.startswith(prefix)}
                )
                self._models.append(model.eval())
        return self._models

    def threshold(self, fpr: float) -> float:
        """The calibrated logit above which a share `fpr` of the held-out real images lies (one of OPERATING_FPRS):
        the operating point that flags that many real images like the training data's (a Neyman-Pearson threshold).

        Raises ValueError for a detector trained before these were stored, or another share."""
        stored = self.info.get("held_out", {}).get("real_fpr", {})
        if f"{fpr:g}" not in stored:
            have = ", ".join(stored) or "none (trained before they were stored)"
            raise ValueError(f"no threshold for a false-positive rate of {fpr:g} in this detector; it has {have}")
        return float(stored[f"{fpr:g}"])

    @property
    def calibration_note(self) -> str:
        held = self.info.get("held_out", {})
        return (
            f"{self.kind} detector; p calibrated (Platt) on {held.get('n', '?')} held-out images of its training data "
            f"(held-out accuracy {held.get('accuracy', float('nan')):.1%}, ECE {held.get('ece', float('nan')):.3f}); "
            "for images unlike that data it is a score, not a frequency"
        )

    def save(self, path: str | Path) -> None:
        """One safetensors file: the tensors, and kind/calibration/info as JSON metadata."""
        from safetensors.torch import save_file

        from stylegan.io.native import atomic_write

        meta = {"kind": self.kind, "temperature": repr(self.temperature), "bias": repr(self.bias)}
        meta["info"] = json.dumps(self.info)
        tensors = {k: v.contiguous() for k, v in self.tensors.items()}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_detector(path: str | Path | None = None) -> Detector:
    """The detector in a file written by Detector.save (default: the shipped spectral one)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path) if path is not None else ASSETS / "detector_spectral.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (OSError, SafetensorError) as err:
        raise ValueError(f"{path}: not a detector file ({str(err).splitlines()[0]})") from None
    if meta.get("kind") not in KINDS:
        raise ValueError(f"{path}: not a detector file (no kind in its metadata)")
    return Detector(
        meta["kind"], tensors, float(meta["temperature"]), float(meta["bias"]), json.loads(meta.get("info", "{}"))
    )


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".pgm", ".ppm", ".gif", ".tif", ".tiff"}


def read_folder(folder: str | Path, what: str = "folder") -> tuple[list[np.ndarray], list[str]]:
    """uint8 images of every image file under `folder` (sorted), and 'file: why' for those that could not be read.

    Raises ValueError when the folder does not exist or holds no image files.
    """
    from stylegan.forensics.report import load_image

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{what} {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{what} {folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images, skipped = [], []
    for path in files:
        try:
            images.append(load_image(path)[0])
        except ValueError as err:
            skipped.append(f"{path}: {err}")
    return images, skipped


def shipped_detectors() -> list[Path]:
    """The detector files shipped in the package (spectral, cnn) that are present."""
    return [
        ASSETS / f"detector_{kind}.safetensors" for kind in KINDS if (ASSETS / f"detector_{kind}.safetensors").exists()
    ]


AUGMENTATIONS = {
    "none": {},
    "light": {"resize": (0.5, 1.0), "jpeg": (60, 95)},
    "wang": {"blur": (0.0, 3.0), "jpeg": (30, 100)},
    "wang-resize": {"resize": (0.5, 1.0), "blur": (0.0, 3.0), "jpeg": (30, 100)},
}
DEFAULT_AUGMENT = {"spectral": "wang-resize", "cnn": "wang"}  # per kind
DEFAULT_NORM = "npr+local"


def launder(pixels: np.ndarray, rng: np.random.Generator, recipe: str = "wang-resize") -> np.ndarray:
    """A training augmentation: each step of AUGMENTATIONS[recipe] with p = 1/2, in this order:

    resize to a uniform fraction of the size (bicubic), Gaussian blur with a uniform sigma (pixels), JPEG at a uniform
    quality. 'wang' is Wang et al. 2020's blur + JPEG laundering; 'light' was this module's first recipe.
    """
    steps = AUGMENTATIONS[recipe]
    img = PIL.Image.fromarray(pixels)
    if "resize" in steps and rng.random() < 0.5:
        scale = rng.uniform(*steps["resize"])
        img = img.resize((max(8, round(img.width * scale)), max(8, round(img.height * scale))), PIL.Image.BICUBIC)
    if "blur" in steps and rng.random() < 0.5:
        img = img.filter(PIL.ImageFilter.GaussianBlur(rng.uniform(*steps["blur"])))
    if "jpeg" in steps and rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(steps["jpeg"][0], steps["jpeg"][1] + 1)))
        img = PIL.Image.open(buf)
        img.load()
    return np.asarray(img)


def split(n_real: int, n_fake: int, seed: int = 0, held_out: float = HELD_OUT) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / held-out indices into real + fake (reals first): `held_out` of each class held out."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for offset, n in ((0, n_real), (n_real, n_fake)):
        order = offset + rng.permutation(n)
        cut = int(round(n * held_out))
        held.append(order[:cut])
        train.append(order[cut:])
    return np.concatenate(train), np.concatenate(held)


def train_detector(
    real: list[np.ndarray],
    fake: list[np.ndarray],
    *,
    kind: str = "spectral",
    seed: int = 0,
    augment: bool | str = True,
    steps: int = 1000,
    norm: str = DEFAULT_NORM,
) -> Detector:
    """Trains a detector on uint8 images (real: label 0, fake: label 1) and calibrates it on a held-out quarter.

    augment: a recipe of AUGMENTATIONS (True: DEFAULT_AUGMENT[kind], False: "none"). The CNN sees a fresh laundered
    version (launder) of every image in every epoch; the spectral model fits the images plus SPECTRAL_COPIES
    laundered copies of each. Every other held-out image is laundered the same way, so calibration covers both.
    steps: batches of 64 the CNN is trained for; norm: its residual (residual_cnn.NORMS; two joined by '+', e.g.
    'npr+local': an ensemble of one CNN per residual, scored by their mean logit). The spectral
    model ignores both.
    Raises ValueError for an unknown kind, recipe or norm, or fewer than 8 images of either class.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown detector kind {kind!r}; choose {' or '.join(KINDS)}")
    recipe = {True: DEFAULT_AUGMENT[kind], False: "none"}.get(augment, augment)
    if recipe not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
    if not set(norm.split("+")) <= set(NORMS):
        raise ValueError(f"unknown residual normalisation {norm!r}; choose {' or '.join(NORMS)} (or two joined by +)")
    if min(len(real), len(fake)) < 8:
        raise ValueError(f"need at least 8 real and 8 generated images (got {len(real)} and {len(fake)})")
    images = list(real) + list(fake)
    labels = np.array([0] * len(real) + [1] * len(fake))
    train_idx, held_idx = split(len(real), len(fake), seed)
    rng = np.random.default_rng(seed + 1)
    fitted = [images[i] for i in train_idx]
    detector = _fit(kind, fitted, labels[train_idx], recipe, rng, seed=seed, steps=steps, norm=norm)
    x_held = [launder(images[i], rng, recipe) if j % 2 else images[i] for j, i in enumerate(held_idx)]
    y_held = labels[held_idx]
    raw = detector.raw_scores(x_held)
    a = fit_logistic(raw[:, None], y_held, l2=0.0)  # [scale, bias]
    detector.temperature = float(1.0 / a[0]) if abs(a[0]) > 1e-9 else 1e9  # a ~ 0: the score says nothing
    detector.bias = float(a[1])
    p = detector.probability(x_held)
    detector.info = {
        **detector.info,  # what _fit recorded (the CNN's norm)
        "n_real": len(real),
        "n_fake": len(fake),
        "augment": recipe,
        "held_out": {
            "n": len(y_held),
            "accuracy": float(((p >= 0.5) == y_held).mean()),
            "ece": expected_calibration_error(p, y_held),
        },
    }
    set_operating_thresholds(detector, [x for x, y in zip(x_held, y_held, strict=True) if y == 0])
    return detector


OPERATING_FPRS = (0.01, 0.02, 0.05, 0.1)  # false-positive rates on held-out real images with a stored threshold
OPERATING_FPR = 0.05  # the one `stylegan detect` flags at (chosen on validation: benchmarks/bench_detector.py)


def set_operating_thresholds(detector: Detector, held_out_real: list[np.ndarray]) -> None:
    """Stores in detector.info the calibrated logit above which each share in OPERATING_FPRS of `held_out_real`
    lies (real images like its training data's that it was not fitted on; train_detector passes its held-out
    quarter's, every other laundered)."""
    logits = detector.calibrated_logits(held_out_real)
    held = detector.info.setdefault("held_out", {})
    held["real_fpr"] = {f"{a:g}": float(np.quantile(logits, 1.0 - a)) for a in OPERATING_FPRS}
    held["n_real"] = len(held_out_real)


SPECTRAL_COPIES = 3  # laundered copies of each training image for the spectral model


def _fit(kind, images, labels, recipe, rng, *, seed, steps, norm) -> Detector:
    """An uncalibrated detector fitted to uint8 images and labels [N], with the laundering recipe."""
    if kind == "spectral":
        copies = SPECTRAL_COPIES if AUGMENTATIONS[recipe] else 0
        images = images + [launder(img, rng, recipe) for _ in range(copies) for img in images]
        labels = np.tile(labels, copies + 1)
        x = np.stack([spectral.features(img) for img in images])
        mean, std = x.mean(0), x.std(0) + 1e-6
        w = fit_logistic((x - mean) / std, labels)
        tensors = {"mean": mean, "std": std, "weight": w[:-1], "bias": w[-1:]}
        tensors.update(real_profile=x[labels == 0].mean(0), fake_profile=x[labels == 1].mean(0))  # for the plot
        return Detector(kind, {k: torch.from_numpy(np.asarray(v)).double() for k, v in tensors.items()})
    from stylegan.forensics.residual_cnn import train_cnn

    augment = (lambda img: launder(img, rng, recipe)) if AUGMENTATIONS[recipe] else None
    tensors = {}
    for i, (member, prefix) in enumerate(_members(norm)):  # an ensemble: one CNN per residual, logits averaged
        model = train_cnn(images, torch.from_numpy(labels), augment=augment, steps=steps, seed=seed + i, norm=member)
        tensors.update({prefix + k: v.detach().clone() for k, v in model.state_dict().items()})
    return Detector(kind, tensors, info={"norm": norm})


def _members(norm: str) -> list[tuple[str, str]]:
    """(residual, tensor-name prefix) of each CNN a norm names: 'local' -> one, under 'cnn.'; 'npr+local' -> an
    ensemble, under 'cnn0.' and 'cnn1.'."""
    norms = norm.split("+")
    return [(member, "cnn." if len(norms) == 1 else f"cnn{i}.") for i, member in enumerate(norms)]
