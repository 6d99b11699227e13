"""The defendant: the sandbox process that imports candidate code and runs it, and judges nothing.

For each verification trial it builds the same inputs and weights as the judge (trials.py: from a
few numbers), runs ModelNew in the trial's mode, and hands the judge its outputs, its inputs after
the call and (in training mode) its buffers, as references into this process's memory. It also runs
the timing protocol (timing.py), keeping a sample of timed outputs, chosen after each call, for the
judge to check.

What the timing loop relies on here (input copies, events, synchronize, the clocks) was captured
before any candidate was imported; after every candidate call integrity.py checks that nothing the
harness relies on was replaced, that no thread of the candidate's still runs and that no precision
switch was flipped. Tampering is fatal: the reply stands and the process is replaced.
"""
from __future__ import annotations

import gc
import random
import secrets
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..config import Config, from_dict
from ..model.problem import Problem, import_file, load_problem
from . import integrity, kernels, precision, timing, transfer, trials, wgmma_hazards
from .checks import Reject, _copy_, _detach, _state_dict, _Tensor, _vars, check_plain, poison_sizes

# Device errors after which the CUDA context is unusable: the worker must be replaced.
FATAL_MARKERS = ("illegal memory access", "unspecified launch failure", "device-side assert",
                 "misaligned address", "illegal instruction", "CUDA error: an illegal",
                 "cudaErrorLaunchFailure", "context is destroyed", "uncorrectable ECC")


def load_weights(reference: nn.Module, candidate: nn.Module) -> int:
    """Copy the reference's parameters and buffers into the candidate where names and shapes match."""
    target = _state_dict(candidate, keep_vars=True)
    n = 0
    with torch.no_grad():
        for name, value in _state_dict(reference).items():
            t = target.get(name) if isinstance(target, dict) else None
            if isinstance(t, torch.Tensor) and type(t) in (_Tensor, nn.Parameter) and t.shape == value.shape:
                _copy_(_detach(t), value)
                n += 1
    return n


def check_integrity(allow_reduced_precision: bool, dispatcher: bool = True) -> None:
    """After candidate code ran: no thread of it still running, nothing the harness relies on
    replaced (functions, classes, modes, hooks, kernels) and no precision switch flipped. Tampering
    leaves the process untrusted: such a rejection is fatal to the worker."""
    threads = integrity.candidate_threads()
    if threads:
        raise Reject("rejected", f"hidden_work: candidate code still runs after the call returned "
                                 f"({'; '.join(threads[:3])}): work the timer would not see", fatal=True)
    patched = integrity.changed(dispatcher)
    if patched:
        integrity.restore()
        raise Reject("rejected", f"patched_harness: candidate replaced or changed {', '.join(patched[:5])}"
                                 + (f" and {len(patched) - 5} more" if len(patched) > 5 else ""), fatal=True)
    flips = integrity.precision_changes()
    if flips and not allow_reduced_precision:
        integrity.restore()
        raise Reject("rejected", f"precision: candidate changed global precision switches ({'; '.join(flips)}); "
                                 "reduced precision is not allowed by this run's policy")


def call_candidate(fn: Callable[[], Any], backend: Any, what: str) -> Any:
    """Run candidate code; its exceptions become `runtime_error` with the error text."""
    try:
        out = fn()
        backend.synchronize()  # asynchronous device errors surface here
        return out
    except Reject:
        raise
    except Exception as e:  # noqa: BLE001 - anything the candidate raises is its failure
        raise Reject("runtime_error", f"{what} raised {type(e).__name__}: {str(e)[:2000]}") from None


