"""ImageFolderDataset: folders and zips, labels, x-flip, bad files, channel mixes, pickling."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from stylegan.data import DatasetError, DatasetWarning, ImageFolderDataset, make_dataset

# 12 AT&T faces, 92x112 PGM. Credit: AT&T Laboratories Cambridge.
FACES = Path(__file__).parents[1] / "fixtures" / "att-faces"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(arr).save(buf, format="png")
    return buf.getvalue()


def _write(folder: Path, name: str, data: bytes) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _images(folder: Path, n: int, shape=(8, 8), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrs = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]
    for i, a in enumerate(arrs):
        _write(folder, f"sub/{i:02d}.png", _png(a))
    return arrs


def test_att_faces_need_a_resolution_and_say_how():
    with pytest.raises(DatasetError, match=r"stylegan dataset --source .* --resolution N"):
        ImageFolderDataset(FACES)


def test_att_faces_resized_on_the_fly():
    ds = ImageFolderDataset(FACES, resolution=32)
    image, label = ds[0]
    assert len(ds) == 12 and ds.image_shape == [1, 32, 32] and ds.resolution == 32 and ds.num_channels == 1
    assert image.shape == (1, 32, 32) and image.dtype == np.uint8
    first = min(FACES.rglob("*.pgm"), key=lambda p: p.relative_to(FACES).as_posix())  # files are read by name
    with PIL.Image.open(first) as img:  # 92x112 -> central 92x92 square (rows 10..101) -> 32x32
        expected = np.asarray(img.crop((0, 10, 92, 102)).resize((32, 32), PIL.Image.LANCZOS))
    np.testing.assert_array_equal(image[0], expected)
    assert label.shape == (0,) and label.dtype == np.float32 and not ds.has_labels and ds.label_dim == 0
    assert ds.name == "att-faces"


def test_folder_reads_exact_pixels_recursively(tmp_path):
    arrs = _images(tmp_path, 3)
    ds = ImageFolderDataset(tmp_path)
    assert ds.resolution == 8 and len(ds) == 3
    for i, a in enumerate(arrs):
        np.testing.assert_array_equal(ds[i][0][0], a)


def test_xflip_doubles_with_mirrored_second_half(tmp_path):
    arrs = _images(tmp_path, 2)
    ds = ImageFolderDataset(tmp_path, xflip=True)
    assert len(ds) == 4
    expected = [arrs[0], arrs[1], arrs[0][:, ::-1], arrs[1][:, ::-1]]  # NVIDIA's order: originals, then mirrors
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(ds[i][0][0], want)
    np.testing.assert_array_equal(ds[-1][0][0], expected[-1])
    assert ds[3][0].flags["C_CONTIGUOUS"] and ds[3][0].flags["WRITEABLE"]
    with pytest.raises(IndexError):
        ds[4]
    assert len(list(ds)) == 4  # iteration stops at the end


def test_xflip_of_a_subset_mirrors_the_same_subset(tmp_path):
    arrs = _images(tmp_path, 5)
    ds = ImageFolderDataset(tmp_path, xflip=True, max_size=2, random_seed=3)
    kept = np.sort(np.random.RandomState(3).permutation(5)[:2])
    assert len(ds) == 4 and ds.xflip and list(ds.subset) == list(kept)
    for i, k in enumerate([*kept, *kept]):
        want = arrs[k] if i < 2 else arrs[k][:, ::-1]
        np.testing.assert_array_equal(ds[i][0][0], want)


def test_zip_matches_folder_and_pickles(tmp_path):
    _images(tmp_path / "src", 4)
    shutil.make_archive(str(tmp_path / "data"), "zip", tmp_path / "src")
    folder, archive = ImageFolderDataset(tmp_path / "src"), ImageFolderDataset(tmp_path / "data.zip")
    archive[0]  # opens the zip in this process; pickling must drop the handle
    clone = pickle.loads(pickle.dumps(archive))
    for i in range(4):
        np.testing.assert_array_equal(folder[i][0], clone[i][0])
    assert archive.name == "data"


def test_dataloader_workers_read_a_zip(tmp_path):
    arrs = _images(tmp_path / "src", 6)
    shutil.make_archive(str(tmp_path / "data"), "zip", tmp_path / "src")
    ds = ImageFolderDataset(tmp_path / "data.zip")
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [torch.Size([3, 1, 8, 8])] * 2
    assert batches[0][0].dtype == torch.uint8
    np.testing.assert_array_equal(torch.cat([b[0] for b in batches])[:, 0].numpy(), np.stack(arrs))


def test_int_labels_become_one_hot(tmp_path):
    _images(tmp_path, 3)
    labels = [["sub/00.png", 0], ["sub/01.png", 2], ["sub/02.png", 1]]
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels}))
    ds = ImageFolderDataset(tmp_path, use_labels=True, xflip=True)
    assert ds.label_dim == 3 and ds.has_labels and ds.label_shape == [3]
    np.testing.assert_array_equal(ds[1][1], [0, 0, 1])
    np.testing.assert_array_equal(ds[4][1], [0, 0, 1])  # the mirrored copy keeps its label
    assert ImageFolderDataset(tmp_path).label_dim == 0  # labels off by default


def test_vector_labels_and_label_errors(tmp_path):
    _images(tmp_path, 2)
    labels = [["sub/00.png", [0.5, 1]], ["sub/01.png", [2, 3]]]
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels}))
    np.testing.assert_allclose(ImageFolderDataset(tmp_path, use_labels=True)[1][1], [2, 3])
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["sub/00.png", 1]]}))
    with pytest.raises(DatasetError, match="1 image.* no label"):
        ImageFolderDataset(tmp_path, use_labels=True)
    (tmp_path / "dataset.json").unlink()
    with pytest.raises(DatasetError, match="no dataset.json"):
        ImageFolderDataset(tmp_path, use_labels=True)


def test_bad_files_are_skipped_with_a_report(tmp_path):
    arrs = _images(tmp_path, 2)
    good = _png(arrs[0])
    _write(tmp_path, "empty.png", b"")
    _write(tmp_path, "truncated.png", good[: len(good) // 2])
    _write(tmp_path, "text.jpg", b"hello, not a jpeg")
    _write(tmp_path, "notes.txt", b"ignored: not an image extension")
    expected = r"skipped 3 unusable file\(s\):.*empty\.png.*text\.jpg.*truncated\.png"
    with pytest.warns(DatasetWarning, match=expected):
        ds = ImageFolderDataset(tmp_path)
    assert len(ds) == 2 and [name for name, _ in ds.skipped] == ["empty.png", "text.jpg", "truncated.png"]


def test_truncated_file_without_verify_fails_clearly_on_read(tmp_path):
    good = _png(np.random.default_rng(0).integers(0, 256, [8, 8], dtype=np.uint8))
    _write(tmp_path, "a.png", good)
    _write(tmp_path, "b.png", good[: len(good) // 2])
    ds = ImageFolderDataset(tmp_path, verify=False)
    assert len(ds) == 2
    with pytest.raises(DatasetError, match="cannot read b.png"):
        ds[1]


def test_nothing_usable_or_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no images found"):
        ImageFolderDataset(tmp_path)
    _write(tmp_path, "bad.png", b"nope")
    with pytest.raises(DatasetError, match=r"no usable images.*bad\.png \(not an image\)"):
        ImageFolderDataset(tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        ImageFolderDataset(tmp_path / "missing")
    assert issubclass(DatasetError, ValueError)


def test_mixed_sizes_need_a_resolution(tmp_path):
    _images(tmp_path, 2)
    _write(tmp_path, "big.png", _png(np.zeros([16, 16], np.uint8)))
    with pytest.raises(DatasetError, match=r"different sizes: 8x8 \(2\), 16x16 \(1\).*--resolution N"):
        ImageFolderDataset(tmp_path)
    assert ImageFolderDataset(tmp_path, resolution=16)[2][0].shape == (1, 16, 16)


def test_channel_mix_follows_the_majority_or_the_declared_count(tmp_path):
    _images(tmp_path, 3)  # grayscale
    rgb = np.zeros([8, 8, 3], np.uint8)
    rgb[..., 0] = 255
    _write(tmp_path, "rgb.png", _png(rgb))
    rgba = np.zeros([8, 8, 4], np.uint8)
    rgba[..., 1] = 200  # green, half transparent -> composited onto black
    rgba[..., 3] = 128
    _write(tmp_path, "rgba.png", _png(rgba))
    gray = ImageFolderDataset(tmp_path)
    assert gray.num_channels == 1 and {gray[i][0].shape for i in range(5)} == {(1, 8, 8)}
    colour = ImageFolderDataset(tmp_path, channels=3)
    assert {colour[i][0].shape for i in range(5)} == {(3, 8, 8)}
    pixel = colour[1][0][:, 0, 0]  # sorted names: rgb.png, rgba.png, sub/...
    assert pixel[0] == 0 and 95 <= pixel[1] <= 105 and pixel[2] == 0
    with pytest.raises(DatasetError, match="channels must be 1 or 3"):
        ImageFolderDataset(tmp_path, channels=4)


def test_max_size_takes_a_seeded_subset(tmp_path):
    """NVIDIA's subset: the first max_size of a seeded shuffle of all indices, read in file order."""
    arrs = _images(tmp_path, 6)
    for seed in (1, 2):
        ds = ImageFolderDataset(tmp_path, max_size=3, random_seed=seed)
        kept = np.sort(np.random.RandomState(seed).permutation(6)[:3])
        assert len(ds) == 3
        for i, k in enumerate(kept):
            np.testing.assert_array_equal(ds[i][0][0], arrs[k])
    assert len(ImageFolderDataset(tmp_path, max_size=10)) == 6


