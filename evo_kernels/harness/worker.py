"""The sandbox worker: the process that imports, verifies and times candidate code.

Started by sandbox.py as `python -m evo_kernels.worker --fd N` with a scrubbed environment in a
temporary directory. Before any candidate is imported it applies its resource limits, leaves the
network (where the OS allows it), sets strict precision and snapshots what the harness relies on.
Requests and replies are dicts over a `multiprocessing.connection.Connection` on fd N.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import resource
import secrets
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SANDBOX_ENV = "EVO_KERNELS_SANDBOX"  # JSON of the sandbox settings, set by sandbox.py
_CLONE_NEWNET = 0x40000000


def apply_limits(settings: dict[str, Any]) -> list[str]:
    """Resource limits and network isolation; returns notes on what could not be applied."""
    notes = []
    mem_gb = float(settings.get("memory_limit_gb") or 0)
    if mem_gb > 0:
        limit = int(mem_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    fsize = int(float(settings.get("file_size_limit_mb") or 0) * (1 << 20))
    if fsize > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if settings.get("isolate_network"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) != 0:
            notes.append(f"network not isolated: unshare(CLONE_NEWNET) failed with errno {ctypes.get_errno()}")
    return notes


# Device errors after which the CUDA context is unusable: the worker must be replaced.
_FATAL_MARKERS = ("illegal memory access", "unspecified launch failure", "device-side assert",
                  "misaligned address", "illegal instruction", "CUDA error: an illegal",
                  "cudaErrorLaunchFailure", "context is destroyed", "uncorrectable ECC")


class Worker:
    def __init__(self, device: str, workdir: Path) -> None:
        import torch

        from . import integrity, precision
        from ..model import devices
        from .backends import get_backend

        self.torch = torch
        self.device = device
        self.workdir = workdir
        self.backend = get_backend(device)
        self.kind = devices.kind(device)
        precision.set_strict_precision()
        # Everything the harness calls is imported above this line; snapshot it before any
        # candidate code can run.
        from . import audit as _audit
        from . import checks as _outputs
        from ..model import problem as _problem  # noqa: F401
        from . import timing as _timing
        from . import verify as _verify  # noqa: F401
        # torch._dynamo wraps torch.manual_seed when first imported, and patches nn.Module.__init__
        # on its first compile: both before the snapshot, so an honest torch.compile changes nothing.
        import torch._dynamo  # noqa: F401
        import torch.utils.flop_counter  # noqa: F401
        from torch._dynamo.mutation_guard import install_generation_tagging_init
        install_generation_tagging_init()
        integrity.snapshot()
        self.problems: dict[str, Any] = {}
        self.info: Any = None
        self.count = 0

    # -- requests ---------------------------------------------------------------------------------
    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "describe":
            return {"ok": True, "info": self.describe().to_dict()}
        if op == "baselines":
            return self.baselines(msg)
        if op == "evaluate":
            return self.evaluate(msg)
        return {"ok": False, "error": f"unknown op {op!r}"}

    def describe(self) -> Any:
        if self.info is None:
            from .timing import measure_ceilings
            self.info = measure_ceilings(self.backend, self.backend.describe())
        return self.info

    def problem(self, path: str) -> Any:
        from . import integrity
        from ..model.problem import load_problem
        if path not in self.problems:
            self.problems[path] = load_problem(path)
            integrity.watch_module(self.problems[path].module)  # Model.forward, get_inputs, ...
        return self.problems[path]

    def _configs(self, msg: dict[str, Any]) -> Any:
        from . import integrity
        from ..config import from_dict
        cfg = from_dict(msg.get("config") or {})
        if self.kind.host_clock and cfg.timing.cpu_threads > 0 and self.torch.get_num_threads() != cfg.timing.cpu_threads:
            integrity.set_num_threads(cfg.timing.cpu_threads)  # baselines and candidates alike
        return cfg

    def baselines(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Time eager (twice: the noise of the measurement) and torch.compile, and bound the problem."""
        from torch.utils.flop_counter import FlopCounterMode

        from .timing import benchmark
        torch = self.torch
        cfg = self._configs(msg)
        problem = self.problem(msg["problem"])
        rng = random.Random(secrets.randbits(64))
        model = problem.make_model(problem.Model, rng.getrandbits(31), self.device)
        inputs = problem.make_inputs(rng.getrandbits(31), self.device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
        weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
        bytes_read = weights + sum(x.numel() * x.element_size() for x in inputs if isinstance(x, torch.Tensor))
        info = self.describe()
        from .audit import speed_of_light_ms
        floor = speed_of_light_ms(bytes_read, counter.get_total_flops(), info.bandwidth_gbs,
                                  info.peak_tflops_fp32, cfg.verify.allow_reduced_precision)
        out: dict[str, Any] = {"ok": True, "floor_ms": floor, "bytes_read": bytes_read,
                               "flops": counter.get_total_flops(), "device_info": info.to_dict()}
        for name in ["eager", "eager_repeat"] + [b for b in cfg.baselines if b != "eager"]:
            try:
                runnable = torch.compile(model) if name == "compile" else model
                t = self.time_model(runnable, problem, cfg, rng, reference=None)
                out[name] = t.to_dict()
            except Exception as e:  # noqa: BLE001 - a failing compile baseline is reported, not fatal
                out[name] = {"error": f"{type(e).__name__}: {str(e)[:1000]}"}
        torch._dynamo.reset()
        return out

    def time_model(self, model: Any, problem: Any, cfg: Any, rng: random.Random, reference: Any,
                   guard: Any = None) -> Any:
        """Time `model` on fresh inputs per repetition; with a reference, check a sample of outputs.

        Every repetition's inputs come from a seed drawn then (torch's seed is replaced right after,
        so `torch.initial_seed()` tells the candidate nothing). Which repetitions are checked is
        decided after each call, by reservoir sampling from the OS's randomness: nothing in the
        process says in advance which outputs will be looked at. A checked repetition's inputs are
        regenerated from its seed to check that the candidate left them unchanged, that its output
        does not alias them and, after timing, that the output is the reference's for those inputs.
        """
        from . import integrity
        from .timing import benchmark
        from .checks import (Reject, _clone, _copy_, _detach, check_inputs, check_not_aliased, check_plain,
                              compare_outputs, flatten)
        from .verify import check_integrity
        torch = self.torch
        buffers = problem.make_inputs(rng.getrandbits(31), self.device)
        integrity.reseed()
        seeds: dict[int, int] = {}

        def refresh(i: int) -> None:
            seeds[i] = rng.getrandbits(31)
            fresh = problem.make_inputs(seeds[i], self.device)
            integrity.reseed()
            for b, f in zip(buffers, fresh):
                if isinstance(b, torch.Tensor):
                    _copy_(b, f)  # the unbound method: a candidate may have shadowed `b.copy_`

        k = cfg.timing.checked_outputs if reference is not None else 0
        chooser = random.SystemRandom()
        kept: list[tuple[int, list[Any], Any]] = []
        seen = 0

        def keep(i: int, out: Any) -> None:
            nonlocal seen
            where = f"timed repetition {i}"
            check_plain(out, f"{where}: output")
            seen += 1
            slot = len(kept) if len(kept) < k else chooser.randrange(seen)
            if slot >= k:
                return
            pristine = problem.make_inputs(seeds[i], self.device)
            integrity.reseed()
            check_inputs(pristine, buffers, where)
            for t in flatten(out):
                if isinstance(t, torch.Tensor):
                    check_not_aliased(t, buffers, f"{where}: output")
            leaves = [_clone(_detach(t)) if isinstance(t, torch.Tensor) else t for t in flatten(out)]
            entry = (i, pristine, leaves if isinstance(out, (list, tuple)) else leaves[0])
            if slot == len(kept):
                kept.append(entry)
            else:
                kept[slot] = entry

        def run() -> Any:
            with torch.no_grad():
                return model(*buffers)

        timing = benchmark(run, refresh, self.backend, cfg.timing, keep if reference is not None else None)
        if reference is not None:
            check_integrity(cfg.verify.allow_reduced_precision, guard)
        gc.disable()  # as in verify: no candidate finalizer runs amid the comparisons
        try:
            for i, inputs, out in sorted(kept, key=lambda e: e[0]):
                with torch.no_grad(), integrity.snapshot_precision():
                    ref_out = reference(*inputs)
                try:
                    compare_outputs(ref_out, out, cfg.verify, problem, [])
                except Reject as r:
                    raise Reject(r.status if r.status != "ok" else "incorrect",
                                 f"stale_output: timed repetition {i}: the output is not the reference's for "
                                 "that repetition's inputs (a cached or stale result, or work not finished when "
                                 "the call returned): " + r.reason) from None
        finally:
            gc.enable()
        return timing

    def top_kernels(self, model: Any, problem: Any, rng: random.Random, top: int) -> list[dict[str, Any]]:
        """torch.profiler over a few calls of a verified candidate: its most expensive kernels (device
        time per call), for proposers to read. Informational: never part of the fitness."""
        from torch.profiler import ProfilerActivity, profile
        torch = self.torch
        gpu = not self.kind.host_clock
        inputs = problem.make_inputs(rng.getrandbits(31), self.device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
        calls = 3
        with torch.no_grad(), profile(activities=activities) as prof:
            for _ in range(calls):
                model(*inputs)
            self.backend.synchronize()
        events = prof.key_averages()
        timed = "self_device_time_total" if gpu else "self_cpu_time_total"
        rows = sorted(events, key=lambda e: getattr(e, timed, 0.0), reverse=True)[:top]
        return [{"name": e.key[:120], "ms_per_call": getattr(e, timed, 0.0) / 1000 / calls,
                 "calls_per_call": e.count / calls} for e in rows if getattr(e, timed, 0.0) > 0]

    def evaluate(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Import, verify and (unless verify-only) time one candidate."""
        from . import integrity
        from .timing import hidden_work
        from .checks import Reject
        from .verify import check_integrity, verify
        torch = self.torch
        cfg = self._configs(msg)
        problem = self.problem(msg["problem"])
        rng = random.Random(secrets.randbits(64))  # seeds the candidate cannot predict
        module_name = None
        integrity.restore()  # whatever an earlier request left behind is not this candidate's doing
        try:
            if cfg.verify.allow_reduced_precision is False:
                from . import precision
                precision.set_strict_precision()
            module, module_name = self._import_candidate(msg["source"], msg.get("params") or {})
            check_integrity(cfg.verify.allow_reduced_precision, dispatcher=False)  # verify checks it all next
            result = verify(problem, module.ModelNew, self.backend, cfg.verify, rng)
            reply: dict[str, Any] = {"status": "ok", "reason": "", "max_abs_error": result.max_abs_error,
                                     "max_rel_error": result.max_rel_error, "notes": result.notes}
            if cfg.verify.allow_reduced_precision and integrity.precision_changes():
                reply["notes"].append("reduced_precision: " + "; ".join(integrity.precision_changes()))
            if msg.get("time", True):
                timing = self.time_model(result.candidate, problem, cfg, rng, result.reference, result.guard)
                if hidden_work(timing):
                    raise Reject("rejected", f"hidden_work: host wall time {timing.wall_median_ms:.3f} ms vs "
                                             f"device timer {timing.median_ms:.3f} ms (medians): work ran where "
                                             "the timer did not see it (another stream, a thread, or "
                                             "asynchronous work left running)")
                reply["timing"] = timing.to_dict()
                if cfg.timing.profile_top_kernels > 0:
                    reply["profile"] = self.top_kernels(result.candidate, problem, rng, cfg.timing.profile_top_kernels)
            return reply
        except Reject as r:
            return self._failure(r.status, r.reason, r.fatal)
        except Exception as e:  # noqa: BLE001 - harness-side failure while handling candidate output
            return self._failure("runtime_error", f"{type(e).__name__}: {str(e)[:2000]}")
        finally:
            result = module = None  # noqa: F841 - release the candidate before the collection below
            gc.collect()  # the candidate's finalizers run now, before the state is put back
            integrity.restore()
            integrity.set_candidate_files([])
            if module_name:
                sys.modules.pop(module_name, None)
            if self.kind.poisons_context:
                try:
                    torch.cuda.empty_cache()
                except Exception:  # noqa: BLE001 - a poisoned context is handled in _failure
                    pass

    def _import_candidate(self, source: str, params: dict[str, Any]) -> tuple[Any, str]:
        from ..model.problem import import_file
        from .checks import Reject
        self.count += 1
        path = self.workdir / f"candidate_{self.count}.py"
        path.write_text(source)
        from . import integrity
        integrity.set_candidate_files([str(path)])  # threads running this file's code are found
        try:
            module = import_file(path, "evo_candidate")
        except SyntaxError as e:
            raise Reject("compile_error", f"syntax error at line {e.lineno}: {e.msg}") from None
        except BaseException as e:  # noqa: BLE001 - SystemExit from candidate code included
            raise Reject("compile_error", f"import failed: {type(e).__name__}: {str(e)[:2000]}") from None
        for key, value in params.items():
            if not hasattr(module, key):
                raise Reject("compile_error", f"parameter {key!r} is not a module-level name of the candidate")
            setattr(module, key, value)
        if not isinstance(getattr(module, "ModelNew", None), type):
            raise Reject("compile_error", "the candidate defines no class ModelNew")
        return module, module.__name__

    def _failure(self, status: str, reason: str, fatal: bool = False) -> dict[str, Any]:
        # fatal: the candidate tampered with the process (or left code running in it); the reply
        # stands, and the worker is replaced before the next request.
        reply: dict[str, Any] = {"status": status, "reason": reason, **({"fatal": True} if fatal else {})}
        if self.kind.poisons_context and (status == "runtime_error" or any(m in reason for m in _FATAL_MARKERS)):
            try:  # is the context still usable?
                self.torch.cuda.synchronize()
                self.torch.ones(1, device=self.device).add_(1).item()
            except Exception as e:  # noqa: BLE001
                reply = {"status": "crash", "reason": f"crash: CUDA context poisoned ({str(e)[:300]}); "
                                                      f"candidate error: {reason}", "fatal": True}
        return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--device", required=True)
    args = parser.parse_args()
    settings = json.loads(os.environ.get(SANDBOX_ENV, "{}"))
    notes = apply_limits(settings)
    conn = Connection(args.fd)
    try:
        worker = Worker(args.device, Path.cwd())
    except BaseException as e:  # noqa: BLE001
        conn.send({"ok": False, "error": f"worker failed to start: {type(e).__name__}: {e}",
                   "traceback": traceback.format_exc()})
        return
    conn.send({"ok": True, "pid": os.getpid(), "notes": notes})
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg.get("op") == "exit":
            return
        try:
            reply = worker.handle(msg)
        except BaseException as e:  # noqa: BLE001 - never die silently; the parent decides
            reply = {"ok": False, "status": "crash", "reason": f"crash: worker error {type(e).__name__}: {e}",
                     "traceback": traceback.format_exc(), "fatal": True}
        conn.send(reply)
        if reply.get("fatal"):
            sys.stdout.flush()
            os._exit(3)


if __name__ == "__main__":
    main()
