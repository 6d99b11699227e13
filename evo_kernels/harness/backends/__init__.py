"""Device backends behind one interface (base.Backend), one per kind of model/devices.py;
`get_backend` builds the one for a device string, `resolve_device` turns `auto` into a present kind."""
from __future__ import annotations

import importlib

import torch

from ...model import devices
from .base import Backend, DeviceInfo, Timer, hardware_label

# kind -> "module:Class" (imported on first use: the CUDA backend touches torch.cuda at import).
BACKENDS = {"cuda": "cuda:CudaBackend", "mps": "mps:MpsBackend", "cpu": "cpu:CpuBackend"}


def available(kind: str) -> bool:
    """Whether this machine has a device of the kind."""
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return kind == "cpu"


def resolve_device(device: str) -> str:
    """'auto' -> the best kind present here (lowest `auto_rank`); others are checked to exist."""
    if device == "auto":
        return min((k for k in devices.KINDS.values() if available(k.name)), key=lambda k: k.auto_rank).name
    k = devices.kind(device)
    if not available(k.name):
        what = "CUDA GPU" if k.name == "cuda" else k.name.upper()
        raise ValueError(f"device {device!r} requested but this machine has no {what}")
    return device


def get_backend(device: str) -> Backend:
    k = devices.kind(device)
    module, _, cls = BACKENDS[k.name].partition(":")
    backend_cls = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return backend_cls(torch.device(device)) if k.indexed else backend_cls()


__all__ = ["BACKENDS", "Backend", "DeviceInfo", "Timer", "available", "get_backend", "hardware_label",
           "resolve_device"]
