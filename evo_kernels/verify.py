"""The correctness protocol (runs inside the sandbox worker).

Reference and candidate are built under the same seed, the candidate gets the reference's weights
where names and shapes match, and both run on separate clones of fresh inputs in several trials.
Run order alternates and freed device memory is poisoned before each candidate call, so a result
left behind by the reference can never be handed back as the candidate's. Every rejection is a
`Reject` whose reason starts with a tag naming what failed (e.g. `mismatch:`, `input_mutated:`).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from . import integrity
from .backends.base import Backend
from .config import VerifyConfig
from .problem import Problem

_Tensor = torch.Tensor  # the exact type outputs must have; taken before candidate code runs
_SAMPLE = 4096  # output elements kept per trial to tell whether outputs change with inputs


class Reject(Exception):
    """The candidate fails: `status` is an evaluation status, `reason` starts with a check tag."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class VerifyResult:
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    notes: list[str] = field(default_factory=list)
    reference: nn.Module | None = None
    candidate: nn.Module | None = None


def flatten(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in flatten(item)]
    return [x]


def clone_inputs(inputs: list[Any]) -> list[Any]:
    return [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]


def tolerance(dtype: torch.dtype, cfg: VerifyConfig, problem: Problem | None = None) -> tuple[float, float]:
    """(atol, rtol) for a dtype: the problem file's TOLERANCES override the config's."""
    name = str(dtype).replace("torch.", "")
    table = dict(cfg.tolerances)
    if problem is not None:
        table.update(getattr(problem.module, "TOLERANCES", {}) or {})
    atol, rtol = table.get(name, table.get("float32", (1e-4, 1e-4)))
    return float(atol), float(rtol)


def _storage_span(t: torch.Tensor) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.data_ptr() + s.nbytes()


def _overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.device != b.device:
        return False
    a0, a1 = _storage_span(a)
    b0, b1 = _storage_span(b)
    return a1 > a0 and b1 > b0 and a0 < b1 and b0 < a1


