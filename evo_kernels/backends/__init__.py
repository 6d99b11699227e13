"""Device backends behind one interface (base.Backend); `get_backend` picks one for a device string."""
from __future__ import annotations

import torch

from .base import Backend, DeviceInfo, Timer, hardware_label


def resolve_device(device: str) -> str:
    """'auto' -> the best device here (cuda, then mps, then cpu); others are checked to exist."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but this machine has no CUDA GPU")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available here")
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {device!r}; expected cpu, cuda, cuda:N, mps or auto")
    return device


def get_backend(device: str) -> Backend:
    kind = device.split(":")[0]
    if kind == "cuda":
        from .cuda import CudaBackend
        return CudaBackend(torch.device(device))
    if kind == "mps":
        from .mps import MpsBackend
        return MpsBackend()
    if kind == "cpu":
        from .cpu import CpuBackend
        return CpuBackend()
    raise ValueError(f"unknown device {device!r}")


__all__ = ["Backend", "DeviceInfo", "Timer", "get_backend", "hardware_label", "resolve_device"]
