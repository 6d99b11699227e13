"""The judge: the sandbox process that holds the reference, the float64 oracle and the baselines, and
never imports candidate code.

It times the baselines (eager twice, torch.compile) under the run's precision switches; for each
verification trial it runs the reference as run and the oracle, then judges what the candidate's
process sends back (outputs, inputs after the call, buffers after a training-mode call), mapped from
that process's memory without a copy: structure, kinds, aliasing, inputs left unchanged, NaN and
infinities where the reference has them, the accuracy contract against the oracle (contract.py),
running statistics, outputs that follow the inputs, and outputs that stay as they were when the
module is called again. Patching torch, the harness or `nn.init` in the candidate's process cannot
change any of it: none of it runs there.
"""
from __future__ import annotations

import copy
import gc
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import Config, from_dict
from ..model.problem import Problem, load_problem
from . import contract, kernels, precision, timing, transfer, trials
from .audit import flop_time_ms, flops_by_family, roofline_ms, speed_of_light_ms, tf32_by_family
from .checks import (Reject, check_follows_inputs, check_not_aliased, check_not_stale, pair_leaves,
                     compare_tensor, degeneracy_notes, flatten, inputs_unchanged, name_constant, near_input,
                     passthrough, same_non_finite, sample_of, tolerance)


def _float64(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.to(torch.float64)
    return x


class _Float64Default:
    """Tensors the oracle's forward creates (torch.zeros(n), torch.full(...)) default to float64."""

    def __enter__(self) -> None:
        self.before = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)

    def __exit__(self, *exc: Any) -> None:
        torch.set_default_dtype(self.before)


def fingerprint(t: torch.Tensor) -> int:
    """A checksum of a tensor's bytes, chunk by chunk (no full-size temporary of a contiguous tensor)."""
    flat = t.detach().reshape(-1)
    total = 0
    step = 1 << 22
    for a in range(0, flat.numel(), step):
        raw = flat[a:a + step].contiguous().view(torch.uint8).to(torch.int64)
        weights = torch.arange(1, raw.numel() + 1, device=raw.device, dtype=torch.int64) % 65521 + 1
        total = (total * 1000003 + int((raw * weights).sum())) % (1 << 61)
    return total


@dataclass
class _Case:
    """One candidate's verification in progress."""

    problem: Problem
    cfg: Config
    reference: nn.Module
    oracle: nn.Module | None
    oracle_device: str
    trials: list[trials.Trial]
    idx_seed: int
    constructed_training: bool = True  # the mode the reference is built in (timing's as_constructed)
    pristine: dict[str, torch.Tensor] = field(default_factory=dict)  # the reference's state as built
    inputs: list[Any] = field(default_factory=list)  # the current trial's, as the reference saw them
    ref_out: Any = None
    oracle_out: Any = None
    ref_buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    oracle_buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    changed_buffers: list[str] = field(default_factory=list)
    before_buffers: dict[str, torch.Tensor] = field(default_factory=dict)  # before the current trial's call
    held: list[tuple[str, torch.Tensor, int]] = field(default_factory=list)  # last trial's outputs, mapped
    fingerprints: set[int] = field(default_factory=set)  # of every earlier trial's outputs
    standard_samples: list[torch.Tensor | None] = field(default_factory=list)  # the reference's, standard inputs
    ref_samples: list[torch.Tensor | None] = field(default_factory=list)
    cand_samples: list[torch.Tensor | None] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)  # modes of trials passed so far
    worst: dict[str, contract.Errors] = field(default_factory=dict)  # "candidate", "baseline"
    notes: list[str] = field(default_factory=list)


