"""The Backend contract (evo_kernels/harness/backends/base.py), held against every device kind of
model/devices.py: it describes its device, times a region, synchronizes, flushes its cache, and its
memory queries answer. CPU here; MPS through a stand-in `torch.mps` (no Mac in CI); CUDA on a GPU
(marked `gpu`)."""
import sys
import types

import pytest
import torch

from evo_kernels.harness.backends import BACKENDS, Backend, DeviceInfo, get_backend, hardware_label, resolve_device
from evo_kernels.model import devices


def _stand_in_mps(monkeypatch) -> list:
    """A stand-in torch.mps that records what it is asked; returns the record."""
    calls: list = []

    class FakeEvent:
        def __init__(self, enable_timing=False):
            assert enable_timing
            self.t = None

        def record(self):
            calls.append("record")
            self.t = len(calls)

        def elapsed_time(self, other):
            return float(other.t - self.t)

    fake = types.SimpleNamespace(Event=FakeEvent, synchronize=lambda: calls.append("sync"),
                                 recommended_max_memory=lambda: 64 << 30,
                                 current_allocated_memory=lambda: 123)
    monkeypatch.setattr(torch, "mps", fake, raising=False)
    sys.modules.pop("evo_kernels.harness.backends.mps", None)
    from evo_kernels.harness.backends.mps import MpsBackend
    monkeypatch.setattr(MpsBackend, "__init__", lambda self, device=None: (
        setattr(self, "device", torch.device("cpu")), setattr(self, "_flush_buffer", None),
        setattr(self, "_sync", torch.mps.synchronize), setattr(self, "_info", None))[0])
    return calls


@pytest.fixture(params=["cpu", "mps", pytest.param("cuda", marks=pytest.mark.gpu)])
def backend(request, monkeypatch) -> Backend:
    if request.param == "mps":
        _stand_in_mps(monkeypatch)
        from evo_kernels.harness.backends.mps import MpsBackend
        return MpsBackend()
    return get_backend(request.param)


def test_every_kind_has_a_backend():
    assert set(BACKENDS) == set(devices.KINDS)


def test_describes_its_device(backend):
    info = backend.describe()
    assert isinstance(info, DeviceInfo) and info.kind == backend.kind and info.kind in devices.KINDS
    assert info.memory_bytes > 0 and info.l2_bytes > 0 and info.hardware and info.name
    assert info.hardware == hardware_label(info.name) or info.hardware.startswith(info.kind + "-")
    assert backend.describe() == info  # static facts: asked twice, the same


def test_times_a_region_after_a_synchronize(backend):
    t = backend.timer()
    t.start()
    x = torch.randn(128, 128, device=backend.device)
    (x @ x).sum()
    t.stop()
    backend.synchronize()
    assert t.elapsed_ms() >= 0


def test_flush_wait_poison_and_memory_queries_answer(backend):
    backend.flush_cache()
    backend.busy_wait(0.1)
    assert backend.poison_free_memory() >= 0
    assert backend.memory_in_use() >= 0
    backend.synchronize()


def test_mps_calls_go_to_torch_mps(monkeypatch):
    calls = _stand_in_mps(monkeypatch)
    from evo_kernels.harness.backends.mps import MpsBackend
    b = MpsBackend()
    b.synchronize()
    t = b.timer()
    t.start()
    t.stop()
    assert t.elapsed_ms() == 1.0
    info = b.describe()
    assert info.kind == "mps" and info.memory_bytes == 64 << 30 and info.l2_bytes == 96 << 20
    assert b.memory_in_use() == 123
    assert calls == ["sync", "record", "record"]


def test_hardware_label():
    assert hardware_label("NVIDIA H100 80GB HBM3") == "H100-80GB-HBM3"
    assert hardware_label("NVIDIA GeForce RTX 4090") == "GeForce-RTX-4090"


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in devices.KINDS
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
