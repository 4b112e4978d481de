import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Fixed seed; one thread, which is faster for the tiny networks tests use (and fair on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
