"""Real photographs of many subjects for the detector benchmark, cut from pictures that ship in packages.

benchmarks/get_photos.sh unpacks them into a folder (default /tmp/photos); PHOTO_SOURCES says which files are
photographs (renders, vector art, screenshots and paintings were left out by eye), their licence and credit, and
the split, fixed by source photo before any result was looked at: "test" sources are never used in training or
validation; "train" sources are cut 2:1 into train / validation by `--validate`, also by source, never by crop.

Crops: each photo is scaled so that its shorter side is 1024 (or its own size, when smaller), then down by factors of
sqrt(2) to 48 px (antialiased); a crop takes a random level, a random side among CROP_SIDES (no larger than the
level) and a random place, and is turned grey with p = 0.3, so that neither size, colour nor framing tells a
photograph from a generated image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image

PIL.Image.MAX_IMAGE_PIXELS = 40_000_000  # the largest wallpaper is 5120 x 2880

_MATE = "deb/usr/share/backgrounds/mate/nature"
_PLASMA = "deb/usr/share/wallpapers"
_SKI = "wheel/skimage/data"
_GPL = "GPL-2+ (Debian mate-backgrounds)"
_LGPL = "LGPL-3 (Debian plasma-workspace-wallpapers)"

# name: (path under the photo folder, split, licence, credit)
PHOTO_SOURCES = {
    "camera": (f"{_SKI}/camera.png", "train", "CC0", "Lav Varshney (scikit-image data)"),
    "brick": (f"{_SKI}/brick.png", "train", "CC0", "CC0Textures Bricks25 (scikit-image data)"),
    "grass": (f"{_SKI}/grass.png", "train", "CC0", "linolafett, DeviantArt (scikit-image data)"),
    "gravel": (f"{_SKI}/gravel.png", "train", "CC0", "CC0Textures Gravel04 (scikit-image data)"),
    "clock": (f"{_SKI}/clock_motion.png", "train", "public domain", "Stefan van der Walt (scikit-image data)"),
    "hubble": (f"{_SKI}/hubble_deep_field.jpg", "train", "public domain", "NASA (scikit-image data)"),
    "retina": (f"{_SKI}/retina.jpg", "train", "CC0", "Mikael Häggström (scikit-image data)"),
    "ihc": (f"{_SKI}/ihc.png", "train", "no known restrictions", "Immunohistochemistry (scikit-image data)"),
    "microaneurysms": (f"{_SKI}/microaneurysms.png", "train", "CC0", "Andreas Maier (scikit-image data)"),
    "text": (f"{_SKI}/text.png", "train", "public domain", "Wikimedia Commons Corner.png (scikit-image data)"),
    "cell": (f"{_SKI}/cell.png", "train", "CC0", "scikit-image data"),
    "aqua": (f"{_MATE}/Aqua.jpg", "train", _GPL, "Charles Barbin"),
    "blinds": (f"{_MATE}/Blinds.jpg", "train", _GPL, "Lennart Poettering, Andrea Cimitan"),
    "freshflower": (f"{_MATE}/FreshFlower.jpg", "train", _GPL, "Jens Ansorg"),
    "garden": (f"{_MATE}/Garden.jpg", "train", _GPL, "Charles Barbin"),
    "greenmeadow": (f"{_MATE}/GreenMeadow.jpg", "train", _GPL, "Timothy Schellhase, Lapo Calamandrei"),
    "raindrops": (f"{_MATE}/RainDrops.jpg", "train", _GPL, "blackcombwhistler07"),
    "twowings": (f"{_MATE}/TwoWings.jpg", "train", _GPL, "mate-backgrounds AUTHORS"),
    "yellowflower": (f"{_MATE}/YellowFlower.jpg", "train", _GPL, "Charles Barbin"),
    "bythewater": (f"{_PLASMA}/BytheWater/contents/images/2560x1600.jpg", "train", _LGPL, "Maciej Wiklo"),
    "coldripple": (f"{_PLASMA}/ColdRipple/contents/images/2560x1600.jpg", "train", _LGPL, "Risto Saukonpää"),
    "darkesthour": (f"{_PLASMA}/DarkestHour/contents/images/2560x1600.jpg", "train", _LGPL, "Risto Saukonpää"),
    "fallenleaf": (f"{_PLASMA}/FallenLeaf/contents/images/2560x1600.jpg", "train", _LGPL, "Martin Klapetek"),
    "grey": (f"{_PLASMA}/Grey/contents/images/2560x1600.jpg", "train", _LGPL, "Sigi Sagi"),
    "onestandsout": (f"{_PLASMA}/OneStandsOut/contents/images/2560x1600.jpg", "train", _LGPL, "Risto Saukonpää"),
    "summer1am": (f"{_PLASMA}/summer_1am/contents/images/2560x1600.jpg", "train", _LGPL, "Risto Saukonpää"),
    "astronaut": (f"{_SKI}/astronaut.png", "test", "public domain", "NASA (scikit-image data)"),
    "coffee": (f"{_SKI}/coffee.png", "test", "CC0", "Rachel Michetti (scikit-image data)"),
    "chelsea": (f"{_SKI}/chelsea.png", "test", "CC0", "Stefan van der Walt (scikit-image data)"),
    "rocket": (f"{_SKI}/rocket.jpg", "test", "public domain", "SpaceX (scikit-image data)"),
    "coins": (f"{_SKI}/coins.png", "test", "no known restrictions", "Brooklyn Museum (scikit-image data)"),
    "dune": (f"{_MATE}/Dune.jpg", "test", _GPL, "Marco Cogoni, Hylke Bons"),
    "ladybird": (f"{_MATE}/LadyBird.jpg", "test", _GPL, "Charles Barbin"),
    "storm": (f"{_MATE}/Storm.jpg", "test", _GPL, "mate-backgrounds AUTHORS"),
    "wood": (f"{_MATE}/Wood.jpg", "test", _GPL, "mate-backgrounds AUTHORS"),
    "eveningglow": (f"{_PLASMA}/EveningGlow/contents/images/2560x1600.jpg", "test", _LGPL, "Ian Hex"),
    "path": (f"{_PLASMA}/Path/contents/images/2560x1600.jpg", "test", _LGPL, "Risto Saukonpää"),
    "colorfulcups": (f"{_PLASMA}/ColorfulCups/contents/images/2560x1600.jpg", "test", _LGPL, "Dmitri Popov"),
}
CROP_SIDES = (32, 32, 64, 64, 64, 128, 128, 256)  # drawn uniformly: mostly small, like the generated sets
GREY = 0.3


def sources(split: str) -> list[str]:
    """Names of the sources of a split: 'test', 'train' (all training sources), 'fit' / 'val' (train cut 2:1)."""
    train = [k for k, v in PHOTO_SOURCES.items() if v[1] == "train"]
    if split == "test":
        return [k for k, v in PHOTO_SOURCES.items() if v[1] == "test"]
    return {"train": train, "fit": [k for i, k in enumerate(train) if i % 3 != 2], "val": train[2::3]}[split]


def load_photo(root: Path, name: str) -> PIL.Image.Image:
    """The source photo as RGB (grey sources stay 'L'); raises FileNotFoundError naming get_photos.sh."""
    path = Path(root) / PHOTO_SOURCES[name][0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `bash benchmarks/get_photos.sh {root}` first")
    img = PIL.Image.open(path)
    img.load()
    return img.convert("L" if img.mode in ("L", "I;16", "I") else "RGB")


def pyramid(img: PIL.Image.Image, top: int = 1024, bottom: int = 48) -> list[PIL.Image.Image]:
    """The photo with its shorter side at min(top, own), then smaller by sqrt(2) steps down to `bottom` (Lanczos)."""
    short = min(img.size)
    side = float(min(top, short))
    levels = []
    while side >= bottom:
        scale = side / short
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        levels.append(img.resize(size, PIL.Image.LANCZOS))
        side /= 2**0.5
    return levels


def photo_crops(root: Path, names: list[str], per_source: int, seed: int = 0) -> list[np.ndarray]:
    """per_source random crops (see the module doc) of each named photo, uint8 [H, W] or [H, W, 3], by source."""
    out = []
    for k, name in enumerate(names):
        rng = np.random.default_rng([seed, k])
        levels = pyramid(load_photo(root, name))
        for _ in range(per_source):
            level = levels[rng.integers(len(levels))]
            side = min(int(rng.choice(CROP_SIDES)), *level.size)
            x, y = rng.integers(0, level.width - side + 1), rng.integers(0, level.height - side + 1)
            crop = level.crop((x, y, x + side, y + side))
            out.append(np.asarray(crop.convert("L") if rng.random() < GREY else crop))
    return out


def whole_photos(root: Path, names: list[str], sides=(256, 512, 1024)) -> list[np.ndarray]:
    """Each named photo whole, scaled so its shorter side is each of `sides` it can reach, and as published when it
    is smaller than the largest side (colour as published)."""
    out = []
    for name in names:
        img = load_photo(root, name)
        short = min(img.size)
        for side in sorted({s for s in sides if s < short} | {min(short, max(sides))}):
            scale = side / short
            out.append(np.asarray(img.resize((round(img.width * scale), round(img.height * scale)), PIL.Image.LANCZOS)))
    return out


def upsampled(images: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Simulated generator output with photographic content: each image shrunk 2x or 4x (box) and brought back by
    repeated 2x up-sampling as in StyleGAN2's synthesis (zeros inserted, then the [1, 3, 3, 1] low-pass), so that
    only the up-sampling trace, not the subject, tells it from the photograph. Images under 16 px are skipped."""
    rng = np.random.default_rng(seed)
    out = []
    for img in images:
        if min(img.shape[:2]) < 16:
            continue
        steps = 1 + int(rng.random() < 0.3)
        small = PIL.Image.fromarray(img).reduce(2**steps)
        x = np.asarray(small, dtype=np.float64)
        for _ in range(steps):
            x = _up2(_up2(x, 0), 1)
        out.append(np.clip(np.rint(x), 0, 255).astype(np.uint8))
    return out


def _up2(x: np.ndarray, axis: int) -> np.ndarray:
    """x up-sampled 2x along axis: zeros between samples, then [1, 3, 3, 1] / 4 (gain 2 keeps the mean; edges held)."""
    x = np.moveaxis(x, axis, 0)
    n = len(x)
    held = np.concatenate([x[:1], x, x[-1:]])  # one sample held at each end
    stuffed = np.zeros((2 * (n + 2),) + x.shape[1:])
    stuffed[::2] = held
    taps = np.array([1.0, 3.0, 3.0, 1.0]) / 4
    return np.moveaxis(sum(t * stuffed[k : k + 2 * n] for k, t in enumerate(taps)), 0, axis)