def check_tensor_kind(out: Any, ref: torch.Tensor, where: str) -> None:
    """Outputs must be plain, strided torch.Tensors with real storage, like the reference's."""
    if not isinstance(out, _Tensor):
        raise Reject("incorrect", f"structure_mismatch: {where}: expected a tensor, got {type(out).__name__}")
    if type(out) is not _Tensor:
        raise Reject("rejected", f"not_a_tensor: {where}: output is a {type(out).__module__}."
                                 f"{type(out).__name__}, not a plain torch.Tensor (subclasses can fake equality)")
    if out.layout != torch.strided or out.is_meta:
        raise Reject("rejected", f"not_a_tensor: {where}: output has layout {out.layout}"
                                 f"{' on meta' if out.is_meta else ''}; expected a dense strided tensor")
    if out.device != ref.device:
        raise Reject("incorrect", f"device_mismatch: {where}: output on {out.device}, reference on {ref.device}")
    if tuple(out.shape) != tuple(ref.shape):
        raise Reject("incorrect", f"shape_mismatch: {where}: shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
    if out.dtype != ref.dtype:
        raise Reject("incorrect", f"dtype_mismatch: {where}: dtype {out.dtype}, expected {ref.dtype}")
    try:
        start, end = _storage_span(out)
    except Exception as e:  # noqa: BLE001 - fake or functional wrappers have no real storage
        raise Reject("rejected", f"not_a_tensor: {where}: output has no real storage ({e})") from None
    if out.numel() > 0:
        extent = out.storage_offset() + sum((n - 1) * s for n, s in zip(out.shape, out.stride())) + 1
        if extent * out.element_size() > end - start:
            raise Reject("rejected", f"not_a_tensor: {where}: output's storage is smaller than its view")


def compare_tensor(ref: torch.Tensor, out: torch.Tensor, atol: float, rtol: float, where: str) -> tuple[float, float]:
    """Values: NaN and inf exactly where the reference has them; elementwise and whole-tensor error.

    Returns (max abs error, relative error norm ||out - ref|| / ||ref||).
    """
    if not (ref.is_floating_point() or ref.is_complex()):
        if not torch.equal(out, ref):
            n = int((out != ref).sum())
            raise Reject("incorrect", f"mismatch: {where}: {n} of {ref.numel()} elements differ (exact dtype {ref.dtype})")
        return 0.0, 0.0
    ref_nan, out_nan = torch.isnan(ref), torch.isnan(out)
    if not torch.equal(ref_nan, out_nan):
        extra = int((out_nan & ~ref_nan).sum())
        missing = int((ref_nan & ~out_nan).sum())
        raise Reject("incorrect", f"nan_mismatch: {where}: {extra} elements NaN where the reference is not "
                                  f"(unwritten or uninitialised output reads as NaN here), {missing} NaN in the "
                                  "reference but not in the output")
    ref_inf = torch.isinf(ref)
    if not torch.equal(ref_inf, torch.isinf(out)) or not torch.equal(ref[ref_inf], out[ref_inf]):
        raise Reject("incorrect", f"mismatch: {where}: infinities differ in position or sign")
    finite = ~(ref_nan | ref_inf)
    r = ref[finite].to(torch.float64 if ref.dtype == torch.float64 else torch.float32)
    o = out[finite].to(r.dtype)
    if r.numel() == 0:
        return 0.0, 0.0
    diff = (o - r).abs()
    max_abs = float(diff.max())
    ref_norm = float(torch.linalg.vector_norm(r))
    diff_norm = float(torch.linalg.vector_norm(diff))
    rel_norm = diff_norm / ref_norm if ref_norm > 0 else (0.0 if diff_norm == 0 else math.inf)
    bad = diff > atol + rtol * r.abs()
    if bool(bad.any()):
        n_bad = int(bad.sum())
        raise Reject("incorrect", f"mismatch: {where}: {n_bad} of {r.numel()} elements outside "
                                  f"atol={atol:g} + rtol={rtol:g}*|ref|; max abs error {max_abs:.3g}, "
                                  f"relative error norm {rel_norm:.3g}")
    if rel_norm > rtol:
        raise Reject("incorrect", f"mismatch: {where}: relative error norm {rel_norm:.3g} > rtol={rtol:g} "
                                  f"although every element is within atol={atol:g} (the outputs are small "
                                  "against the tolerance, so constant or zero outputs would pass elementwise)")
    return max_abs, rel_norm


def compare_outputs(ref_out: Any, out: Any, cfg: VerifyConfig, problem: Problem | None,
                    protected: list[torch.Tensor]) -> tuple[float, float]:
    """Check structure, kinds, aliasing and values of a candidate's outputs against the reference's."""
    refs, outs = flatten(ref_out), flatten(out)
    if len(refs) != len(outs) or isinstance(ref_out, (list, tuple)) != isinstance(out, (list, tuple)):
        raise Reject("incorrect", f"structure_mismatch: output has {len(outs)} leaves "
                                  f"({type(out).__name__}), the reference {len(refs)} ({type(ref_out).__name__})")
    max_abs = max_rel = 0.0
    for i, (r, o) in enumerate(zip(refs, outs)):
        where = f"output[{i}]" if len(refs) > 1 else "output"
        if not isinstance(r, torch.Tensor):
            if o != r:
                raise Reject("incorrect", f"mismatch: {where}: {o!r} != {r!r}")
            continue
        check_tensor_kind(o, r, where)
        for p in protected:
            if isinstance(p, torch.Tensor) and o.numel() > 0 and _overlaps(o, p):
                raise Reject("rejected", f"aliasing: {where} shares memory with an input or a reference "
                                         "output; outputs must be new tensors")
        atol, rtol = tolerance(r.dtype, cfg, problem)
        a, rel = compare_tensor(r, o, atol, rtol, where)
        max_abs, max_rel = max(max_abs, a), max(max_rel, rel)
    return max_abs, max_rel


def inputs_unchanged(pristine: list[Any], used: list[Any]) -> bool:
    for a, b in zip(pristine, used):
        if isinstance(a, torch.Tensor):
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            same = torch.equal(a, b) or bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all()) \
                if a.is_floating_point() else torch.equal(a, b)
            if not same:
                return False
        elif a != b:
            return False
    return True


def _sample(out: Any, idx_rng: random.Random) -> torch.Tensor | None:
    """A fixed subset of the first output tensor's elements, as float64 on the CPU."""
    first = next((t for t in flatten(out) if isinstance(t, torch.Tensor) and t.numel() > 0), None)
    if first is None:
        return None
    flat = first.detach().reshape(-1)
    n = min(_SAMPLE, flat.numel())
    idx = torch.tensor(sorted(idx_rng.sample(range(flat.numel()), n)) if flat.numel() > n else range(n),
                       device=flat.device)
    return flat[idx].to("cpu", torch.float64)


def load_weights(reference: nn.Module, candidate: nn.Module) -> int:
    """Copy the reference's parameters and buffers into the candidate where names and shapes match."""
    target = candidate.state_dict()
    n = 0
    with torch.no_grad():
        for name, value in reference.state_dict().items():
            if name in target and target[name].shape == value.shape:
                target[name].copy_(value)
                n += 1
    return n


def check_integrity(allow_reduced_precision: bool) -> None:
    """After candidate code ran: nothing the harness relies on was replaced; no precision switch flipped."""
    patched = integrity.changed()
    if patched:
        integrity.restore()
        raise Reject("rejected", f"patched_harness: candidate replaced {', '.join(patched[:5])}")
    flips = integrity.precision_changes()
    if flips and not allow_reduced_precision:
        integrity.restore()
        raise Reject("rejected", f"precision: candidate changed global precision switches ({'; '.join(flips)}); "
                                 "reduced precision is not allowed by this run's policy")


def call_candidate(fn: Callable[[], Any], backend: Backend, what: str) -> Any:
    """Run candidate code; its exceptions become `runtime_error` with the error text."""
    try:
        out = fn()
        backend.synchronize()  # asynchronous device errors surface here
        return out
    except Reject:
        raise
    except Exception as e:  # noqa: BLE001 - anything the candidate raises is its failure
        raise Reject("runtime_error", f"{what} raised {type(e).__name__}: {str(e)[:2000]}") from None


