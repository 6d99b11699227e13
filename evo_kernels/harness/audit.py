"""Plausibility of a measured time: the speed-of-light bound of a problem on a device, and the audit
that holds implausible speedups instead of recording them."""
from __future__ import annotations

import math

from ..config import VerifyConfig


def speed_of_light_ms(bytes_read: int, flops: float, bandwidth_gbs: float, peak_tflops: float,
                      allow_reduced_precision: bool) -> float:
    """A lower bound on any correct implementation's time.

    Reads: every input and weight comes from device memory (inputs are freshly written and the cache
    flushed before each timed call). Flops: counted for the reference's operators, against the
    measured fp32 rate divided by 4, because fast algorithms (Winograd convolutions) do fewer
    multiplications than the direct count; dropped when reduced precision is allowed.
    """
    return roofline_ms(bytes_read, 0.0 if allow_reduced_precision else flops, bandwidth_gbs, 4 * peak_tflops)


def roofline_ms(bytes_moved: int, flops: float, bandwidth_gbs: float, peak_tflops: float) -> float:
    """The roofline the tables quote (tighter than the audit's floor): every input, weight and output
    moved once at the measured bandwidth, and the reference's flops at the measured fp32 matrix
    rate. A kernel on tensor cores (the split-precision tf32x3 GEMM) can go past the flops part: its
    share is then above 100%."""
    t_bytes = bytes_moved / (bandwidth_gbs * 1e9) * 1e3 if bandwidth_gbs > 0 else 0.0
    t_flops = flops / (peak_tflops * 1e12) * 1e3 if peak_tflops > 0 else 0.0
    return max(t_bytes, t_flops)


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
