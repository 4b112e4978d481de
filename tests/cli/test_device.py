"""stylegan.device.select_device: the one device picker (CLI --device, training ranks, benchmarks)."""

import pytest
import torch

from stylegan.device import block_dtype, select_device


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.mark.parametrize(
    "name, local_rank, expected",
    [
        ("cuda", None, "cuda"),
        ("cuda", 2, "cuda:2"),
        ("auto", 3, "cuda:3"),
        ("cuda:1", 2, "cuda:1"),  # an explicit index wins
        ("cpu", 2, "cpu"),
        ("CPU", None, "cpu"),
    ],
)
def test_select_device_with_cuda(fake_cuda, name, local_rank, expected):
    assert select_device(name, local_rank=local_rank) == torch.device(expected)


def test_select_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto", local_rank=1).type in ("cpu", "mps")
    with pytest.raises(ValueError, match="no CUDA device"):
        select_device("cuda", local_rank=0)
    with pytest.raises(ValueError, match="is not a device"):
        select_device("tpu7")


def test_fp16_only_on_cuda():
    assert block_dtype(True, "cuda") == torch.float16
    assert block_dtype(True, "cuda", force_fp32=True) == torch.float32
    assert block_dtype(True, "cpu") == torch.float32 and block_dtype(False, "cuda") == torch.float32