def verify(problem: Problem, candidate_cls: type, backend: Backend, cfg: VerifyConfig,
           rng: random.Random) -> VerifyResult:
    """Run the correctness protocol; raises `Reject` on the first failure."""
    device = backend.device
    result = VerifyResult()
    init_seed = rng.getrandbits(31)
    reference = problem.make_model(problem.Model, init_seed, device)
    candidate = call_candidate(lambda: problem.make_model(candidate_cls, init_seed, device), backend,
                               "constructing ModelNew")
    check_integrity(cfg.allow_reduced_precision)
    if not isinstance(candidate, nn.Module):
        raise Reject("compile_error", "ModelNew(...) did not return an nn.Module")
    load_weights(reference, candidate)
    result.reference, result.candidate = reference, candidate

    idx_seed = rng.getrandbits(31)
    ref_samples: list[torch.Tensor | None] = []
    cand_samples: list[torch.Tensor | None] = []
    for trial in range(cfg.trials):
        inputs = problem.make_inputs(rng.getrandbits(31), device)
        pristine = clone_inputs(inputs)
        ref_in, cand_in = clone_inputs(inputs), clone_inputs(inputs)
        del inputs

        def run_reference() -> Any:
            with torch.no_grad():
                out = reference(*ref_in)
            backend.synchronize()
            return out

        def run_candidate() -> Any:
            backend.poison_free_memory()
            with torch.no_grad():
                return call_candidate(lambda: candidate(*cand_in), backend, "ModelNew.forward")

        if trial % 2 == 0:  # alternate: reference first, then candidate first
            ref_out = run_reference()
            out = run_candidate()
        else:
            out = run_candidate()
            ref_out = run_reference()
        check_integrity(cfg.allow_reduced_precision)
        if not inputs_unchanged(pristine, cand_in):
            raise Reject("rejected", f"input_mutated: trial {trial}: ModelNew changed its inputs in place")

        ref_samples.append(_sample(ref_out, random.Random(idx_seed)))
        cand_samples.append(_sample(out, random.Random(idx_seed)) if type(out) in (_Tensor, tuple, list) else None)
        if trial > 0 and cand_samples[0] is not None and cand_samples[-1] is not None \
                and cand_samples[-1].shape == cand_samples[0].shape \
                and torch.equal(cand_samples[-1], cand_samples[0]) \
                and not torch.equal(ref_samples[-1], ref_samples[0]):
            raise Reject("incorrect", f"constant_output: trial {trial}: ModelNew returned the same values for "
                                      "different inputs while the reference's changed")
        protected = [t for t in flatten(cand_in) + flatten(ref_in) + flatten(ref_out) if isinstance(t, torch.Tensor)]
        max_abs, max_rel = compare_outputs(ref_out, out, cfg, problem, protected)
        result.max_abs_error = max(result.max_abs_error, max_abs)
        result.max_rel_error = max(result.max_rel_error, max_rel)
        del out, ref_out, protected

    result.notes.extend(degeneracy_notes(ref_samples, cfg, problem))
    return result


def degeneracy_notes(samples: list[torch.Tensor | None], cfg: VerifyConfig, problem: Problem) -> list[str]:
    """Say when the problem itself is weak: outputs that barely depend on the inputs, or sit below atol."""
    notes = []
    s = [x for x in samples if x is not None]
    if len(s) < 2:
        return notes
    base = float(torch.linalg.vector_norm(s[0]))
    change = max(float(torch.linalg.vector_norm(x - s[0])) for x in s[1:])
    rel = change / base if base > 0 else (math.inf if change > 0 else 0.0)
    if rel < cfg.degenerate_rel_change:
        notes.append(f"degenerate: the reference output changes by {rel:.2g} (relative) across trials: "
                     "it barely depends on the inputs, so a constant output could pass")
    atol, _ = tolerance(torch.float32, cfg, problem)
    if max(float(x.abs().max()) for x in s) <= atol:
        notes.append(f"degenerate: every sampled reference output is within atol={atol:g} of zero; "
                     "only the relative-error-norm check separates a right answer from zeros")
    return notes


def speed_of_light_ms(bytes_read: int, flops: float, bandwidth_gbs: float, peak_tflops: float,
                      allow_reduced_precision: bool) -> float:
    """A lower bound on any correct implementation's time.

    Reads: every input and weight comes from device memory (inputs are freshly written and the cache
    flushed before each timed call). Flops: counted for the reference's operators, against the
    measured fp32 rate divided by 4, because fast algorithms (Winograd convolutions) do fewer
    multiplications than the direct count; dropped when reduced precision is allowed.
    """
    t_bytes = bytes_read / (bandwidth_gbs * 1e9) * 1e3 if bandwidth_gbs > 0 else 0.0
    t_flops = 0.0
    if peak_tflops > 0 and not allow_reduced_precision:
        t_flops = flops / (4 * peak_tflops * 1e12) * 1e3
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
