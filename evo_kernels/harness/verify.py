"""The correctness protocol (runs inside the sandbox worker).

Reference and candidate are built under the same seed, the candidate gets the reference's weights
where names and shapes match, and both run on separate clones of fresh inputs in several trials.
Run order alternates and freed device memory is poisoned before each candidate call, so a result
left behind by the reference can never be handed back as the candidate's. Every rejection is a
`Reject` whose reason starts with a tag naming what failed (e.g. `mismatch:`, `input_mutated:`); the
checks on outputs and inputs are in outputs.py.
"""
from __future__ import annotations

import gc
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from . import integrity
from .backends.base import Backend
from ..config import VerifyConfig
from .checks import (Reject, _clone, _copy_, _detach, _passthrough, _near_input, _sample, _state_dict, _Tensor,
                      _vars, check_follows_inputs, check_inputs, check_not_stale, check_plain, clone_inputs,
                      compare_outputs, degeneracy_notes, flatten, inputs_unchanged, poison_like, _degeneracy_suffix)
from ..model.problem import Problem


@dataclass
class VerifyResult:
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    notes: list[str] = field(default_factory=list)
    reference: nn.Module | None = None
    candidate: nn.Module | None = None
    guard: "ReferenceGuard | None" = None
    held: list[Any] = field(default_factory=list)  # the last candidate outputs, released after timing


def load_weights(reference: nn.Module, candidate: nn.Module) -> int:
    """Copy the reference's parameters and buffers into the candidate where names and shapes match."""
    target = _state_dict(candidate)
    n = 0
    with torch.no_grad():
        for name, value in _state_dict(reference).items():
            t = target.get(name) if type(target) in (dict, OrderedDict) else None
            if type(t) is _Tensor and t.shape == value.shape:
                _copy_(t, value)
                n += 1
    return n


class ReferenceGuard:
    """The reference model as the harness last left it: its weights, module tree and hooks.

    `update()` after each reference call (a reference may change its own buffers, e.g. BatchNorm's
    running statistics); `changes()` after candidate code: a candidate that reached the reference
    (through introspection) and changed it would change what it is compared against.
    """

    def __init__(self, reference: nn.Module) -> None:
        self.reference = reference
        self.update()

    def update(self) -> None:
        self.weights = {k: _clone(_detach(v)) for k, v in _state_dict(self.reference).items()}
        self.tree = self._tree()

    def _tree(self) -> list[tuple[str, type, dict[str, int], dict[str, int]]]:
        out = []
        for name, m in nn.Module.named_modules(self.reference):
            attrs = _vars(m)
            out.append((name, type(m), {k: id(v) for k, v in attrs.items()},
                        {k: len(v) for k, v in attrs.items() if type(v) in (dict, OrderedDict)}))
        return out

    def changes(self) -> list[str]:
        if self._tree() != self.tree:
            return ["the reference model's modules, attributes or hooks"]
        now = _state_dict(self.reference)
        return [f"the reference model's {k}" for k, v in self.weights.items()
                if k not in now or not inputs_unchanged([v], [now[k]])]  # NaN-aware (uninitialised buffers)


