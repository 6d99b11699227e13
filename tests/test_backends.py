import sys
import types

import pytest
import torch

from evo_kernels.backends import get_backend, hardware_label, resolve_device


def test_hardware_label():
    assert hardware_label("NVIDIA H100 80GB HBM3") == "H100-80GB-HBM3"
    assert hardware_label("NVIDIA GeForce RTX 4090") == "GeForce-RTX-4090"


def test_cpu_backend_describes_and_times():
    b = get_backend("cpu")
    info = b.describe()
    assert info.kind == "cpu" and info.memory_bytes > 0 and info.sm_count >= 1 and info.l2_bytes > 0
    assert info.hardware.startswith("cpu-")
    t = b.timer()
    t.start()
    torch.randn(256, 256) @ torch.randn(256, 256)
    t.stop()
    assert t.elapsed_ms() > 0


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_mps_backend_against_a_stand_in(monkeypatch):
    """No Mac here: drive mps.py through a stand-in torch.mps that records what it is asked."""
    calls = []

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
    sys.modules.pop("evo_kernels.backends.mps", None)
    from evo_kernels.backends.mps import MpsBackend
    monkeypatch.setattr(MpsBackend, "__init__", lambda self, device=None: (
        setattr(self, "device", torch.device("cpu")), setattr(self, "_flush_buffer", None),
        setattr(self, "_sync", torch.mps.synchronize), setattr(self, "_info", None))[0])
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