class Judge:
    def __init__(self, device: str, backend: Any) -> None:
        self.device = device
        self.backend = backend
        self.problems: dict[str, Problem] = {}
        self.info: Any = None
        self.case: _Case | None = None
        self.timing_models: dict[Any, dict[str, Any]] = {}  # per problem: the baselines' models, kept for rounds

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "describe":
            return {"ok": True, "info": self.describe().to_dict()}
        if op == "baselines":
            return self.baselines(msg)
        if op == "time_baseline":
            return self.time_baseline(msg)
        try:
            if op == "begin":
                return self.begin(msg)
            if op == "reference":
                return self.run_reference(msg)
            if op == "compare":
                return self.compare(msg)
            if op == "timed":
                return self.check_timed(msg)
        except Reject as r:
            return {"status": r.status, "reason": r.reason}
        if op == "end":
            return {"ok": True, **self.end()}
        return {"ok": False, "error": f"unknown op {op!r}"}

    # -- the device, the problem, the baselines ------------------------------------------------------
    def describe(self) -> Any:
        if self.info is None:
            self.info = timing.measure_ceilings(self.backend, self.backend.describe())
        return self.info

    def problem(self, path: str) -> Problem:
        if path not in self.problems:
            self.problems[path] = load_problem(path)
        return self.problems[path]

    def _config(self, msg: dict[str, Any]) -> Config:
        cfg = from_dict(msg.get("config") or {})
        precision.apply(precision.run_flags(cfg.precision, cfg.baseline_flags))
        if self.backend.kind == "cpu" and cfg.timing.cpu_threads > 0:
            torch.set_num_threads(cfg.timing.cpu_threads)
        return cfg

    def baselines(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Eager (twice: the noise of the measurement) and torch.compile (the fastest of its
        measurement's timing.repeats parts), under the run's switches, and the problem's speed-of-light
        bound. Under `precision: strict`, also both under PyTorch's default switches, so that a
        strict-only win is never read as a deployable one."""
        from torch.utils.flop_counter import FlopCounterMode
        cfg = self._config(msg)
        problem = self.problem(msg["problem"])
        rng = random.Random(secrets.randbits(64))
        model = timing.in_mode(problem.make_model(problem.Model, rng.getrandbits(31), self.device), cfg.timing.mode)
        inputs = problem.make_inputs(rng.getrandbits(31), self.device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            result = model(*inputs)
        weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
        bytes_read = weights + sum(x.numel() * x.element_size() for x in inputs if isinstance(x, torch.Tensor))
        results = result if isinstance(result, (tuple, list)) else [result]
        bytes_written = sum(y.numel() * y.element_size() for y in results if isinstance(y, torch.Tensor))
        del result, results
        info = self.describe()
        # The products' time at the fastest unit the switches the baselines run under admit.
        half = any(t.dtype in (torch.float16, torch.bfloat16) for t in list(model.parameters()) + list(inputs)
                   if isinstance(t, torch.Tensor))
        tf32 = tf32_by_family(precision.read_switches())
        flop_ms, units = flop_time_ms(flops_by_family(counter.get_flop_counts().get("Global", {})), info, tf32, half)
        floor = speed_of_light_ms(bytes_read, info.bandwidth_gbs, flop_ms, cfg.verify.allow_reduced_precision)
        bound = roofline_ms(bytes_read + bytes_written, info.bandwidth_gbs, flop_ms)
        out: dict[str, Any] = {"ok": True, "floor_ms": floor, "bound_ms": bound, "bound_units": units,
                               "bytes_read": bytes_read, "bytes_written": bytes_written,
                               "flops": counter.get_total_flops(), "device_info": info.to_dict(),
                               "precision": cfg.precision, "flags": precision.precision_flags(),
                               "mode": "train" if model.training else "eval",
                               "peak_memory": 0}
        del inputs
        names = ["eager", "eager_repeat"] + [b for b in cfg.baselines if b != "eager"]
        out.update(self._time_baselines(model, problem, cfg, rng, names))
        if cfg.precision == "strict":  # the same baselines as users run them, for the tables
            precision.apply(precision.run_flags("as_run", cfg.baseline_flags))
            try:
                model = timing.in_mode(problem.make_model(problem.Model, rng.getrandbits(31), self.device),
                                       cfg.timing.mode)
                defaults = self._time_baselines(model, problem, cfg, rng, [b for b in cfg.baselines])
            finally:
                precision.apply(precision.run_flags(cfg.precision, cfg.baseline_flags))
            defaults.pop("kernels", None)
            out.update({f"default_{k}": v for k, v in defaults.items()})
            self.timing_models.pop(problem.path, None)  # rounds run under the run's own switches
        out["peak_memory"] = self.backend.max_memory()
        self.backend.release_memory()  # the candidate's process needs the device next
        return out

    def _time_baselines(self, model: nn.Module, problem: Problem, cfg: Config, rng: random.Random,
                        names: list[str]) -> dict[str, Any]:
        """Each baseline's timing, and what one call of it runs (its kernels, under `kernels`)."""
        out: dict[str, Any] = {"kernels": {}}
        compiled = None
        inputs = problem.make_inputs(rng.getrandbits(31), self.device)
        for name in names:
            try:
                if name == "compile" and compiled is None:
                    compiled = torch.compile(model)
                runnable = compiled if name == "compile" else model
                # eager's two timings are each a full measurement (their difference is the noise);
                # compile, like a candidate, is measured in timing.repeats parts, the fastest kept
                eager = name.startswith("eager")
                how = cfg.timing if eager else timing.part_config(cfg.timing)
                times = [timing.time_model(runnable, problem, how, rng, self.backend)[0].to_dict()
                         for _ in range(1 if eager else cfg.timing.repeats)]
                out[name] = dict(min(times, key=lambda t: t["median_ms"]),
                                 attempts_ms=[t["median_ms"] for t in times])
            except Exception as e:  # noqa: BLE001 - a failing compile baseline is reported, not fatal
                out[name] = {"error": f"{type(e).__name__}: {str(e)[:1000]}"}
        # Profiled after all timings: the profiler's tracing must not sit between the two eager
        # measurements whose difference is the noise floor.
        for name in names:
            if name.endswith("_repeat") or "error" in out[name]:
                continue
            runnable = compiled if name == "compile" else model
            out["kernels"][name] = kernels.kernel_counts(kernels.profile(lambda: runnable(*inputs), self.backend),
                                                         self.backend)
        self.timing_models[problem.path] = {"eager": model, "compile": compiled}
        return out

    def time_baseline(self, msg: dict[str, Any]) -> dict[str, Any]:
        """One short round of one baseline (confirmation: rounds interleaved with the candidate's), on
        the models the baselines were timed with (compiled once)."""
        cfg = self._config(msg)
        problem = self.problem(msg["problem"])
        rng = random.Random(secrets.randbits(64))
        models = self.timing_models.get(problem.path)
        if models is None:
            model = timing.in_mode(problem.make_model(problem.Model, rng.getrandbits(31), self.device), cfg.timing.mode)
            models = self.timing_models[problem.path] = {"eager": model, "compile": None}
        if msg["which"] == "compile" and models["compile"] is None:
            models["compile"] = torch.compile(models["eager"])
        t, _ = timing.time_model(models[msg["which"]], problem, cfg.timing, rng, self.backend)
        return {"ok": True, "timing": t.to_dict()}

    # -- one candidate's verification --------------------------------------------------------------
    def begin(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Build the reference as run and the oracle for a candidate's trials."""
        self.end()
        cfg = self._config(msg)
        problem = self.problem(msg["problem"])
        self.backend.reset_peak_memory()
        reference = problem.make_model(problem.Model, int(msg["init_seed"]), self.device)
        oracle, where, note = self._oracle(reference)
        try:
            widened = trials.allowed_inputs(problem.module)
        except ValueError as e:
            raise Reject("crash", f"crash: {problem.path}: {e}") from None
        plan = trials.plan(cfg.verify.trials, random.Random(int(msg["plan_seed"])), cfg.verify.modes, widened)
        self.case = _Case(problem, cfg, reference, oracle, where, plan, int(msg["idx_seed"]),
                          constructed_training=reference.training,
                          pristine={k: v.detach().clone() for k, v in reference.state_dict().items()})
        if note:
            self.case.notes.append(note)
        return {"ok": True, "notes": list(self.case.notes), "trials": [t.to_dict() for t in plan]}

    def _oracle(self, reference: nn.Module) -> tuple[nn.Module | None, str, str]:
        """A float64 copy of the reference; where its first run fails (an op without a float64 kernel
        on the device) `run_reference` moves it to the CPU, then gives up on it."""
        try:
            oracle = copy.deepcopy(reference).to(torch.float64)
        except Exception as e:  # noqa: BLE001 - a model that cannot be copied: no oracle
            return None, "", f"oracle: the reference could not be copied to float64 ({type(e).__name__}: {e})"
        return oracle, self.device, ""

    def run_reference(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The reference as run, and the oracle, on one trial's inputs. A trial on widened inputs where
        the reference's output is not finite falls back to get_inputs()'s own distribution."""
        case = self._case()
        trial = trials.Trial.from_dict(msg["trial"])
        if trial.weights is not None:
            trials.fresh_weights(case.reference, trial.weights, case.pristine)
            if case.oracle is not None:
                _copy_state(case.reference, case.oracle)
        notes = []
        ref_out = self._run(case, trial)
        if trial.inputs != "standard" and not _all_finite(ref_out):
            notes.append(f"{trial.describe()}: the reference's output is not finite on {trial.inputs} inputs; "
                         "this trial used get_inputs()'s own distribution")
            trial = trials.Trial(trial.index, trial.seed, trial.mode, trial.grad, trial.weights, "standard")
            if case.changed_buffers:  # put the running statistics back before running again
                _restore_buffers(case.reference, case.before_buffers)
            ref_out = None
            ref_out = self._run(case, trial)
        case.ref_out = ref_out
        case.oracle_out = self._run_oracle(case, trial)
        case.notes.extend(notes)
        sizes = [t.numel() * t.element_size() for t in flatten(ref_out) if isinstance(t, torch.Tensor)]
        return {"ok": True, "trial": trial.to_dict(), "out_bytes": sizes, "notes": notes}

    def _run(self, case: _Case, trial: trials.Trial) -> Any:
        # The last run's inputs and outputs go first: one set of each is alive at a time (a problem
        # with 13 GB of inputs and outputs must fit beside its float64 oracle).
        case.inputs, case.ref_out, case.oracle_out = [], None, None
        model = case.reference
        model.train(trial.mode == "train")
        case.before_buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
        case.inputs = trials.make_inputs(case.problem, trial, self.device)
        with torch.set_grad_enabled(trial.grad):
            out = model(*case.inputs)
        self.backend.synchronize()
        out = _detached(out)
        now = dict(model.named_buffers())
        case.changed_buffers = [k for k, v in case.before_buffers.items()
                                if k in now and not inputs_unchanged([v], [now[k]])]
        case.ref_buffers = {k: now[k].detach() for k in case.changed_buffers}
        return out

    def _run_oracle(self, case: _Case, trial: trials.Trial) -> Any:
        if case.oracle is None:
            return None
        for _ in range(2):
            try:
                device = case.oracle_device
                case.oracle.to(device).train(trial.mode == "train")
                inputs = [_float64(x).to(device) if isinstance(x, torch.Tensor) else x for x in case.inputs]
                with _Float64Default(), torch.set_grad_enabled(False):
                    out = case.oracle(*inputs)
                now = dict(case.oracle.named_buffers())
                case.oracle_buffers = {k: now[k].detach() for k in case.changed_buffers if k in now}
                return _detached(out)
            except Exception as e:  # noqa: BLE001 - no float64 kernel here: the CPU, then no oracle
                if case.oracle_device != "cpu":
                    case.notes.append(f"oracle: float64 failed on {case.oracle_device} ({type(e).__name__}: "
                                      f"{str(e)[:200]}); it runs on the CPU")
                    case.oracle_device = "cpu"
                    continue
                case.notes.append(f"oracle: float64 failed on the CPU too ({type(e).__name__}: {str(e)[:200]}); "
                                  "outputs are compared with the fp32 reference at the strict tolerance")
                case.oracle = None
        return None

    def compare(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Judge one trial's candidate outputs (and inputs, buffers) against the reference and oracle."""
        case = self._case()
        trial = trials.Trial.from_dict(msg["trial"])
        where = trial.describe()
        sent = transfer.unpack(msg["payload"])
        out, used, buffers = sent["outputs"], sent["inputs"], sent.get("buffers") or {}
        self._check_lifetime(case)
        if not inputs_unchanged(case.inputs, used):
            raise Reject("rejected", f"input_mutated: {where}: ModelNew changed its inputs in place")
        protected = [t for t in flatten(used) if isinstance(t, torch.Tensor)]
        which = passthrough(out, case.ref_out, case.inputs)
        if which is not None:
            raise Reject("incorrect", f"input_passthrough: {where}: ModelNew returned input {which} unchanged "
                                      "where the reference's output differs from it")
        # Each output's checksum, once: against earlier trials' now, against this one's at the next call.
        leaves = [t for t in flatten(out) if isinstance(t, torch.Tensor)]
        prints = [fingerprint(t) for t in leaves]
        self._check_not_repeated(case, leaves, prints, where)
        try:
            errors = self._compare_outputs(case, out, protected, where)
            self._compare_buffers(case, buffers, where)
        except Reject as r:
            raise self._name_mode(case, trial, r) from None
        rng = random.Random(case.idx_seed)
        case.ref_samples.append(sample_of(case.ref_out, rng))
        case.cand_samples.append(sample_of(out, random.Random(case.idx_seed)))
        if len(case.ref_samples) > 1:
            check_not_stale(case.ref_samples, case.cand_samples, case.cfg.verify, case.problem, where)
            check_follows_inputs(case.ref_samples, case.cand_samples, case.cfg.verify, case.problem, where)
        notes = []
        if trial.index == 0:
            near = near_input(case.ref_out, case.inputs, case.cfg.verify, case.problem)
            if near is not None:
                notes.append(f"degenerate: the reference output is within tolerance of input {near}: returning "
                             "the input would pass a tolerance test (input_passthrough rejects it)")
        # Keep this trial's outputs mapped: the next call must not change them.
        case.held = [(f"{where}: output[{i}]", t, f) for i, (t, f) in enumerate(zip(leaves, prints))]
        case.fingerprints.update(f for _, t, f in case.held if t.numel() > 1)
        if trial.inputs == "standard":
            case.standard_samples.append(case.ref_samples[-1])
        case.passed.append(trial.mode)
        del sent, used
        case.ref_out = case.oracle_out = None
        case.inputs = []
        gc.collect()
        self.backend.release_memory()  # the oracle's temporaries: the candidate's process runs next
        return {"ok": True, "notes": notes, "errors": {k: v.to_dict() for k, v in errors.items()}}

    def _check_not_repeated(self, case: _Case, leaves: list[torch.Tensor], prints: list[int], where: str) -> None:
        """An output with the bytes of the last trial's, for other inputs, is a cached result."""
        before = case.fingerprints
        if not before or case.ref_samples and case.ref_samples[-1] is not None \
                and torch.equal(case.ref_samples[-1], sample_of(case.ref_out, random.Random(case.idx_seed))):
            return  # the reference's output did not change either: nothing to tell
        for t, f in zip(leaves, prints):
            if t.numel() > 1 and f in before:
                raise Reject("incorrect", f"constant_output: {where}: ModelNew returned the same values as for the "
                                          "last trial's different inputs (a cached or constant result)")

    def _check_lifetime(self, case: _Case) -> None:
        """The last trial's outputs, as the candidate returned them, after this call: unchanged."""
        for where, t, before in case.held:
            if fingerprint(t) != before:
                raise Reject("incorrect", f"output_lifetime: {where} changed when ModelNew was called again "
                                          "(it returns a buffer it reuses: a caller keeping the output sees it change)")
        case.held = []

    def _name_mode(self, case: _Case, trial: trials.Trial, r: Reject) -> Reject:
        """A failure in one mode after a trial in the other passed is a train/eval divergence."""
        if r.reason.startswith(("accuracy:", "mismatch:", "buffer_mismatch:", "nan_mismatch:")):
            other = "train" if trial.mode == "eval" else "eval"
            if other in case.passed and trial.mode not in case.passed:
                mode = "eval mode" if trial.mode == "eval" else "training mode"
                return Reject(r.status, f"mode_mismatch: wrong in {mode}, right in the other: {r.reason}")
        return r

    def _compare_outputs(self, case: _Case, out: Any, protected: list[torch.Tensor],
                         where: str) -> dict[str, contract.Errors]:
        pairs = pair_leaves(case.ref_out, out, where)
        tensor_refs = [t for t in flatten(case.ref_out) if isinstance(t, torch.Tensor)]
        oracles = [t for t in flatten(case.oracle_out) if isinstance(t, torch.Tensor)] \
            if case.oracle_out is not None else [None] * len(tensor_refs)
        worst: dict[str, contract.Errors] = {}
        for (at, r, x), o in zip(pairs, oracles):
            check_not_aliased(x, protected, at)
            errors = self._judge_tensor(case, r, o, x, at)
            for k, v in errors.items():
                worst[k] = worst.get(k, contract.Errors()).worst(v)
        return worst

    def _judge_tensor(self, case: _Case, r: torch.Tensor, o: torch.Tensor | None, x: torch.Tensor,
                      at: str) -> dict[str, contract.Errors]:
        v = case.cfg.verify
        atol, rtol = tolerance(r.dtype, v, case.problem)
        same_non_finite(r, x, at)
        errors: dict[str, contract.Errors] = {}
        if o is not None:
            errors = _errors(case, r, o, x)
            for side, e in errors.items():  # kept for the report, also when this trial fails
                case.worst[side] = case.worst.get(side, contract.Errors()).worst(e)
        if case.cfg.precision == "strict" or o is None:
            try:
                compare_tensor(r, x, atol, rtol, at)
            except Reject as e:
                raise name_constant(e, r, x, at) from None
            return errors
        why = _violation(case, r.dtype, errors)
        if why is not None:
            raise _weak(name_constant(Reject("incorrect", f"accuracy: {at}: {why}"), r, x, at), r, v.degenerate_rel_change)
        return errors

    def _compare_buffers(self, case: _Case, buffers: dict[str, torch.Tensor], where: str) -> None:
        """In training mode: each buffer the reference updated (running statistics), updated alike."""
        v = case.cfg.verify
        for name in case.changed_buffers:
            ref = case.ref_buffers[name]
            got = buffers.get(name)
            at = f"{where}: buffer {name}"
            if got is None:
                raise Reject("incorrect", f"buffer_mismatch: {at}: the reference updates it in this mode and "
                                          "ModelNew has no buffer of that name")
            if tuple(got.shape) != tuple(ref.shape) or got.dtype != ref.dtype:
                raise Reject("incorrect", f"buffer_mismatch: {at}: shape {tuple(got.shape)} {got.dtype}, "
                                          f"expected {tuple(ref.shape)} {ref.dtype}")
            o = case.oracle_buffers.get(name)
            try:
                if o is None or case.cfg.precision == "strict" or not ref.is_floating_point():
                    atol, rtol = tolerance(ref.dtype, v, case.problem)
                    compare_tensor(ref, got, atol, rtol, at)
                    continue
                why = _violation(case, ref.dtype, _errors(case, ref, o, got))
                if why is not None:
                    raise Reject("incorrect", f"{at}: {why}")
            except Reject as r:
                raise Reject("incorrect", "buffer_mismatch: " + r.reason.split(": ", 1)[-1]
                             if r.reason.startswith("mismatch:") else "buffer_mismatch: " + r.reason) from None

    def check_timed(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Timed outputs the candidate's process kept (their repetitions chosen after each call): each
        against the reference for that repetition's inputs, under the contract."""
        case = self._case()
        sent = transfer.unpack(msg["payload"])
        mode = case.cfg.timing.mode
        if mode == "as_constructed":
            mode = "train" if case.constructed_training else "eval"
        for seed, how, out, what in sent:
            trial = trials.Trial(-1, int(seed), mode, False, None, how)
            case.ref_out = self._run(case, trial)
            case.oracle_out = self._run_oracle(case, trial)
            try:
                self._compare_outputs(case, out, [], f"{what} (seed {seed})")
            except Reject as r:
                if timing.SAME_INPUTS in what:
                    raise Reject(r.status if r.status != "ok" else "incorrect",
                                 f"nondeterministic: calls on the same inputs gave different outputs and one "
                                 f"breaks the contract (a race in a kernel, or state kept between calls): "
                                 + r.reason) from None
                raise Reject(r.status if r.status != "ok" else "incorrect",
                             "stale_output: a timed repetition's output is not the reference's for that "
                             "repetition's inputs (a cached or stale result, or work not finished when the call "
                             "returned): " + r.reason) from None
        return {"ok": True}

    def end(self) -> dict[str, Any]:
        """Release the evaluation: its models, inputs and the candidate's mapped outputs."""
        summary: dict[str, Any] = {}
        if self.case is not None:
            summary = {"oracle_error": {k: v.to_dict() for k, v in self.case.worst.items()},
                       "notes": degeneracy_notes(self.case.standard_samples, self.case.cfg.verify, self.case.problem)
                       + self.case.notes, "peak_memory": self.backend.max_memory()}
        self.case = None
        gc.collect()
        self.backend.release_memory()
        return summary

    def _case(self) -> _Case:
        if self.case is None:
            raise Reject("crash", "crash: the judge has no evaluation in progress (it was restarted)")
        return self.case


def _errors(case: _Case, ref: torch.Tensor, oracle: torch.Tensor, got: torch.Tensor) -> dict[str, contract.Errors]:
    """The candidate's and eager's errors against the oracle, at the same positions."""
    return contract.compare(got, ref, oracle, case.idx_seed)


def _violation(case: _Case, dtype: torch.dtype, errors: dict[str, contract.Errors]) -> str | None:
    """Why the candidate's errors break the contract (outputs and running statistics alike), or None."""
    v = case.cfg.verify
    floors = dict(v.floors)
    if v.allow_reduced_precision and "bfloat16" in floors:
        # TF32 rounds a product's inputs to a 10-bit mantissa; summed over a long K its elementwise
        # error reaches 1e-3 and more (2e-3 at K = 4096 on an H200): bfloat16's floor.
        floors["float32"] = max(floors.get("float32", 0.0), floors["bfloat16"])
    return contract.verdict(errors, contract.floor_for(dtype, floors), v.accuracy_factor)


def _weak(r: Reject, ref: torch.Tensor, threshold: float) -> Reject:
    """A constant output rejected on a problem whose reference output barely varies: say the problem is
    weak (a constant would pass a looser test)."""
    if not r.reason.startswith("constant_output") or not ref.is_floating_point() or ref.numel() < 2:
        return r
    spread = float(ref.double().std() / ref.double().abs().mean().clamp_min(1e-300))
    if spread < threshold:
        return Reject(r.status, f"{r.reason}; the problem is weak: degenerate: the reference output barely varies "
                                f"(relative spread {spread:.2g})")
    return r


def _detached(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, (list, tuple)):
        return type(out)(_detached(x) for x in out)
    return out


def _all_finite(out: Any) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in flatten(out)
               if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()))


@torch.no_grad()
def _copy_state(src: nn.Module, dst: nn.Module) -> None:
    """dst's parameters and buffers set from src's (cast to dst's dtypes)."""
    theirs = dict(nn.Module.state_dict(dst, keep_vars=True))
    for k, v in nn.Module.state_dict(src).items():
        if k in theirs:
            theirs[k].data.copy_(v.to(theirs[k].dtype))


@torch.no_grad()
def _restore_buffers(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    for k, v in model.named_buffers():
        if k in saved:
            v.copy_(saved[k])