def test_dataset_made_by_the_tool_loads_in_nvidia_layout(tmp_path):
    report = make_dataset(FACES, tmp_path / "faces.zip", resolution=16)
    with zipfile.ZipFile(tmp_path / "faces.zip") as z:
        assert sorted(z.namelist())[:2] == ["00000/img00000000.png", "00000/img00000001.png"]
    ds = ImageFolderDataset(tmp_path / "faces.zip")
    assert report.num_images == len(ds) == 12 and ds.image_shape == [1, 16, 16]


def test_header_scan_without_verify_matches_pil(tmp_path):
    shapes = {"l.png": (8, 8), "rgb.png": (8, 8, 3), "rgba.png": (8, 8, 4), "la.png": (8, 8, 2)}
    for name, shape in shapes.items():
        _write(tmp_path, name, _png(np.zeros(shape, np.uint8)))
    _write(tmp_path, "wide.pgm", b"P5 16 8 255\n" + bytes(128))
    fast = ImageFolderDataset(tmp_path, verify=False, resolution=8)
    slow = ImageFolderDataset(tmp_path, verify=True, resolution=8)
    assert fast.num_channels == slow.num_channels == 1  # 3 grayscale files (l, la, pgm) against 2 colour
    assert all(np.array_equal(fast[i][0], slow[i][0]) for i in range(5))
