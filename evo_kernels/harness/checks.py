"""Checks on what a candidate returns and what it does to its inputs (used inside the sandbox
worker by the correctness protocol, verify.py, and by the timed-output checks): tolerances and
comparison against the reference, output types, aliasing, mutated inputs, pass-through and
near-input outputs, outputs that do not follow the inputs across trials. Each failure is a `Reject`
whose reason starts with a tag naming the check.
"""
from __future__ import annotations

import math
import random
from typing import Any

import torch
from torch import nn

from ..config import VerifyConfig
from ..model.problem import Problem

_Tensor = torch.Tensor  # the exact type outputs must have; taken before candidate code runs
# Unbound methods, also taken before candidate code runs: a candidate can shadow a method on one
# tensor instance (`out.untyped_storage = ...`), never these. The harness calls them on anything a
# candidate could have touched.
_numel = torch.Tensor.numel
_untyped_storage = torch.Tensor.untyped_storage
_storage_offset = torch.Tensor.storage_offset
_stride = torch.Tensor.stride
_element_size = torch.Tensor.element_size
_clone = torch.Tensor.clone
_detach = torch.Tensor.detach
_copy_ = torch.Tensor.copy_
_contiguous = torch.Tensor.contiguous
_view = torch.Tensor.view
_equal = torch.equal
_storage_ptr = torch.UntypedStorage.data_ptr
_storage_nbytes = torch.UntypedStorage.nbytes
_state_dict = nn.Module.state_dict
_vars = vars
_PLAIN = (int, float, bool, str, type(None))  # non-tensor output leaves that cannot run code
_SAMPLE = 4096  # output elements kept per trial to tell whether outputs change with inputs
# A candidate's outputs must follow the reference's across trials: the change in its sampled outputs
# may differ from the change in the reference's by at most this fraction of the latter.
_FOLLOW = 0.5


