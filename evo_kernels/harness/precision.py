"""The global precision switches: reading them, setting them, and the ones a run's baselines and
candidates run under.

PyTorch trades precision for speed behind process-wide switches: TF32 for cuDNN convolutions (on by
default) and for matrix products (off by default), reduced-precision reductions in half-precision
products (on by default), oneDNN's bf16, autocast, flush-to-zero. A speedup counts against the
baselines as users run them: under `precision: as_run` (the default) that is PyTorch's defaults, or
the `baseline_flags` the run config names; under `precision: strict`, full fp32 everywhere. The
reference and every candidate run under the same switches, and a candidate may not change them
(policy.py refuses it, integrity.py sees it at run time).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

# (backend, op) pairs of the fp32 precision API (TF32 on CUDA, bf16 in oneDNN on the CPU).
_FP32_PRECISION = (("generic", "all"), ("cuda", "all"), ("cuda", "matmul"), ("cuda", "conv"), ("cuda", "rnn"),
                   ("mkldnn", "all"), ("mkldnn", "matmul"), ("mkldnn", "conv"), ("mkldnn", "rnn"))
# Below float32's smallest normal number. NumPy, not torch: the check must not run through a torch
# function mode a candidate left active, and flush-to-zero is the CPU thread's state, shared by both.
_denormal = np.array([1e-39], dtype=np.float32)


def run_flags(precision: str, flags: Any) -> dict[str, Any]:
    """The switches a run's baselines and candidates run under: `flags` is the config's
    baseline_flags section (PyTorch's defaults unless the run names others); `strict` is all off."""
    if precision == "strict":
        return {"cudnn_allow_tf32": False, "matmul_allow_tf32": False, "float32_matmul_precision": "highest",
                "fp16_reduced_precision_reduction": False, "bf16_reduced_precision_reduction": False}
    return {"cudnn_allow_tf32": flags.cudnn_allow_tf32, "matmul_allow_tf32": flags.matmul_allow_tf32,
            "float32_matmul_precision": flags.float32_matmul_precision,
            "fp16_reduced_precision_reduction": flags.fp16_reduced_precision_reduction,
            "bf16_reduced_precision_reduction": flags.bf16_reduced_precision_reduction}


def read_switches() -> dict[str, Any]:
    """The switches `apply` sets, as they are now (to put them back after a measurement)."""
    m = torch.backends.cuda.matmul
    return {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "matmul_allow_tf32": m.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "fp16_reduced_precision_reduction": m.allow_fp16_reduced_precision_reduction,
            "bf16_reduced_precision_reduction": m.allow_bf16_reduced_precision_reduction}


def apply(flags: dict[str, Any]) -> None:
    """Set the switches `run_flags` names (only those that differ: some setters have side effects)."""
    m = torch.backends.cuda.matmul
    if torch.get_float32_matmul_precision() != flags["float32_matmul_precision"]:
        torch.set_float32_matmul_precision(flags["float32_matmul_precision"])
    if m.allow_tf32 != flags["matmul_allow_tf32"]:
        m.allow_tf32 = flags["matmul_allow_tf32"]
    if torch.backends.cudnn.allow_tf32 != flags["cudnn_allow_tf32"]:
        torch.backends.cudnn.allow_tf32 = flags["cudnn_allow_tf32"]
    if m.allow_fp16_reduced_precision_reduction != flags["fp16_reduced_precision_reduction"]:
        m.allow_fp16_reduced_precision_reduction = flags["fp16_reduced_precision_reduction"]
    if m.allow_bf16_reduced_precision_reduction != flags["bf16_reduced_precision_reduction"]:
        m.allow_bf16_reduced_precision_reduction = flags["bf16_reduced_precision_reduction"]


def set_strict_precision() -> None:
    """Full fp32 everywhere (PyTorch enables TF32 for cuDNN convolutions by default)."""
    apply(run_flags("strict", None))


def flush_to_zero() -> bool:
    """Whether the CPU flushes denormal numbers to zero (torch.set_flush_denormal has no getter)."""
    return bool((_denormal * np.float32(1.0))[0] == 0.0)


def _read(fn: Any) -> Any:
    """A flag's value, or the error reading it (a mix of the legacy and new precision APIs raises)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - an unreadable flag is itself a change
        return f"<unreadable: {type(e).__name__}>"


def precision_flags() -> dict[str, Any]:
    """Global switches that trade precision for speed (and would also change the reference)."""
    m = torch.backends.cuda.matmul
    flags = {
        "cuda.matmul.allow_tf32": _read(lambda: m.allow_tf32),
        "cudnn.allow_tf32": _read(lambda: torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": _read(torch.get_float32_matmul_precision),
        "cuda.matmul.allow_fp16_reduced_precision_reduction": _read(lambda: m.allow_fp16_reduced_precision_reduction),
        "cuda.matmul.allow_bf16_reduced_precision_reduction": _read(lambda: m.allow_bf16_reduced_precision_reduction),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "default_dtype": str(torch.get_default_dtype()),
        "cpu.flush_denormal": flush_to_zero(),
    }
    for backend, op in _FP32_PRECISION:
        flags[f"{backend}.{op}.fp32_precision"] = _read(lambda: torch._C._get_fp32_precision_getter(backend, op))
    for dev in ("cpu", "cuda"):
        flags[f"autocast.{dev}"] = _read(lambda: (torch.is_autocast_enabled(dev), str(torch.get_autocast_dtype(dev))))
    return flags


def _restore_precision(flags: dict[str, Any]) -> None:
    """Set back each switch that differs (only those: some setters have side effects, e.g. imports)."""
    now = precision_flags()
    if now == flags:
        return
    # The legacy switches first (they write through to the fp32 precision API), then whatever of
    # the new API still differs, generic before specific.
    m = torch.backends.cuda.matmul
    if now["cuda.matmul.allow_tf32"] != flags["cuda.matmul.allow_tf32"]:
        m.allow_tf32 = flags["cuda.matmul.allow_tf32"]
    if now["cudnn.allow_tf32"] != flags["cudnn.allow_tf32"]:
        torch.backends.cudnn.allow_tf32 = flags["cudnn.allow_tf32"]
    if now["float32_matmul_precision"] != flags["float32_matmul_precision"]:
        torch.set_float32_matmul_precision(flags["float32_matmul_precision"])
    now = precision_flags()
    for backend, op in _FP32_PRECISION:
        key = f"{backend}.{op}.fp32_precision"
        value = flags.get(key)
        if now.get(key) != value and isinstance(value, str) and not value.startswith("<"):
            torch._C._set_fp32_precision_setter(backend, op, value)
    for name in ("allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction"):
        if now[f"cuda.matmul.{name}"] != flags[f"cuda.matmul.{name}"]:
            setattr(m, name, flags[f"cuda.matmul.{name}"])
    if now["deterministic_algorithms"] != flags["deterministic_algorithms"]:
        torch.use_deterministic_algorithms(flags["deterministic_algorithms"])
    if now["cpu.flush_denormal"] != flags["cpu.flush_denormal"]:
        torch.set_flush_denormal(flags["cpu.flush_denormal"])
    if now["default_dtype"] != flags["default_dtype"]:
        torch.set_default_dtype(getattr(torch, flags["default_dtype"].replace("torch.", "")))
    for dev in ("cpu", "cuda"):
        if now[f"autocast.{dev}"] != flags[f"autocast.{dev}"]:
            enabled, dtype = flags[f"autocast.{dev}"]
            torch.set_autocast_enabled(dev, enabled)
            torch.set_autocast_dtype(dev, getattr(torch, dtype.replace("torch.", "")))
