"""make_dataset and `stylegan dataset`: transforms, filters, labels, skipped files, atomic writes, FMNIST."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import stylegan.data.tool as tool
from ci_skip import skip_or_fail
from stylegan.cli.dataset import dataset as dataset_cmd
from stylegan.data import DatasetError, DestinationExistsError, ImageFolderDataset, load_fashion_mnist, make_dataset
from stylegan.data.fashion_mnist import find_fashion_mnist

# 12 AT&T faces, 92x112 PGM. Credit: AT&T Laboratories Cambridge.
FACES = Path(__file__).parents[1] / "fixtures" / "att-faces"


@pytest.fixture
def fashion_mnist() -> None:
    if find_fashion_mnist() is None:
        skip_or_fail("Fashion-MNIST absent (apt-get install dataset-fashion-mnist)")


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(arr).save(path)


def _zip_image(path: Path, name: str = "00000/img00000000.png") -> np.ndarray:
    with zipfile.ZipFile(path) as z:
        return np.asarray(PIL.Image.open(io.BytesIO(z.read(name))))


def test_faces_center_crop_to_zip(tmp_path):
    report = make_dataset(FACES, tmp_path / "faces.zip", resolution=32)
    assert (report.num_images, report.resolution, report.channels, report.skipped) == (12, 32, 1, [])
    assert report.ignored == 1  # the fixture's README.md
    first = min(FACES.rglob("*.pgm"), key=lambda p: p.relative_to(FACES).as_posix())  # the tool sorts by name
    with PIL.Image.open(first) as img:  # 92x112 -> central 92x92 square (rows 10..101) -> 32x32
        expected = np.asarray(img.crop((0, 10, 92, 102)).resize((32, 32), PIL.Image.LANCZOS))
    np.testing.assert_array_equal(_zip_image(tmp_path / "faces.zip"), expected)
    assert "wrote 12 images of 32x32x1" in report.summary()


def test_transforms_on_a_wide_white_image(tmp_path):
    _save(tmp_path / "src" / "wide.png", np.full([20, 40, 3], 255, np.uint8))  # H=20, W=40
    out = {}
    for transform in ("center-crop", "pad", "center-crop-wide"):
        make_dataset(tmp_path / "src", tmp_path / f"{transform}.zip", resolution=16, transform=transform)
        out[transform] = _zip_image(tmp_path / f"{transform}.zip")
    assert out["center-crop"].shape == (16, 16, 3) and out["center-crop"].min() == 255
    pad = out["pad"][:, :, 0]  # 40x40 canvas, image in rows 10..30 -> rows 4..12 of 16
    assert pad[0].max() == 0 and pad[-1].max() == 0 and pad[8].min() == 255
    wide = out["center-crop-wide"][:, :, 0]  # a 4:3 band 16x12, rows 2..14
    assert wide[0].max() == 0 and wide[8].min() == 255 and wide[:, 0].max() == 255
    with pytest.raises(DatasetError, match="not square"):
        make_dataset(tmp_path / "src", tmp_path / "none.zip", resolution=16, transform=None)
    assert not (tmp_path / "none.zip").exists()


def test_box_and_lanczos_filters_differ(tmp_path):
    rng = np.random.default_rng(0)
    _save(tmp_path / "src" / "a.png", rng.integers(0, 256, [64, 64], dtype=np.uint8))
    box = make_dataset(tmp_path / "src", tmp_path / "box.zip", resolution=16, resize_filter="box")
    make_dataset(tmp_path / "src", tmp_path / "lanczos.zip", resolution=16)
    a, b = _zip_image(tmp_path / "box.zip"), _zip_image(tmp_path / "lanczos.zip")
    src = np.asarray(PIL.Image.open(tmp_path / "src" / "a.png"), dtype=np.float64)
    np.testing.assert_allclose(a, src.reshape(16, 4, 16, 4).mean(axis=(1, 3)), atol=1)  # box = 4x4 mean
    assert box.num_images == 1 and not np.array_equal(a, b)


def test_labels_skipped_files_and_channels(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        _save(src / f"{i}.png", np.full([8, 8, 3], 40 * i, np.uint8))
    _save(src / "gray.png", np.zeros([8, 8], np.uint8))
    (src / "broken.png").write_bytes(b"")
    (src / "dataset.json").write_text(json.dumps({"labels": [["0.png", 1], ["1.png", 0], ["2.png", 3]]}))
    report = make_dataset(src, tmp_path / "out.zip", resolution=8)
    assert report.num_images == 3 and report.channels == 3 and report.num_labelled == 3
    assert dict(report.skipped) == {"broken.png": "empty file", "gray.png": "no label in dataset.json"}
    ds = ImageFolderDataset(tmp_path / "out.zip", use_labels=True)
    assert ds.label_dim == 4 and ds.num_channels == 3
    np.testing.assert_array_equal(ds[2][1], [0, 0, 0, 1])
    one = make_dataset(src, tmp_path / "one", resolution=8, channels=1, max_images=2)  # folder dest
    assert one.num_images == 2 and sorted(os.listdir(tmp_path / "one")) == ["00000", "dataset.json"]
    assert ImageFolderDataset(tmp_path / "one").image_shape == [1, 8, 8]


def test_errors_leave_no_partial_output(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.png").write_bytes(b"not png")
    with pytest.raises(DatasetError, match="no usable images"):
        make_dataset(tmp_path / "src", tmp_path / "out.zip", resolution=8)
    with pytest.raises(DatasetError, match="power of two"):
        make_dataset(FACES, tmp_path / "out.zip", resolution=48)
    with pytest.raises(DatasetError, match="no such folder"):
        make_dataset(tmp_path / "missing", tmp_path / "out.zip", resolution=8)
    assert sorted(os.listdir(tmp_path)) == ["src"]  # no temporary files left behind


def test_cli_success_and_one_line_errors(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(dataset_cmd, ["--source", FACES, "--dest", tmp_path / "f.zip", "--resolution", 8])
    assert ok.exit_code == 0 and "wrote 12 images of 8x8x1" in ok.output
    bad = runner.invoke(dataset_cmd, ["--source", tmp_path / "nope", "--dest", "x.zip", "--resolution", 8])
    assert bad.exit_code == 1 and bad.output.startswith("Error: ") and bad.output.count("\n") == 1
    assert "Traceback" not in bad.output
    help_text = runner.invoke(dataset_cmd, ["--help"]).output
    assert "lanczos" in help_text and "box" in help_text and "FID" in help_text


def test_fashion_mnist_loader(fashion_mnist):
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))


def test_fashion_mnist_export_pads_to_32_with_labels(tmp_path, fashion_mnist):
    report = make_dataset("fashion-mnist:test", tmp_path / "fm.zip", resolution=32, max_images=50)
    assert report.num_images == 50 and report.num_labelled == 50
    ds = ImageFolderDataset(tmp_path / "fm.zip", use_labels=True)
    images, labels = load_fashion_mnist("test")
    image, label = ds[7]
    np.testing.assert_array_equal(image[0, 2:30, 2:30], images[7])
    assert image[0, :2].max() == 0 and image[0, :, 30:].max() == 0
    assert label.argmax() == labels[7] and ds.label_dim == labels[:50].max() + 1


def _mtime_and_bytes(path: Path) -> tuple[int, bytes]:
    return path.stat().st_mtime_ns, path.read_bytes()


def test_existing_zip_is_refused_without_force(tmp_path):
    dest = tmp_path / "f.zip"
    dest.write_bytes(b"precious")
    before = _mtime_and_bytes(dest)
    with pytest.raises(DestinationExistsError, match="f.zip already exists"):
        make_dataset(FACES, dest, resolution=8)
    runner = CliRunner()
    res = runner.invoke(dataset_cmd, ["--source", FACES, "--dest", dest, "--resolution", 8])
    assert res.exit_code == 1 and res.output == f"Error: {dest} already exists; pass --force to replace it\n"
    assert _mtime_and_bytes(dest) == before and sorted(os.listdir(tmp_path)) == ["f.zip"]
    res = runner.invoke(dataset_cmd, ["--source", FACES, "--dest", dest, "--resolution", 8, "--force"])
    assert res.exit_code == 0 and "wrote 12 images of 8x8x1" in res.output
    assert _zip_image(dest).shape == (8, 8) and sorted(os.listdir(tmp_path)) == ["f.zip"]


def test_existing_folder_is_replaced_only_with_force_and_only_if_a_dataset(tmp_path):
    make_dataset(FACES, tmp_path / "ds", resolution=8, max_images=3)
    with pytest.raises(DestinationExistsError):
        make_dataset(FACES, tmp_path / "ds", resolution=8)
    report = make_dataset(FACES, tmp_path / "ds", resolution=16, overwrite=True)
    assert report.num_images == len(ImageFolderDataset(tmp_path / "ds")) == 12
    assert ImageFolderDataset(tmp_path / "ds").resolution == 16 and sorted(os.listdir(tmp_path)) == ["ds"]
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="will not replace a folder that holds more than a dataset"):
        make_dataset(FACES, tmp_path / "home", resolution=8, overwrite=True)
    assert (tmp_path / "home" / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert make_dataset(FACES, tmp_path / "empty", resolution=8, max_images=1).num_images == 1  # empty: no --force
    (tmp_path / "odd.zip").mkdir()
    with pytest.raises(DatasetError, match="is a folder, not a zip file"):
        make_dataset(FACES, tmp_path / "odd.zip", resolution=8, overwrite=True)


@pytest.mark.parametrize("dest_name", ["f.zip", "folder"])
def test_interrupt_leaves_the_old_output_and_no_temporary(tmp_path, monkeypatch, dest_name):
    """Ctrl-C (KeyboardInterrupt) half-way through: the previous dataset is untouched, nothing else is left."""
    dest = tmp_path / dest_name
    make_dataset(FACES, dest, resolution=8, max_images=2)
    before = sorted(ImageFolderDataset(dest)[i][0].tobytes() for i in range(2))
    calls = []
    real_add = tool._Writer.add

    def add_then_interrupt(self, img, label):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real_add(self, img, label)

    monkeypatch.setattr(tool._Writer, "add", add_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(FACES, dest, resolution=8, overwrite=True)
    assert len(calls) == 5 and sorted(os.listdir(tmp_path)) == [dest_name]
    assert len(ImageFolderDataset(dest)) == 2
    assert sorted(ImageFolderDataset(dest)[i][0].tobytes() for i in range(2)) == before