class Defendant:
    def __init__(self, device: str, backend: Any, workdir: Path) -> None:
        self.device = device
        self.backend = backend
        self.workdir = workdir
        self.problems: dict[str, Problem] = {}
        self.count = 0
        self.cfg: Config | None = None
        self.problem: Problem | None = None
        self.module_name: str | None = None
        self.module: Any = None  # the candidate's module (its Triton kernels, for the SASS check)
        self.candidate: nn.Module | None = None
        self.weights: nn.Module | None = None  # the reference, built here only as the source of weights
        self.prev: Any = None  # the last trial's outputs, kept as a caller would keep them
        self._events: Any = None  # the profiler's events of the last timed candidate
        self.pristine: dict[str, torch.Tensor] = {}  # the weights' source as built

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        reply = self._handle(msg)
        if not reply.get("fatal"):
            try:  # nothing this process queued runs on while the judge works (it is stopped then)
                self.backend.synchronize()
            except Exception as e:  # noqa: BLE001 - a poisoned context: replace the worker
                reply = {"status": "crash", "reason": f"crash: device error after the request ({str(e)[:300]})",
                         "fatal": True}
        return reply

    def _handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        try:
            if op == "load":
                return self.load(msg)
            if op == "trial":
                return self.trial(msg)
            if op == "time":
                return self.time(msg)
            if op == "profile":
                return self.profile(msg)
            if op == "screen":
                return self.screen(msg)
        except Reject as r:
            return self._failure(r.status, r.reason, r.fatal)
        except Exception as e:  # noqa: BLE001 - harness-side failure while handling candidate output
            return self._failure("runtime_error", f"{type(e).__name__}: {str(e)[:2000]}")
        if op == "unload":
            self.unload()
            return {"ok": True, "peak_memory": self.backend.max_memory()}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _config(self, msg: dict[str, Any]) -> Config:
        cfg = from_dict(msg.get("config") or {})
        precision.apply(precision.run_flags(cfg.precision, cfg.baseline_flags))
        integrity.expect_precision()  # the run's switches are what a candidate may not change
        if self.backend.kind == "cpu" and cfg.timing.cpu_threads > 0 and torch.get_num_threads() != cfg.timing.cpu_threads:
            integrity.set_num_threads(cfg.timing.cpu_threads)  # baselines and candidates alike
        return cfg

    def _problem(self, path: str) -> Problem:
        if path not in self.problems:
            self.problems[path] = load_problem(path)
            integrity.watch_module(self.problems[path].module)  # Model.forward, get_inputs, ...
        return self.problems[path]

    # -- a candidate ---------------------------------------------------------------------------------
    def load(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Import the candidate and build ModelNew, with the reference's weights where names match."""
        self.unload()
        self.cfg = cfg = self._config(msg)
        self.problem = problem = self._problem(msg["problem"])
        self.backend.reset_peak_memory()
        integrity.restore()  # whatever an earlier request left behind is not this candidate's doing
        module = self._import(msg["source"], msg.get("params") or {})
        check_integrity(cfg.verify.allow_reduced_precision, dispatcher=False)
        seed = int(msg["init_seed"])
        candidate = call_candidate(lambda: problem.make_model(module.ModelNew, seed, self.device), self.backend,
                                   "constructing ModelNew")
        integrity.reseed()
        check_integrity(cfg.verify.allow_reduced_precision)
        if not isinstance(candidate, nn.Module):
            raise Reject("compile_error", "ModelNew(...) did not return an nn.Module")
        self.weights = problem.make_model(problem.Model, seed, self.device)
        self.pristine = {k: v.detach().clone() for k, v in _state_dict(self.weights).items()}
        integrity.reseed()
        load_weights(self.weights, candidate)
        self.candidate = candidate
        return {"ok": True}

    def _import(self, source: str, params: dict[str, Any]) -> Any:
        self.count += 1
        path = self.workdir / f"candidate_{self.count}.py"
        path.write_text(source)
        integrity.set_candidate_files([str(path)])  # threads running this file's code are found
        try:
            module = import_file(path, "evo_candidate")
        except SyntaxError as e:
            raise Reject("compile_error", f"syntax error at line {e.lineno}: {e.msg}") from None
        except BaseException as e:  # noqa: BLE001 - SystemExit from candidate code included
            raise Reject("compile_error", f"import failed: {type(e).__name__}: {str(e)[:2000]}") from None
        self.module_name = module.__name__
        self.module = module
        for key, value in params.items():
            if not hasattr(module, key):
                raise Reject("compile_error", f"parameter {key!r} is not a module-level name of the candidate")
            setattr(module, key, value)
        if not isinstance(getattr(module, "ModelNew", None), type):
            raise Reject("compile_error", "the candidate defines no class ModelNew")
        return module

    def trial(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Run ModelNew on one trial; hand the judge its outputs, inputs and buffers."""
        cfg, problem, candidate = self._loaded()
        trial = trials.Trial.from_dict(msg["trial"])
        if trial.weights is not None:
            trials.fresh_weights(self.weights, trial.weights, self.pristine)
            load_weights(self.weights, candidate)
        call_candidate(lambda: candidate.train(trial.mode == "train"), self.backend, f"ModelNew.{trial.mode}()")
        self.backend.collect_shared()  # the last trial's tensors, which the judge has let go of
        inputs = trials.make_inputs(problem, trial, self.device)
        integrity.reseed()
        self.backend.poison_free_memory()
        poison_sizes(msg.get("out_bytes") or [], self.backend.device)
        gc.enable()
        try:
            with torch.set_grad_enabled(trial.grad):
                out = call_candidate(lambda: candidate(*inputs), self.backend, "ModelNew.forward")
        finally:
            gc.disable()
        check_integrity(cfg.verify.allow_reduced_precision, dispatcher=trial.index == cfg.verify.trials - 1)
        sass_notes = self._sass_check() if trial.index == cfg.verify.trials - 1 and cfg.verify.sass_check else []
        tagged = [i for i, t in enumerate(inputs) if type(t) is _Tensor and _vars(t)]
        if tagged:
            raise Reject("rejected", f"patched_harness: {trial.describe()}: ModelNew set attributes on input "
                                     f"tensor(s) {tagged} (they would shadow the methods the harness calls)", fatal=True)
        check_plain(out)
        buffers = {k: v for k, v in nn.Module.named_buffers(candidate)} if trial.mode == "train" else {}
        payload = transfer.pack({"outputs": out, "inputs": inputs, "buffers": buffers})
        self.prev = out  # held as a caller would hold it: the next call must not change it
        notes = sass_notes
        if cfg.verify.allow_reduced_precision and integrity.precision_changes():
            notes.append("reduced_precision: " + "; ".join(integrity.precision_changes()))
        return {"ok": True, "payload": payload, "notes": notes}

    def _sass_check(self) -> list[str]:
        """On Hopper, after the last trial (every trial's kernels compiled): a candidate kernel whose
        SASS overwrites the registers of matrix products still in flight is rejected (a race the
        trials and the repeated calls catch only now and then). Notes where it could not look."""
        if self.backend.kind != "cuda" or torch.cuda.get_device_capability(self.device)[0] != 9:
            return []
        try:
            hazard = wgmma_hazards.describe(self.module)
        except Exception as e:  # noqa: BLE001 - no disassembler here: the repeated calls still look
            return [f"sass_check: not run ({type(e).__name__}: {str(e)[:200]})"]
        if hazard:
            raise Reject("rejected", hazard)
        return []

    def time(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The timing protocol on ModelNew; the kept timed outputs go to the judge."""
        cfg, problem, candidate = self._loaded()
        # The request's timing settings (a confirmation round's are shorter than the load's).
        tcfg = from_dict(msg["config"]).timing if msg.get("config") else cfg.timing
        self.prev = None
        self.backend.collect_shared()
        timing.in_mode(candidate, tcfg.mode, self.weights)
        rng = random.Random(secrets.randbits(64))
        t, kept = timing.time_model(candidate, problem, tcfg, rng, self.backend,
                                    keep=tcfg.checked_outputs,
                                    after_call=lambda: check_integrity(cfg.verify.allow_reduced_precision,
                                                                       dispatcher=False))
        check_integrity(cfg.verify.allow_reduced_precision)
        # The wall-clock cross-check is the caller's, over all of a candidate's measurements together
        # (verify.py); what only this process can see is checked here.
        cpu = timing.hidden_cpu_work(t)
        if cpu:
            raise Reject("rejected", f"hidden_work: {cpu}")
        kept += timing.repeat_check(candidate, problem, tcfg, rng, self.backend,
                                    after_call=lambda: check_integrity(cfg.verify.allow_reduced_precision,
                                                                       dispatcher=False))
        inputs = problem.make_inputs(rng.getrandbits(31), self.device)
        integrity.reseed()
        events = kernels.profile(lambda: candidate(*inputs), self.backend)
        self._events = events  # for `profile`, right after
        check_integrity(cfg.verify.allow_reduced_precision, dispatcher=False)
        return {"ok": True, "timing": t.to_dict(), "mode": "train" if candidate.training else "eval",
                "kernels": kernels.kernel_counts(events, self.backend),
                "payload": transfer.pack([(s, how, out, what) for s, how, out, what in kept])}

    def screen(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A short timing of the loaded configuration, on inputs drawn from the request's seed (every
        configuration of a screen sees the same ones). Only chooses which configuration gets the full
        protocol; nothing measured here is recorded as fitness."""
        cfg, problem, candidate = self._loaded()
        timing.in_mode(candidate, cfg.timing.mode, self.weights)
        t, _ = timing.time_model(candidate, problem, timing.screen_config(cfg.timing), random.Random(int(msg["seed"])),
                                 self.backend, after_call=lambda: check_integrity(cfg.verify.allow_reduced_precision,
                                                                                  dispatcher=False))
        check_integrity(cfg.verify.allow_reduced_precision)
        return {"ok": True, "ms": t.median_ms}

    def profile(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The most expensive kernels of the calls profiled after timing, for proposers to read.
        Informational: never part of the fitness."""
        self._loaded()
        if self._events is None:
            raise Reject("crash", "crash: no profile: the candidate was not timed in this process")
        return {"ok": True, "profile": kernels.top(self._events, self.backend, int(msg["top"]))}

    def _loaded(self) -> tuple[Config, Problem, nn.Module]:
        if self.candidate is None or self.cfg is None or self.problem is None:
            raise Reject("crash", "crash: the candidate's process has no candidate loaded (it was restarted)")
        return self.cfg, self.problem, self.candidate

    def unload(self) -> None:
        """Release the candidate: its finalizers run now, then the state is put back."""
        self.candidate = self.weights = self.prev = self._events = None
        self.pristine = {}
        gc.collect()
        integrity.restore()
        integrity.set_candidate_files([])
        if self.module_name:
            sys.modules.pop(self.module_name, None)
            self.module_name = None
        self.module = None
        try:
            self.backend.release_memory()
        except Exception:  # noqa: BLE001 - a poisoned context is handled in _failure
            pass

    def _failure(self, status: str, reason: str, fatal: bool = False) -> dict[str, Any]:
        # fatal: the candidate tampered with the process (or left code running in it); the reply
        # stands, and the worker is replaced before the next request.
        reply: dict[str, Any] = {"status": status, "reason": reason, **({"fatal": True} if fatal else {})}
        if self.backend.poisons_context and (status == "runtime_error" or any(m in reason for m in FATAL_MARKERS)):
            try:  # is the context still usable?
                self.backend.synchronize()
                torch.ones(1, device=self.device).add_(1).item()
            except Exception as e:  # noqa: BLE001
                reply = {"status": "crash", "reason": f"crash: CUDA context poisoned ({str(e)[:300]}); "
                                                      f"candidate error: {reason}", "fatal": True}
        self.unload()
        return reply