class Reject(Exception):
    """The candidate fails: `status` is an evaluation status, `reason` starts with a check tag.
    `fatal`: the worker's process state cannot be trusted afterwards (replace the worker)."""

    def __init__(self, status: str, reason: str, fatal: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.fatal = fatal


def flatten(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in flatten(item)]
    return [x]


def tolerance(dtype: torch.dtype, cfg: VerifyConfig, problem: Problem | None = None) -> tuple[float, float]:
    """(atol, rtol) for a dtype: the problem file's TOLERANCES override the config's. Where the run
    allows reduced precision, fp32 outputs get float16's tolerance (TF32 keeps fp16's 10-bit mantissa)."""
    name = str(dtype).replace("torch.", "")
    table = dict(cfg.tolerances)
    if problem is not None:
        table.update(getattr(problem.module, "TOLERANCES", {}) or {})
    atol, rtol = table.get(name, table.get("float32", (1e-4, 1e-4)))
    if cfg.allow_reduced_precision and name == "float32" and "float16" in table:
        atol, rtol = max(atol, table["float16"][0]), max(rtol, table["float16"][1])
    return float(atol), float(rtol)


def _storage_span(t: torch.Tensor) -> tuple[int, int]:
    s = _untyped_storage(t)
    return _storage_ptr(s), _storage_ptr(s) + _storage_nbytes(s)


def _overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.device != b.device:
        return False
    a0, a1 = _storage_span(a)
    b0, b1 = _storage_span(b)
    return a1 > a0 and b1 > b0 and a0 < b1 and b0 < a1


def check_plain(out: Any, where: str = "output") -> None:
    """Outputs may only be plain tensors, tuples, lists and numbers: nothing whose methods the
    candidate wrote (subclasses, containers or objects that claim equality or run code when the
    harness iterates, compares or copies them), and no tensor carrying instance attributes."""
    kind = type(out)
    if kind is _Tensor:
        if _vars(out):
            raise Reject("rejected", f"not_a_tensor: {where}: output tensor carries instance attributes "
                                     f"({', '.join(sorted(_vars(out))[:3])}) that would shadow tensor methods")
        return
    if kind is tuple or kind is list:
        for i, item in enumerate(out):
            check_plain(item, f"{where}[{i}]")
        return
    if kind in _PLAIN:
        return
    what = "a torch.Tensor subclass" if issubclass(kind, torch.Tensor) else "an object"
    raise Reject("rejected", f"not_a_tensor: {where}: output is {what} of type {kind.__module__}.{kind.__qualname__}"
                             ", not a plain torch.Tensor (subclasses and objects can fake equality)")


def check_tensor_kind(out: Any, ref: torch.Tensor, where: str) -> None:
    """Outputs must be plain, strided torch.Tensors with real storage, like the reference's."""
    check_plain(out, where)
    if type(out) is not _Tensor:
        raise Reject("incorrect", f"structure_mismatch: {where}: expected a tensor, got {type(out).__name__}")
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
    if _numel(out) > 0:
        extent = _storage_offset(out) + sum((n - 1) * s for n, s in zip(out.shape, _stride(out))) + 1
        if extent * _element_size(out) > end - start:
            raise Reject("rejected", f"not_a_tensor: {where}: output's storage is smaller than its view")


def _is_constant(t: torch.Tensor) -> bool:
    return t.numel() > 1 and bool((t == t.reshape(-1)[0]).all())


def compare_tensor(ref: torch.Tensor, out: torch.Tensor, atol: float, rtol: float, where: str) -> tuple[float, float]:
    """Values: NaN and inf exactly where the reference has them; elementwise and whole-tensor error.

    Returns (max abs error, relative error norm ||out - ref|| / ||ref||).
    """
    return _compare_values(ref, out, atol, rtol, where)


def name_constant(r: Reject, ref: torch.Tensor, out: torch.Tensor, where: str) -> Reject:
    """A failing output that is one value everywhere while the reference's vary: say so."""
    if r.reason.startswith(("mismatch:", "nan_mismatch:", "accuracy:")) and _is_constant(out) and not _is_constant(ref):
        return Reject("incorrect", f"constant_output: {where}: every element is {float(out.reshape(-1)[0]):g} "
                                   f"while the reference's vary ({r.reason})")
    return r


_CHUNK = 1 << 22  # elements per chunk of a comparison: no full-size temporaries of a large output


def _chunks(ref: torch.Tensor, out: torch.Tensor):
    """(reference chunk, output chunk) pairs of both flattened."""
    rf, of = ref.reshape(-1), out.detach().reshape(-1)
    for a in range(0, rf.numel(), _CHUNK):
        yield rf[a:a + _CHUNK], of[a:a + _CHUNK]


def same_non_finite(ref: torch.Tensor, out: torch.Tensor, where: str) -> None:
    """NaN exactly where the reference has NaN, and infinities of the same sign where it has them
    (counted on the device chunk by chunk, read once)."""
    if not (ref.is_floating_point() or ref.is_complex()):
        return
    counts = torch.zeros(3, dtype=torch.int64, device=ref.device)  # extra NaN, missing NaN, wrong infinities
    for rc, oc in _chunks(ref, out):
        rn, on = torch.isnan(rc), torch.isnan(oc)
        ri = torch.isinf(rc)
        counts += torch.stack([(on & ~rn).sum(), (rn & ~on).sum(),
                               (ri != torch.isinf(oc)).sum() + (ri & (rc != oc)).sum()])
    extra, missing, bad_inf = counts.tolist()
    if extra or missing:
        raise Reject("incorrect", f"nan_mismatch: {where}: {extra} elements NaN where the reference is not "
                                  f"(unwritten or uninitialised output reads as NaN here), {missing} NaN in the "
                                  "reference but not in the output")
    if bad_inf:
        raise Reject("incorrect", f"mismatch: {where}: infinities differ in position or sign")


def _compare_values(ref: torch.Tensor, out: torch.Tensor, atol: float, rtol: float, where: str) -> tuple[float, float]:
    if not (ref.is_floating_point() or ref.is_complex()):
        if not torch.equal(out, ref):
            n = int((out != ref).sum())
            raise Reject("incorrect", f"mismatch: {where}: {n} of {ref.numel()} elements differ (exact dtype {ref.dtype})")
        return 0.0, 0.0
    same_non_finite(ref, out, where)
    # Over the finite positions, chunk by chunk; the sums stay on the device until the end.
    wide = torch.float64 if ref.dtype == torch.float64 else torch.float32
    sums = torch.zeros(5, dtype=torch.float64, device=ref.device)  # max |d|, sum d^2, sum r^2, outside, finite
    for rc, oc in _chunks(ref, out):
        finite = torch.isfinite(rc)
        r = torch.where(finite, rc.to(wide), 0.0)
        d = torch.where(finite, (oc.to(wide) - r).abs(), 0.0)
        d64, r64 = d.double(), r.double()
        chunk = torch.stack([d64.max(), (d64 * d64).sum(), (r64 * r64).sum(),
                             (d > atol + rtol * r.abs()).sum().double(), finite.sum().double()])
        sums = torch.cat([torch.maximum(sums[:1], chunk[:1]), sums[1:] + chunk[1:]])
    max_abs, diff_sq, ref_sq, n_bad, count = sums.tolist()
    if count == 0:
        return 0.0, 0.0
    diff_norm, ref_norm = math.sqrt(diff_sq), math.sqrt(ref_sq)
    rel_norm = diff_norm / ref_norm if ref_norm > 0 else (0.0 if diff_norm == 0 else math.inf)
    if n_bad:
        raise Reject("incorrect", f"mismatch: {where}: {int(n_bad)} of {int(count)} elements outside "
                                  f"atol={atol:g} + rtol={rtol:g}*|ref|; max abs error {max_abs:.3g}, "
                                  f"relative error norm {rel_norm:.3g}")
    if rel_norm > rtol:
        raise Reject("incorrect", f"mismatch: {where}: relative error norm {rel_norm:.3g} > rtol={rtol:g} "
                                  f"although every element is within atol={atol:g} (the outputs are small "
                                  "against the tolerance, so constant or zero outputs would pass elementwise)")
    return max_abs, rel_norm


def pair_leaves(ref_out: Any, out: Any, where: str) -> list[tuple[str, Any, Any]]:
    """The reference's and the candidate's output leaves, paired: the same structure, plain values
    equal, tensors of the right kind, shape and dtype. (label, reference leaf, candidate leaf) for each
    tensor leaf."""
    check_plain(out)
    refs, outs = flatten(ref_out), flatten(out)
    if len(refs) != len(outs) or isinstance(ref_out, (list, tuple)) != isinstance(out, (list, tuple)):
        raise Reject("incorrect", f"structure_mismatch: output has {len(outs)} leaves "
                                  f"({type(out).__name__}), the reference {len(refs)} ({type(ref_out).__name__})")
    pairs = []
    for i, (r, o) in enumerate(zip(refs, outs)):
        at = f"{where}: output[{i}]" if len(refs) > 1 else f"{where}: output"
        if not isinstance(r, torch.Tensor):
            if type(o) is not type(r) or o != r:
                raise Reject("incorrect", f"mismatch: {at}: {o!r} != {r!r}")
            continue
        check_tensor_kind(o, r, at)
        pairs.append((at, r, o))
    return pairs


def check_not_aliased(out: torch.Tensor, protected: list[Any], where: str) -> None:
    for p in protected:
        if type(p) is _Tensor and _numel(out) > 0 and _overlaps(out, p):
            raise Reject("rejected", f"aliasing: {where} shares memory with an input or a reference "
                                     "output; outputs must be new tensors")


def inputs_unchanged(pristine: list[Any], used: list[Any]) -> bool:
    for a, b in zip(pristine, used):
        if isinstance(a, torch.Tensor):
            if type(b) is not _Tensor or a.shape != b.shape or a.dtype != b.dtype:
                return False
            same = torch.equal(a, b) or bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all()) \
                if a.is_floating_point() else torch.equal(a, b)
            if not same:
                return False
        elif a != b:
            return False
    return True


