"""Apple-silicon (MPS) backend, to the same interface as cpu.py and cuda.py.

Written against torch.mps's public API (synchronize, Event with timing, memory queries) and unit
tested without a Mac through a stand-in `torch.mps` module (tests/test_backends.py); it has not
been run on Apple hardware by the project's CI.
"""
from __future__ import annotations

import platform

import torch

from .base import Backend, DeviceInfo, Timer, hardware_label

# Apple's GPUs share a system-level cache (up to ~96 MB on the largest parts); its size is not
# queryable, so the flush buffer assumes the largest.
_SLC_BYTES = 96 << 20


class MpsTimer(Timer):
    def __init__(self) -> None:
        self._start = torch.mps.Event(enable_timing=True)
        self._stop = torch.mps.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record()

    def stop(self) -> None:
        self._stop.record()

    def elapsed_ms(self) -> float:
        return float(self._start.elapsed_time(self._stop))


class MpsBackend(Backend):
    kind = "mps"

    def __init__(self, device: torch.device | None = None) -> None:
        super().__init__(torch.device("mps"))
        self._sync = torch.mps.synchronize  # taken before candidate code runs
        self._info: DeviceInfo | None = None

    def synchronize(self) -> None:
        self._sync()

    def timer(self) -> Timer:
        return MpsTimer()

    def describe(self) -> DeviceInfo:
        if self._info is None:
            name = f"Apple {platform.processor() or platform.machine()} GPU (mps)"
            memory = 0
            if hasattr(torch.mps, "recommended_max_memory"):
                memory = int(torch.mps.recommended_max_memory())
            self._info = DeviceInfo(kind="mps", name=name, hardware="mps-" + hardware_label(name),
                                    memory_bytes=memory, sm_count=0, l2_bytes=_SLC_BYTES)
        return self._info

    def memory_in_use(self) -> int:
        return int(torch.mps.current_allocated_memory()) if hasattr(torch.mps, "current_allocated_memory") else 0
