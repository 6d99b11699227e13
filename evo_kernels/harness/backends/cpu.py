"""CPU backend: the host clock is the device clock; the flush buffer evicts the L3."""
from __future__ import annotations

import os
import platform
import time

import torch

from .base import Backend, DeviceInfo, Timer, hardware_label

_perf_counter_ns = time.perf_counter_ns  # taken at import, before any candidate runs


class CpuTimer(Timer):
    def __init__(self) -> None:
        self._t0 = self._t1 = 0

    def start(self) -> None:
        self._t0 = _perf_counter_ns()

    def stop(self) -> None:
        self._t1 = _perf_counter_ns()

    def elapsed_ms(self) -> float:
        return (self._t1 - self._t0) / 1e6


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _sysconf(name: str) -> int:
    try:
        value = os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        return 0
    return max(int(value), 0)


class CpuBackend(Backend):
    kind = "cpu"

    def __init__(self, device: torch.device | None = None) -> None:
        super().__init__(torch.device("cpu"))
        self._info: DeviceInfo | None = None

    def synchronize(self) -> None:
        pass  # eager CPU work is synchronous

    def timer(self) -> Timer:
        return CpuTimer()

    def describe(self) -> DeviceInfo:
        if self._info is None:
            name = _cpu_name()
            l3 = _sysconf("SC_LEVEL3_CACHE_SIZE") or _sysconf("SC_LEVEL2_CACHE_SIZE") or (32 << 20)
            memory = _sysconf("SC_PAGE_SIZE") * _sysconf("SC_PHYS_PAGES")
            self._info = DeviceInfo(kind="cpu", name=name, hardware="cpu-" + hardware_label(name),
                                    memory_bytes=memory, sm_count=os.cpu_count() or 1, l2_bytes=l3)
        return self._info
