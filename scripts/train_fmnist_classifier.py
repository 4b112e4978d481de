"""Train the Fashion-MNIST classifier shipped as `src/stylegan/assets/fmnist_classifier.safetensors`.

Data: Debian's `dataset-fashion-mnist` (`apt-get install -y dataset-fashion-mnist`, MIT), IDX files under
/usr/share/datasets/fashion-mnist/. About 5-8 minutes on 2 CPU cores.

    python scripts/train_fmnist_classifier.py [--epochs 5] \
        [--out src/stylegan/assets/fmnist_classifier.safetensors]
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.metrics.fmnist import FMNISTClassifier

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (big-endian header: magic, then one uint32 per dimension)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 [N, 1, 28, 28] and labels int64 [N] of 'train' or 't10k'."""
    img = read_idx(data_dir / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / f"{split}-labels-idx1-ubyte.gz")
    return torch.from_numpy(img.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips, +-2 px shifts and, for half the batch, a 28->32 pad then resize to 28 (as 32² data)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    shrink = torch.rand(n, generator=gen) < 0.5
    small = F.interpolate(F.pad(x, (2, 2, 2, 2), value=-1.0), size=(28, 28), mode="bilinear", antialias=True)
    x = torch.where(shrink[:, None, None, None], small, x)
    dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
    return torch.roll(F.pad(x, (2, 2, 2, 2), value=-1.0), shifts=(dy, dx), dims=(2, 3))[:, :, 2:30, 2:30]


@torch.no_grad()
def accuracy(model: FMNISTClassifier, img: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(img), 1000):
        logits = model(img[i : i + 1000].float() / 127.5 - 1)
        correct += (logits.argmax(1) == labels[i : i + 1000]).sum().item()
    return correct / len(img)


def train(epochs: int, batch: int, seed: int, data_dir: Path) -> tuple[FMNISTClassifier, float]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "t10k")
    model = FMNISTClassifier()
    steps = epochs * (len(x_train) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        for i in range(len(x_train) // batch):
            idx = perm[i * batch : (i + 1) * batch]
            x = augment(x_train[idx].float() / 127.5 - 1, gen)
            loss = F.cross_entropy(model(x), y_train[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, x_test, y_test)
        print(
            f"epoch {epoch + 1}/{epochs}  loss {loss.item():.3f}  test acc {acc:.4f}  "
            f"{time.time() - t0:.0f} s",
            flush=True,
        )
    return model, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=Path("src/stylegan/assets/fmnist_classifier.safetensors"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from safetensors.torch import save_file

    model, acc = train(args.epochs, args.batch, args.seed, args.data)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(args.out), metadata={"test_accuracy": f"{acc:.4f}", "epochs": str(args.epochs)})
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