def check_integrity(allow_reduced_precision: bool, guard: ReferenceGuard | None = None,
                    dispatcher: bool = True) -> None:
    """After candidate code ran: no thread of it still running, nothing the harness relies on
    replaced (functions, classes, modes, hooks, kernels, the reference) and no precision switch
    flipped. Tampering leaves the process untrusted: such a rejection is fatal to the worker."""
    threads = integrity.candidate_threads()
    if threads:
        raise Reject("rejected", f"hidden_work: candidate code still runs after the call returned "
                                 f"({'; '.join(threads[:3])}): work the timer would not see", fatal=True)
    patched = integrity.changed(dispatcher) + (guard.changes() if guard is not None else [])
    if patched:
        integrity.restore()
        raise Reject("rejected", f"patched_harness: candidate replaced or changed {', '.join(patched[:5])}"
                                 + (f" and {len(patched) - 5} more" if len(patched) > 5 else ""), fatal=True)
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
    """Run the correctness protocol; raises `Reject` on the first failure.

    The cyclic garbage collector runs only inside candidate calls (a candidate's finalizer then runs
    in its own time, never in the middle of a comparison), and candidate outputs are released just
    before the next candidate call for the same reason.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _verify(problem, candidate_cls, backend, cfg, rng)
    finally:
        if gc_was_enabled:
            gc.enable()


def _verify(problem: Problem, candidate_cls: type, backend: Backend, cfg: VerifyConfig,
            rng: random.Random) -> VerifyResult:
    device = backend.device
    result = VerifyResult()
    init_seed = rng.getrandbits(31)
    reference = problem.make_model(problem.Model, init_seed, device)
    candidate = call_candidate(lambda: problem.make_model(candidate_cls, init_seed, device), backend,
                               "constructing ModelNew")
    integrity.reseed()
    check_integrity(cfg.allow_reduced_precision)
    if not isinstance(candidate, nn.Module):
        raise Reject("compile_error", "ModelNew(...) did not return an nn.Module")
    load_weights(reference, candidate)
    guard = ReferenceGuard(reference)
    result.reference, result.candidate, result.guard = reference, candidate, guard

    idx_seed = rng.getrandbits(31)
    ref_samples: list[torch.Tensor | None] = []
    cand_samples: list[torch.Tensor | None] = []
    released = result.held  # the previous trial's candidate outputs, released before its next call
    for trial in range(cfg.trials):
        where = f"trial {trial}"
        inputs = problem.make_inputs(rng.getrandbits(31), device)
        integrity.reseed()
        pristine = clone_inputs(inputs)
        ref_in, cand_in = clone_inputs(inputs), clone_inputs(inputs)
        del inputs

        def run_reference() -> Any:
            check_integrity(cfg.allow_reduced_precision, guard, dispatcher=False)
            with torch.no_grad(), integrity.snapshot_precision():
                out = reference(*ref_in)
            backend.synchronize()
            guard.update()
            return out

        def run_candidate(after: Any = None) -> Any:
            released.clear()
            backend.poison_free_memory()
            if after is not None:  # the reference ran first: its freed blocks of the output's size
                poison_like(flatten(after))
            gc.enable()
            try:
                with torch.no_grad():
                    out = call_candidate(lambda: candidate(*cand_in), backend, "ModelNew.forward")
            finally:
                gc.disable()
            # The dispatcher's tables take ~0.1 s to read: after construction, the last trial and timing.
            check_integrity(cfg.allow_reduced_precision, guard, dispatcher=trial == cfg.trials - 1)
            return out

        if trial % 2 == 0:  # alternate: reference first, then candidate first
            ref_out = run_reference()
            out = run_candidate(after=ref_out)
        else:
            out = run_candidate()
            ref_out = run_reference()
        released.append(out)
        check_inputs(pristine, cand_in, where)
        check_plain(out)

        ref_samples.append(_sample(ref_out, random.Random(idx_seed)))
        cand_samples.append(_sample(out, random.Random(idx_seed)))
        if trial > 0:
            check_not_stale(ref_samples, cand_samples, cfg, problem, where)
        protected = [t for t in flatten(cand_in) + flatten(ref_in) + flatten(ref_out) if isinstance(t, torch.Tensor)]
        max_abs, max_rel = compare_outputs(ref_out, out, cfg, problem, protected)
        which = _passthrough(out, ref_out, pristine)
        if which is not None:
            raise Reject("incorrect", f"input_passthrough: {where}: ModelNew returned input {which} unchanged "
                                      "where the reference's output differs from it (within tolerance only)"
                                      + _degeneracy_suffix(ref_samples, cfg, problem))
        if trial > 0:
            check_follows_inputs(ref_samples, cand_samples, cfg, problem, where)
        near = _near_input(ref_out, pristine, cfg, problem) if trial == 0 else None
        if near is not None:
            result.notes.append(f"degenerate: the reference output is within tolerance of input {near}: "
                                "returning the input would pass a tolerance test (input_passthrough rejects it)")
        result.max_abs_error = max(result.max_abs_error, max_abs)
        result.max_rel_error = max(result.max_rel_error, max_rel)
        del out, ref_out, protected

    result.notes.extend(degeneracy_notes(ref_samples, cfg, problem))
    return result
