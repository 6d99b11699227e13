"""What the harness relies on, captured before candidate code runs, and a check that it is unchanged.

A candidate could replace `torch.allclose`, `time.perf_counter`, the CUDA event methods or the
harness's own functions so that a wrong or slow result looks right or fast. The static policy
refuses the obvious forms; this catches the rest at run time: `snapshot()` records the identity of
every watched attribute and the global precision switches; `changed()` lists what differs now, and
`restore()` puts the originals back so the next candidate runs in a clean process.
"""
from __future__ import annotations

import importlib
import sys
import time
from typing import Any

import torch

# (module path, attribute path): identity-checked. Harness modules are added when they are imported.
_WATCHED: list[tuple[str, str]] = [
    ("torch", "allclose"), ("torch", "isclose"), ("torch", "equal"), ("torch", "isnan"),
    ("torch", "isinf"), ("torch", "abs"), ("torch", "where"), ("torch", "manual_seed"),
    ("torch", "Tensor"), ("torch", "Tensor.__eq__"), ("torch", "Tensor.clone"),
    ("torch", "Tensor.copy_"), ("torch", "Tensor.float"), ("torch", "Tensor.double"),
    ("torch", "Tensor.sub"), ("torch", "Tensor.abs"), ("torch", "Tensor.norm"),
    ("torch", "Tensor.numel"), ("torch", "Tensor.data_ptr"), ("torch", "Tensor.untyped_storage"),
    ("torch.testing", "assert_close"), ("torch.linalg", "vector_norm"),
    ("torch.cuda", "synchronize"), ("torch.cuda", "Event"), ("torch.cuda", "Event.record"),
    ("torch.cuda", "Event.elapsed_time"), ("torch.cuda", "Event.synchronize"),
    ("torch.cuda", "current_stream"), ("torch.cuda", "memory_snapshot"),
    ("time", "perf_counter"), ("time", "perf_counter_ns"), ("time", "time"), ("time", "monotonic"),
    ("builtins", "isinstance"), ("builtins", "type"),
]
_HARNESS_MODULES = ("evo_kernels.verify", "evo_kernels.timing", "evo_kernels.integrity",
                    "evo_kernels.worker", "evo_kernels.backends.base", "evo_kernels.backends.cuda",
                    "evo_kernels.backends.cpu", "evo_kernels.problem")

_snapshot: dict[str, Any] = {}
_time_mod = time  # held so a candidate deleting `time` from sys.modules changes nothing here


def _resolve(module: str, attr: str) -> tuple[Any, str, Any]:
    obj: Any = importlib.import_module(module)
    parts = attr.split(".")
    for p in parts[:-1]:
        obj = getattr(obj, p)
    return obj, parts[-1], getattr(obj, parts[-1])


def precision_flags() -> dict[str, Any]:
    """Global switches that trade precision for speed (and would also change the reference)."""
    flags = {
        "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda.matmul.allow_fp16_reduced_precision_reduction":
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
        "cuda.matmul.allow_bf16_reduced_precision_reduction":
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    return flags


def set_strict_precision() -> None:
    """Full fp32 everywhere: PyTorch enables TF32 for cuDNN convolutions by default."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False


def _restore_precision(flags: dict[str, Any]) -> None:
    torch.backends.cuda.matmul.allow_tf32 = flags["cuda.matmul.allow_tf32"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn.allow_tf32"]
    torch.set_float32_matmul_precision(flags["float32_matmul_precision"])
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = \
        flags["cuda.matmul.allow_fp16_reduced_precision_reduction"]
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = \
        flags["cuda.matmul.allow_bf16_reduced_precision_reduction"]


def _watched() -> list[tuple[str, str]]:
    items = list(_WATCHED)
    for name in _HARNESS_MODULES:
        mod = sys.modules.get(name)
        if mod is None:
            continue
        for attr, value in vars(mod).items():
            if callable(value) and not attr.startswith("__"):
                items.append((name, attr))
    return items


def snapshot() -> None:
    """Record the watched attributes and precision flags. Call before any candidate is imported."""
    _snapshot.clear()
    for module, attr in _watched():
        try:
            owner, name, value = _resolve(module, attr)
        except (ImportError, AttributeError):
            continue
        _snapshot[f"{module}.{attr}"] = (owner, name, value)
    _snapshot["__precision__"] = precision_flags()
    _snapshot["__modules__"] = {name: sys.modules.get(name) for name in _HARNESS_MODULES + ("torch", "time")}


def changed() -> list[str]:
    """Names of watched attributes, modules or precision flags that differ from the snapshot."""
    diffs = []
    for key, entry in _snapshot.items():
        if key.startswith("__"):
            continue
        owner, name, value = entry
        if getattr(owner, name, None) is not value:
            diffs.append(key)
    for name, mod in _snapshot.get("__modules__", {}).items():
        if mod is not None and sys.modules.get(name) is not mod:
            diffs.append(f"sys.modules[{name!r}]")
    return diffs


def precision_changes() -> list[str]:
    before = _snapshot.get("__precision__", {})
    now = precision_flags()
    return [f"{k}: {before[k]!r} -> {now[k]!r}" for k in before if now.get(k) != before[k]]


def restore() -> None:
    """Put back every watched attribute, module and precision flag."""
    for key, entry in _snapshot.items():
        if key.startswith("__"):
            continue
        owner, name, value = entry
        try:
            setattr(owner, name, value)
        except (AttributeError, TypeError):
            pass
    for name, mod in _snapshot.get("__modules__", {}).items():
        if mod is not None:
            sys.modules[name] = mod
    if "__precision__" in _snapshot:
        _restore_precision(_snapshot["__precision__"])
