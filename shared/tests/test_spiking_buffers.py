"""The fused CPU kernel's buffer cache and what the neuron saves for backward."""

import gc
import resource

import pytest
import torch

from tenfold_core.spiking import _buffers, lif_multi_step
from tenfold_core.spiking import functional as F


@pytest.fixture
def fresh_cache():
    _buffers.clear()
    before = _buffers.set_cache_limit(64 << 20)
    yield
    _buffers.set_cache_limit(before)
    _buffers.clear()


def test_freed_outputs_are_reused_and_steady_calls_do_not_fault(fresh_cache):
    if "fast" not in F.available_backends():
        pytest.skip("no fused CPU kernel")
    x = torch.randn(4, 8, 16384, requires_grad=True)  # 2 MiB outputs: served by the cache
    g = torch.randn_like(x)
    for _ in range(2):
        x.grad = None
        lif_multi_step(x).backward(g)
    gc.collect()
    hits = _buffers.cache_info()["hits"]
    flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        x.grad = None
        lif_multi_step(x).backward(g)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt
    assert _buffers.cache_info()["hits"] >= hits + 6  # spikes and dX of every call came back from the cache
    assert faults < 3 * 512 / 4  # a fresh 2 MiB tensor per output would fault ~512 pages each
    # a live tensor is never handed out twice
    a = _buffers.empty((1 << 19,), torch.float32)
    b = _buffers.empty((1 << 19,), torch.float32)
    a.fill_(1.0)
    b.fill_(2.0)
    assert a.data_ptr() != b.data_ptr() and float(a.sum()) == 1 << 19


def test_cache_limit_and_small_tensors(fresh_cache):
    small = _buffers.empty((10, 10), torch.float32)
    assert small.shape == (10, 10) and _buffers.cache_info()["misses"] == 0  # small: plain torch.empty
    big = [_buffers.empty((4 << 20,), torch.float32) for _ in range(20)]  # 20 x 16 MiB
    del big
    gc.collect()
    info = _buffers.cache_info()
    assert 0 < info["idle_bytes"] <= 64 << 20
    _buffers.set_cache_limit(0)
    assert _buffers.cache_info()["idle_bytes"] == 0
    t = _buffers.empty((4 << 20,), torch.float32)
    del t
    gc.collect()
    assert _buffers.cache_info()["idle_bytes"] == 0  # caching off


def test_backward_recomputes_from_the_input_and_sees_inplace_changes():
    if "fast" not in F.available_backends():
        pytest.skip("no fused CPU kernel")
    x = torch.randn(4, 3, 50) * 2
    y = x.clone().requires_grad_(True)
    z = y * 1.0
    s = lif_multi_step(z, backend="fast")
    z.add_(1.0)  # the saved input changed: autograd refuses instead of returning wrong gradients
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.sum().backward()
