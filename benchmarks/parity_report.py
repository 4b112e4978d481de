"""Achieved parity with NVIDIA's official outputs, per fixture and array, as markdown tables (the README's source).

For each NVIDIA fixture in tests/fixtures/nvlabs (official tiny stylegan2-ada and stylegan3 pickles, the official
outputs in NAME.npz), the pickle is read by our safe loader ("pickle") and also converted to native safetensors and read
back ("native"); both get the fixture's inputs (z, c, ws, images) and are compared with the official arrays, exactly
as tests/compat/test_ada_parity.py does. Printed per array: max |ours - official|, that divided by max |official|,
and the bar the test enforces. Fixtures our loader refuses are listed with the reason.

Then the TF round trips of tests/compat/test_tf_pickles.py (there are no official TF fixtures: networks built here
are written as NVIDIA TF pickles by the tests' writer, read back and converted; the two must agree).

    python benchmarks/parity_report.py                  # all fixtures, 2 threads
    python benchmarks/parity_report.py --threads 1 sg2_tiny
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from stylegan.io import load_networks

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "nvlabs"

# The bars tests/compat/test_ada_parity.py enforces (keep in step with it): absolute, or relative to max |official|.
TOLERANCE = {
    "w_avg": ("abs", 0.0),
    "magnitude": ("abs", 0.0),
    "ws": ("abs", 1e-5),
    "img": ("abs", 1e-4),
    "D": ("abs", 1e-4),
}
CLAMP_TOLERANCE = ("rel", 5e-6)


def convert_to_native(src: Path, dest: Path) -> None:
    """Our pickle -> safetensors conversion (the library function; the CLI's before it moved)."""
    try:
        from stylegan.io.convert import convert_model
    except ImportError:
        from stylegan.cli.convert import convert_model
    convert_model(src, dest, which="all")


def generator_arrays(nets: dict, ref) -> dict[str, Callable[[], torch.Tensor]]:
    """Official array name -> how our networks compute it (only those the fixture holds)."""
    G, z = nets["G_ema"], torch.from_numpy(ref["z"]).float()
    c = torch.from_numpy(ref["c"]).float()

    def synth(key):
        return lambda: G.synthesis(torch.from_numpy(ref[key]), noise_mode="const")

    table = {
        "w_avg": lambda: G.mapping.w_avg,
        "ws_psi100": lambda: G.mapping(z, c),
        "ws_psi070": lambda: G.mapping(z, c, truncation_psi=0.7),
        "ws_psi070_cut2": lambda: G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=2),
        "img_psi100": lambda: G(z, c, noise_mode="const"),
        "img_psi070": lambda: G(z, c, truncation_psi=0.7, noise_mode="const"),
        "img_psi100_noise_none": lambda: G(z, c, noise_mode="none"),
        "img_psi100_G": lambda: nets["G"](z, c, noise_mode="const"),
        "img_mix": synth("ws_mix"),
        "img_clamp": synth("ws_clamp"),
        "magnitude_ema": lambda: magnitude_emas(G),
    }
    return {key: fn for key, fn in table.items() if key in ref}


def magnitude_emas(G: torch.nn.Module) -> torch.Tensor:
    """StyleGAN3's per-layer magnitude EMA buffers in module order, [num_layers] (compared with the official list)."""
    return torch.stack([b.reshape(()) for name, b in G.named_buffers() if name.endswith("magnitude_ema")])


def discriminator_arrays(nets: dict, ref) -> dict[str, Callable[[], torch.Tensor]]:
    """Official D logits name -> how our D computes it (only those the fixture holds)."""
    D, c = nets["D"], torch.from_numpy(ref["c"]).float()

    def image(key, n=None, scale=1.0):
        return torch.from_numpy(ref[key][:n]) * scale

    table = {
        "D_logits_psi100": lambda: D(image("img_psi100"), c),
        "D_logits_psi070": lambda: D(image("img_psi070"), c),
        "D_logits_psi100_first4": lambda: D(image("img_psi100", 4), c[:4]),
        "D_logits_clamp": lambda: D(image("img_psi100", 4, 256.0), c[:4]),  # ×256 drives conv_clamp
    }
    return {key: fn for key, fn in table.items() if key in ref}


def tolerance(key: str, ref: np.ndarray) -> tuple[float, str]:
    """The test's bar for an array: (absolute value, how it is stated)."""
    if key.endswith("clamp"):
        kind, bar = CLAMP_TOLERANCE
    else:
        kind, bar = TOLERANCE["w_avg" if key == "w_avg" else key.split("_")[0]]  # magnitude_ema -> "magnitude"
    if kind == "rel":
        return bar * float(np.abs(ref).max()), f"{bar:g}·max = {bar * float(np.abs(ref).max()):.2g}"
    return bar, f"{bar:g}"


def compare(fn: Callable[[], torch.Tensor], ref: np.ndarray) -> tuple[float, float]:
    """(max abs diff, max abs diff / max |ref|) of our array against the official one, in float64."""
    with torch.no_grad():
        ours = fn().detach().double()
    official = torch.from_numpy(np.asarray(ref)).double().reshape(ours.shape)
    diff = (ours - official).abs().max().item()
    scale = official.abs().max().item()
    return diff, diff / scale if scale else diff