def check_inputs(pristine: list[Any], used: list[Any], where: str) -> None:
    """After a candidate call: its inputs hold their values and carry no attributes it added."""
    tagged = [i for i, t in enumerate(used) if type(t) is _Tensor and _vars(t)]
    if tagged:
        raise Reject("rejected", f"patched_harness: {where}: ModelNew set attributes on input tensor(s) "
                                 f"{tagged} (they would shadow the methods the harness calls on them)", fatal=True)
    if not inputs_unchanged(pristine, used):
        raise Reject("rejected", f"input_mutated: {where}: ModelNew changed its inputs in place")


def sample_of(out: Any, idx_rng: random.Random) -> torch.Tensor | None:
    """A fixed subset of the first output tensor's elements, as float64 on the CPU."""
    first = next((t for t in flatten(out) if isinstance(t, torch.Tensor) and _numel(t) > 0), None)
    if first is None:
        return None
    flat = _detach(first).reshape(-1)
    n = min(_SAMPLE, flat.numel())
    idx = torch.tensor(sorted(idx_rng.sample(range(flat.numel()), n)) if flat.numel() > n else range(n),
                       device=flat.device)
    return flat[idx].to("cpu", torch.float64)


def passthrough(out: Any, ref_out: Any, inputs: list[Any]) -> int | None:
    """Index of an input the candidate's first output equals exactly while the reference's does not."""
    o = next((t for t in flatten(out) if type(t) is _Tensor), None)
    r = next((t for t in flatten(ref_out) if isinstance(t, torch.Tensor)), None)
    if o is None or r is None:
        return None
    for i, x in enumerate(inputs):
        if type(x) is _Tensor and x.shape == o.shape and x.dtype == o.dtype and x.device == o.device \
                and torch.equal(o, x) and not (x.shape == r.shape and torch.equal(r, x)):
            return i
    return None


