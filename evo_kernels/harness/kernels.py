"""What one call runs, as torch.profiler sees it: the kernels (or, on the CPU, the operators) and how
many times each runs per call. Two models with the same list compute the same way: a candidate that
is the compile baseline under another name, or the reference itself, is recognised as that baseline
and never reported as a win over it.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import torch

CALLS = 3  # calls profiled; counts are per call
# Hash-like words (compiled-graph keys) and dynamo's frame/compile counters ("Torch-Compiled Region:
# 2/0") differ between otherwise identical compilations.
_HASH = re.compile(r"\b[0-9a-z]{24,}\b|\b\d+/\d+\b")


def profile(fn: Callable[[], Any], backend: Any) -> Any:
    """torch.profiler's events over CALLS calls of `fn` (after one untimed call)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as run_profiler
    activities = [ProfilerActivity.CPU] + ([] if backend.host_clock else [ProfilerActivity.CUDA])
    fn()
    backend.synchronize()
    with torch.no_grad(), run_profiler(activities=activities) as prof:
        for _ in range(CALLS):
            fn()
        backend.synchronize()
    return prof.key_averages()


def kernel_counts(events: Any, backend: Any) -> dict[str, float]:
    """Each device kernel (each operator on the CPU) and how often it runs per call."""
    timed = "self_cpu_time_total" if backend.host_clock else "self_device_time_total"
    out: dict[str, float] = {}
    for e in events:
        if getattr(e, timed, 0.0) <= 0 and not backend.host_clock:
            continue
        name = _HASH.sub("#", e.key)
        out[name] = out.get(name, 0.0) + e.count / CALLS
    return out


def top(events: Any, backend: Any, n: int) -> list[dict[str, Any]]:
    """The `n` most expensive kernels by device time per call (CPU time on the CPU)."""
    timed = "self_cpu_time_total" if backend.host_clock else "self_device_time_total"
    rows = sorted(events, key=lambda e: getattr(e, timed, 0.0), reverse=True)[:n]
    return [{"name": e.key[:120], "ms_per_call": getattr(e, timed, 0.0) / 1000 / CALLS, "calls_per_call": e.count / CALLS}
            for e in rows if getattr(e, timed, 0.0) > 0]


def same(a: dict[str, float], b: dict[str, float]) -> bool:
    """The same kernels, each as often per call."""
    return bool(a) and a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-6 for k in a)
