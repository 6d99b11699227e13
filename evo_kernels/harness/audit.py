"""Plausibility of a measured time: the speed-of-light bound of a problem on a device, and the audit
that holds implausible speedups instead of recording them."""
from __future__ import annotations

import math
from typing import Any

from ..config import VerifyConfig
from .backends.base import DeviceInfo


def flops_by_family(counts: dict[Any, int]) -> dict[str, float]:
    """A flop counter's per-operator counts split by the switch that governs their precision:
    convolutions (cuDNN's TF32 flag) and every other product (the matmul flags)."""
    out = {"conv": 0.0, "matmul": 0.0}
    for op, n in counts.items():
        out["conv" if "convolution" in str(op) else "matmul"] += float(n)
    return out


def tf32_by_family(switches: dict[str, Any]) -> dict[str, bool]:
    """Whether each family of products may run in TF32 under `switches` (precision.read_switches):
    convolutions by cuDNN's flag, the rest by the matmul flag or a float32 matmul precision below
    "highest"."""
    return {"conv": bool(switches["cudnn_allow_tf32"]),
            "matmul": bool(switches["matmul_allow_tf32"]) or switches["float32_matmul_precision"] != "highest"}


def matrix_rate(info: DeviceInfo, tf32: bool, half: bool) -> tuple[str, float]:
    """The fastest unit a product may run on without losing accuracy the run's switches keep, and
    its measured rate (TFLOP/s): fp32 FMA always; tf32x3 (three TF32 products per fp32 one, as
    accurate as fp32) where TF32 was measured; TF32 itself where the switch for the product is on;
    16-bit tensor cores where the problem's data is 16-bit."""
    rates = {"fp32": info.peak_tflops_fp32}
    if info.peak_tflops_tf32 > 0:
        rates["tf32x3"] = info.peak_tflops_tf32 / 3
        if tf32:
            rates["tf32"] = info.peak_tflops_tf32
    if half and info.peak_tflops_fp16 > 0:
        rates["fp16"] = info.peak_tflops_fp16
    unit = max(rates, key=lambda u: rates[u])
    return unit, rates[unit]


def flop_time_ms(families: dict[str, float], info: DeviceInfo, tf32: dict[str, bool], half: bool
                 ) -> tuple[float, dict[str, str]]:
    """The time the counted products take at the fastest admissible unit of each family (`tf32`:
    whether each family's TF32 switch is on), and the unit each family is bounded by."""
    total, units = 0.0, {}
    for family, flops in families.items():
        if flops <= 0:
            continue
        unit, rate = matrix_rate(info, tf32.get(family, False), half)
        units[family] = unit
        total += flops / (rate * 1e12) * 1e3 if rate > 0 else 0.0
    return total, units


def speed_of_light_ms(bytes_read: int, bandwidth_gbs: float, flop_ms: float, allow_reduced_precision: bool) -> float:
    """A lower bound on any correct implementation's time.

    Reads: every input and weight comes from device memory (inputs are freshly written and the cache
    flushed before each timed call). Flops: the counted products at the fastest admissible unit
    (`flop_time_ms`) divided by 4, because fast algorithms (Winograd convolutions) do fewer
    multiplications than the direct count; dropped when reduced precision is allowed.
    """
    return roofline_ms(bytes_read, bandwidth_gbs, 0.0 if allow_reduced_precision else flop_ms / 4)


def roofline_ms(bytes_moved: int, bandwidth_gbs: float, flop_ms: float) -> float:
    """The roofline the tables quote (tighter than the audit's floor): every input, weight and output
    moved once at the measured bandwidth, or the counted products at the fastest unit the run's
    precision admits (`flop_time_ms`), whichever takes longer."""
    t_bytes = bytes_moved / (bandwidth_gbs * 1e9) * 1e3 if bandwidth_gbs > 0 else 0.0
    return max(t_bytes, flop_ms)


def audit(candidate_ms: float, best_baseline_ms: float, floor_ms: float, cfg: VerifyConfig) -> str | None:
    """A reason to hold a result for audit, or None. Speedups are claims; implausible ones are held."""
    speedup = best_baseline_ms / candidate_ms if candidate_ms > 0 else math.inf
    if speedup > cfg.audit_max_speedup:
        return (f"audit: speedup {speedup:.1f}x over the faster baseline exceeds the ceiling of "
                f"{cfg.audit_max_speedup:g}x; held for audit, not recorded as a win")
    if floor_ms > 0 and candidate_ms < 0.8 * floor_ms:
        return (f"audit: {candidate_ms:.4g} ms is below the speed-of-light bound of {floor_ms:.4g} ms for "
                "this problem on this device (bytes that must be read / measured bandwidth, flops / "
                "measured peak); held for audit")
    return None