POISON_COPIES_UP_TO = 256 << 20  # bytes


def poison_sizes(sizes: list[int], device: Any) -> None:
    """Hand the allocator blocks of the given byte sizes (the reference's outputs, measured in the
    judge's process) back filled with 0xFF (NaN in float types), freed in reverse order of allocation
    so that the one it serves first is on top: `torch.empty` of an output's size then reads NaN, not
    a result the reference or an earlier call just freed. Complements Backend.poison_free_memory,
    which on CUDA fills every free block."""
    for n in sizes:
        # Four blocks of each size cover the allocator's recently freed ones. A large output gets one:
        # four would cost the device four times the output, and poison_free_memory fills every
        # block cached free before the call anyway.
        copies = 4 if n <= POISON_COPIES_UP_TO else 1
        held = [torch.empty(n, dtype=torch.uint8, device=device).fill_(0xFF) for _ in range(copies)] if n else []
        while held:
            held.pop()


def near_input(ref_out: Any, inputs: list[Any], cfg: VerifyConfig, problem: Problem | None) -> int | None:
    """Index of an input the reference's first output is within tolerance of (a near-identity problem)."""
    r = next((t for t in flatten(ref_out) if isinstance(t, torch.Tensor)), None)
    if r is None or not r.is_floating_point():
        return None
    atol, rtol = tolerance(r.dtype, cfg, problem)
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and x.shape == r.shape and x.dtype == r.dtype and x.device == r.device:
            try:
                compare_tensor(r, x, atol, rtol, "input")
                return i
            except Reject:
                continue
    return None


def check_not_stale(ref_samples: list[torch.Tensor | None], cand_samples: list[torch.Tensor | None],
                    cfg: VerifyConfig, problem: Problem | None, where: str) -> None:
    """The same sampled values as in trial 0 for different inputs: a cached or constant result."""
    c0, c1, r0, r1 = cand_samples[0], cand_samples[-1], ref_samples[0], ref_samples[-1]
    if c0 is not None and c1 is not None and r0 is not None and r1 is not None and c0.shape == c1.shape \
            and r0.shape == r1.shape and torch.equal(c0, c1) and not torch.equal(r0, r1):
        raise Reject("incorrect", f"constant_output: {where}: ModelNew returned the same values for different "
                                  "inputs while the reference's changed (a cached or constant result)"
                                  + _degeneracy_suffix(ref_samples, cfg, problem))


def check_follows_inputs(ref_samples: list[torch.Tensor | None], cand_samples: list[torch.Tensor | None],
                         cfg: VerifyConfig, problem: Problem | None, where: str) -> None:
    """The candidate's sampled outputs must change from trial 0 to this trial as the reference's do:
    a constant (or nearly constant) output passes a tolerance test on a problem whose outputs barely
    depend on the inputs, never this one."""
    r0, r1, c0, c1 = ref_samples[0], ref_samples[-1], cand_samples[0], cand_samples[-1]
    if any(x is None for x in (r0, r1, c0, c1)) or not (r0.shape == r1.shape == c0.shape == c1.shape):
        return
    ok = torch.isfinite(r0) & torch.isfinite(r1) & torch.isfinite(c0) & torch.isfinite(c1)
    d_ref = (r1 - r0)[ok]
    d_cand = (c1 - c0)[ok]
    change = float(torch.linalg.vector_norm(d_ref))
    if change == 0:
        return
    off = float(torch.linalg.vector_norm(d_cand - d_ref))
    if off > _FOLLOW * change:
        raise Reject("incorrect", f"constant_output: {where}: ModelNew's outputs do not follow its inputs: from "
                                  f"trial 0 to this one they changed unlike the reference's (off by {off / change:.2g} "
                                  "of the reference's change), although each is within tolerance"
                                  + _degeneracy_suffix(ref_samples, cfg, problem))


def _degeneracy_suffix(samples: list[torch.Tensor | None], cfg: VerifyConfig, problem: Problem | None) -> str:
    notes = degeneracy_notes(samples, cfg, problem)
    return f"; the problem is weak: {'; '.join(notes)}" if notes else ""


def degeneracy_notes(samples: list[torch.Tensor | None], cfg: VerifyConfig, problem: Problem | None) -> list[str]:
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


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors hold the same bits (NaNs included) in the same shape and dtype."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return bool(_equal(_view(_contiguous(a), torch.uint8), _view(_contiguous(b), torch.uint8)))
