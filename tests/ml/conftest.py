import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one CPU thread for the module: the CI box is small and shared; one thread contends least."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