def report_fixture(name: str, tmp: Path) -> list[tuple]:
    """(fixture, source, array, max abs diff, rel, bar, stated bar) per array and source; one row if unsupported."""
    path = FIXTURES / f"{name}.pkl"
    ref = np.load(FIXTURES / f"{name}.npz", allow_pickle=False)
    try:
        sources = {"pickle": load_networks(path)}
    except Exception as err:  # noqa: BLE001 - any refusal is the row's content
        return [(name, "-", f"not supported: {type(err).__name__}: {str(err).splitlines()[0][:110]}")]
    dest = tmp / f"{name}.safetensors"
    convert_to_native(path, dest)
    sources["native"] = load_networks(dest)
    rows = []
    for source, nets in sources.items():
        arrays = {**generator_arrays(nets, ref), **discriminator_arrays(nets, ref)}
        for key, fn in arrays.items():
            rows.append((name, source, key, *compare(fn, ref[key]), *tolerance(key, ref[key])))
    return rows


def kind(array: str) -> str:
    """Summary group of an official array name."""
    if array.endswith("clamp"):
        return "conv_clamp arrays (img_clamp, D_logits_clamp)"
    groups = {"w": "w_avg", "magnitude": "magnitude_ema (SG3)", "ws": "ws (mapping)", "img": "images", "D": "D logits"}
    return groups[array.split("_")[0]]


def print_fixture_tables(rows: list[tuple]) -> None:
    """The per-array table, then the worst case per kind of array (the numbers to quote)."""
    print("| fixture | read as | array | max abs diff | rel | test bar (abs) | |")
    print("|---|---|---|---|---|---|---|")
    worst: dict = {}
    for row in rows:
        if len(row) == 3:
            print(f"| {row[0]} | - | {row[2]} | | | | |")
            continue
        name, source, key, diff, rel, bar, stated = row
        print(
            f"| {name} | {source} | {key} | {diff:.3g} | {rel:.3g} | {stated} | {'ok' if diff <= bar else '**FAIL**'} |"
        )
        group = worst.setdefault(kind(key), [0.0, 0.0, stated, 0])
        group[0], group[1], group[3] = max(group[0], diff), max(group[1], rel), group[3] + 1
    print("\n## Worst case per kind of array (all supported fixtures, both sources)\n")
    print("| arrays | compared | max abs diff | max rel | test bar |")
    print("|---|---|---|---|---|")
    for group, (diff, rel, stated, n) in worst.items():
        print(f"| {group} | {n} | {diff:.3g} | {rel:.3g} | {stated if 'clamp' not in group else '5e-06·max'} |")


def tf_round_trips() -> list[str]:
    """Rows for the TF round trips, using the cases and writer of tests/compat/test_tf_pickles.py."""
    test_file = ROOT / "tests" / "compat" / "test_tf_pickles.py"
    sys.path[:0] = [str(test_file.parent), str(ROOT / "tests")]  # the test's own imports (its writer helper)
    try:
        spec = importlib.util.spec_from_file_location("_tf_pickle_tests", test_file)
        tests = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tests)
        cases, randomize, write = tests.CASES, tests._randomize, tests._write
        from stylegan.compat.tf_networks import convert_tf_pickle
    except Exception as err:  # noqa: BLE001 - the section says why it could not run
        return [f"| (all) | - | not run: {type(err).__name__}: {err} | | | |"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, make in cases.items():
            torch.manual_seed(0)
            ref = [randomize(m) for m in make()]
            nets = convert_tf_pickle(write(Path(tmp), ref, name=f"{case}.pkl"))
            for key, diff, rel, ok in _tf_diffs(nets, ref):
                verdict = "ok" if ok else "**FAIL**"
                rows.append(f"| {case} | {key} | {diff:.3g} | {rel:.3g} | atol 1e-5 + rtol 1e-5 | {verdict} |")
    return rows


def _tf_diffs(nets: dict, ref: list) -> list[tuple[str, float, float, bool]]:
    """(output, max abs diff, diff / max |direct|, within the test's assert_close bar) for G, G_ema (psi 1, 0.5), D."""
    G, D, Gs = ref
    z = torch.randn(4, G.z_dim)
    c = torch.eye(max(G.c_dim, 1))[torch.arange(4) % max(G.c_dim, 1)][:, : G.c_dim]
    img = torch.randn(4, G.img_channels, G.img_resolution, G.img_resolution)
    out = []
    with torch.no_grad():
        pairs = {"D": (nets["D"](img, c), D(img, c))}
        for name, net in (("G", G), ("G_ema", Gs)):
            pairs[name] = (nets[name](z, c, noise_mode="const"), net(z, c, noise_mode="const"))
            kw = {"truncation_psi": 0.5, "noise_mode": "const"}
            pairs[f"{name} psi 0.5"] = (nets[name](z, c, **kw), net(z, c, **kw))
    for key, (ours, direct) in pairs.items():
        err = (ours.double() - direct.double()).abs()
        ok = bool((err <= 1e-5 + 1e-5 * direct.double().abs()).all())  # torch.testing.assert_close(rtol, atol)
        scale = direct.abs().max().item()
        out.append((key, err.max().item(), err.max().item() / scale if scale else err.max().item(), ok))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fixtures", nargs="*", help="fixture names (default: every NAME.pkl in tests/fixtures/nvlabs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-tf", action="store_true", help="skip the TF round trips")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.fixtures or sorted(p.stem for p in FIXTURES.glob("*.pkl"))
    print(f"# Parity with NVIDIA's official outputs (CPU fp32, torch {torch.__version__}, {args.threads} threads)\n")
    print("rel = max |ours − official| / max |official|; bar = what tests/compat/test_ada_parity.py enforces.\n")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for name in names for row in report_fixture(name, Path(tmp))]
    print_fixture_tables(rows)
    if not args.no_tf:
        print("\n## TF pickle round trips (no official TF fixtures: written by the tests' writer, read back)\n")
        print("| case | output | max abs diff | rel | test bar | |")
        print("|---|---|---|---|---|---|")
        print("\n".join(tf_round_trips()))
    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
