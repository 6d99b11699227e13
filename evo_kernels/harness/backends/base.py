"""The device interface: synchronize, a device timer, cache flush, device facts.

A Backend owns no timing method: timing.py decides when to flush, sync and read the timer. The
backend only knows how to do each of those on its device. References to the device functions are
taken when the backend is built (before any candidate code runs), so a candidate that patches
`torch.cuda.synchronize` or the event methods does not change what the harness calls.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ...model import devices


@dataclass
class DeviceInfo:
    kind: str  # cpu, cuda, mps
    name: str  # e.g. "NVIDIA H100 80GB HBM3"
    hardware: str  # label used to route work and to key baselines, e.g. "H100-80GB-HBM3"
    memory_bytes: int
    sm_count: int  # streaming multiprocessors / compute units / cores
    l2_bytes: int  # last-level cache size (L2 on GPUs, L3 on CPUs); 0 if unknown
    bandwidth_gbs: float = 0.0  # measured by timing.measure_ceilings; 0 until measured
    peak_tflops_fp32: float = 0.0  # measured fp32 matrix product rate; 0 until measured
    peak_tflops_tf32: float = 0.0  # the same with TF32 tensor cores (GPUs that have them); 0 if not
    peak_tflops_fp16: float = 0.0  # the same in fp16 with fp32 sums; 0 if not measured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hardware_label(name: str) -> str:
    """A stable label from a device name: 'NVIDIA H100 80GB HBM3' -> 'H100-80GB-HBM3'."""
    label = re.sub(r"^(NVIDIA|AMD|Apple)\s+", "", name.strip())
    label = re.sub(r"[^A-Za-z0-9.]+", "-", label).strip("-")
    return label or "unknown"


class Timer(ABC):
    """Brackets one region of device work; `elapsed_ms` is read after a device synchronize."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def elapsed_ms(self) -> float: ...


class Backend(ABC):
    kind: str = ""

    @property
    def host_clock(self) -> bool:
        """The device clock is the host's (the CPU): no lead-in to hide work in, no device timer."""
        return devices.kind(self.kind).host_clock

    @property
    def poisons_context(self) -> bool:
        """A device error can leave this process's context unusable (the worker is replaced)."""
        return devices.kind(self.kind).poisons_context

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._flush_buffer: torch.Tensor | None = None

    @abstractmethod
    def synchronize(self) -> None:
        """Wait for all work queued on the device (every stream), not only the current one."""

    @abstractmethod
    def timer(self) -> Timer:
        """A new timer for one region."""

    @abstractmethod
    def describe(self) -> DeviceInfo:
        """Static facts about the device (no measurement)."""

    def flush_cache(self) -> None:
        """Evict the last-level cache by writing a buffer several times its size."""
        if self._flush_buffer is None:
            size = max(4 * self.describe().l2_bytes, 64 << 20)
            self._flush_buffer = torch.empty(size // 4, dtype=torch.int32, device=self.device)
        self._flush_buffer.fill_(0x5A5A5A5A)

    def busy_wait(self, ms: float) -> None:
        """Queue `ms` of device-side waiting (no-op where the host is the device)."""

    def poison_free_memory(self) -> int:
        """Overwrite memory the allocator holds but no tensor uses (freed results); returns bytes."""
        return 0

    def memory_in_use(self) -> int:
        return 0

    def max_memory(self) -> int:
        """The most device memory this process's tensors held since `reset_peak_memory` (0: not tracked)."""
        return 0

    def reset_peak_memory(self) -> None:
        pass

    def memory_stats(self) -> dict[str, int]:
        """Bytes held now by tensors (`allocated`) and by the allocator (`reserved`), and the peak of
        the first since `reset_peak_memory` (empty: not tracked)."""
        return {}

    def collect_shared(self) -> None:
        """Free what this process sent another and both have let go of (CUDA IPC: the sender keeps
        such blocks until it collects them)."""

    def release_memory(self) -> None:
        """Give cached free memory back to the device (between evaluations)."""
