"""The timing protocol: the one place in the project that times anything.

Per timed repetition: fresh input contents are copied in (outside the timed region), the cache is
flushed, the device timer brackets the call, and a device-wide synchronize ends it, with the host
clock around the call as a cross-check (work on another stream or left running asynchronously
shows up as host time far above device time). Median and IQR over at least `min_reps`. On a few
repetitions chosen after the call, the process sits idle for a moment while its CPU time is read:
work on a native thread of its own shows there (`hidden_cpu_work`).

`time_model` times a model on fresh inputs per repetition (the baselines in the judge, a candidate
in its own process, with a sample of its outputs kept for the judge); `confirm` puts a
speedup's interval on rounds of the candidate and the baselines, interleaved.
"""
from __future__ import annotations

import contextlib
import gc
import random
import statistics
import time
from typing import Any, Callable, Iterator

import torch

from .backends.base import Backend, DeviceInfo
from ..model import devices
from ..model.candidate import Timing
from ..config import TimingConfig

# Taken before any candidate code is imported: a candidate that replaces these changes nothing here
# (and integrity.py reports that it tried).
_perf_counter_ns = time.perf_counter_ns
_process_time_ns = time.process_time_ns
_sleep = time.sleep
_median = statistics.median
_fmean = statistics.fmean
_gc_enable, _gc_disable, _gc_isenabled = gc.enable, gc.disable, gc.isenabled

# Host wall time above device time by more than this factor plus this margin means the timer did
# not see all of the work. An honest call's wall time exceeds its device time by the synchronize's
# latency (~10-30 us on an H100); a 0.5 ms margin let a Triton kernel hidden on a side stream through
# (experiments/RESULTS.md, red team), 0.1 ms does not.
HIDDEN_WORK_FACTOR = 1.5
HIDDEN_WORK_MARGIN_MS = 0.1
# The lead-in leaves the device idle but for one spinning thread for lead_ms: work a candidate puts
# on another stream runs there, before the start event, and is gone from both clocks (red team: a
# Triton kernel on a side stream). So some repetitions, chosen at random from the OS's randomness
# (the candidate cannot predict them), run without a lead-in as untimed cross-checks: a synchronize,
# then the call, then a device-wide synchronize, all on the host clock. At least this many...
CROSS_CHECKS = 3
CROSS_CHECK_FRACTION = 0.1  # ...and about this fraction of the timed repetitions.
# Idle windows: after this many repetitions (at least), chosen at random, the process settles for a
# moment (thread pools spin a little after their last parallel region), then sleeps while its CPU
# time is read. An idle process uses almost none; a native thread still working uses a core. The
# median over the windows is compared with the limit (work that goes on is in every window).
IDLE_WINDOWS = 3
IDLE_SETTLE_S = 0.01
IDLE_WINDOW_S = 0.03
IDLE_CPU_LIMIT = 0.5  # cores used while idle above this: hidden work
_chooser = random.SystemRandom()


def _quantile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(call_ms: list[float], wall_ms: list[float], host_ms: list[float] | None = None) -> Timing:
    s = sorted(call_ms)
    return Timing(median_ms=_median(s), iqr_ms=_quantile(s, 0.75) - _quantile(s, 0.25),
                  mean_ms=_fmean(s), min_ms=s[0], reps=len(s), wall_median_ms=_median(wall_ms),
                  host_median_ms=_median(host_ms) if host_ms else 0.0)


def hidden_work(t: Timing) -> bool:
    """True when host wall time says far more happened than the device timer saw."""
    return t.wall_median_ms > t.median_ms * HIDDEN_WORK_FACTOR + HIDDEN_WORK_MARGIN_MS


def pooled_medians(measurements: list[dict[str, Any]]) -> Timing:
    """Several measurements' medians (Timing dicts) as one: the median of each; `reps` counts them."""
    return Timing(median_ms=_median(m["median_ms"] for m in measurements), iqr_ms=0.0, mean_ms=0.0, min_ms=0.0,
                  reps=len(measurements), wall_median_ms=_median(m["wall_median_ms"] for m in measurements),
                  host_median_ms=_median(m.get("host_median_ms", 0.0) for m in measurements))


def hidden_work_reason(pooled: Timing) -> str | None:
    """The wall-clock cross-check over a candidate's measurements taken together (their
    `pooled_medians`: a full measurement's parts, a confirmation's rounds): the median wall time
    against the median device time. Together, not one at a time: work hidden from the timer is in
    every measurement, while an honest call whose host time is near its device time would, checked
    nine times, trip one short round on the host's noise alone (level1/36's draft: walls of 0.48-0.62
    ms against a limit of 0.64 in six evaluations; experiments/RESULTS.md, "2026-12-02 (rounds)")."""
    if not hidden_work(pooled):
        return None
    over = f" (medians of {pooled.reps} measurements)" if pooled.reps > 1 else " (medians)"
    # (An honest call reads the same when its host work before its kernels is long against them:
    # from an idle device the wall time is both. The host time is named so it can be told.)
    return (f"hidden_work: host wall time {pooled.wall_median_ms:.3f} ms vs device timer {pooled.median_ms:.3f} ms"
            f"{over}: work ran where the timer did not see it (another stream, a thread, or asynchronous work "
            f"left running), or the call's host work ({pooled.host_median_ms:.3f} ms to issue it) keeps the "
            "device idle before its kernels")


def hidden_cpu_work(t: Timing) -> str | None:
    """What the idle windows saw, when the process worked while it should have been idle."""
    if t.idle_cpu > IDLE_CPU_LIMIT:
        return (f"the process used {t.idle_cpu:.2f} of a core while it sat idle between timed calls: code of "
                "the candidate's runs on a thread of its own (work the timer would not see)")
    return None


def _idle_window() -> float:
    """Cores' worth of CPU time the process used while it slept for IDLE_WINDOW_S (after settling)."""
    _sleep(IDLE_SETTLE_S)
    c0, t0 = _process_time_ns(), _perf_counter_ns()
    _sleep(IDLE_WINDOW_S)
    c1, t1 = _process_time_ns(), _perf_counter_ns()
    return (c1 - c0) / max(t1 - t0, 1)


def benchmark(run: Callable[[], Any], refresh: Callable[[int], None], backend: Backend, cfg: TimingConfig,
              on_output: Callable[[int, Any], None] | None = None) -> Timing:
    """Time `run()`; `refresh(i)` writes fresh input contents before call i (not timed).

    `on_output(i, out)` sees every timed output (the caller keeps a sample to check later). The
    cyclic garbage collector runs only inside `run()`, and each output is released just before the
    next call, so finalizers a candidate attached run in its own time, not amid the harness's work.
    """
    with _collector_only_in_calls():
        return _benchmark(run, refresh, backend, cfg, on_output)


@contextlib.contextmanager
def _collector_only_in_calls() -> Iterator[None]:
    """The cyclic garbage collector off but inside `_call`, put back as it was after."""
    gc_was_enabled = _gc_isenabled()
    _gc_disable()
    try:
        yield
    finally:
        if gc_was_enabled:
            _gc_enable()


def _output_copy(out: Any) -> Any:
    """A call's output as the judge gets it: its tensors cloned, a lone tensor or a list of leaves."""
    from .checks import _clone, _detach, flatten
    leaves = [_clone(_detach(t)) if isinstance(t, torch.Tensor) else t for t in flatten(out)]
    return leaves if isinstance(out, (list, tuple)) else leaves[0]


def _call(run: Callable[[], Any]) -> Any:
    _gc_enable()
    try:
        return run()
    finally:
        _gc_disable()


def _benchmark(run: Callable[[], Any], refresh: Callable[[int], None], backend: Backend, cfg: TimingConfig,
               on_output: Callable[[int, Any], None] | None) -> Timing:
    # Warm-up: until compilation and autotuning are done, by count and by time.
    calls = 0
    t0 = _perf_counter_ns()
    out: Any = None
    while calls < cfg.warmup_calls or (_perf_counter_ns() - t0) / 1e6 < cfg.warmup_ms:
        refresh(-1 - calls)
        out = None
        out = _call(run)
        backend.synchronize()
        calls += 1
        if calls >= 10 * max(cfg.warmup_calls, 1) and (_perf_counter_ns() - t0) / 1e9 > cfg.max_time_s:
            break

    device_ms: list[float] = []
    host_ms: list[float] = []
    wall_ms: list[float] = []
    cross_ms: list[float] = []
    idle: list[float] = []
    # About IDLE_WINDOWS of them at random over the whole measurement (the rest after it): each puts
    # the device to rest for a moment, and a short kernel timed thousands of times (min_time_ms) must
    # not get one every few dozen repetitions, or the clock's ramp-up after each becomes the noise.
    p_idle = IDLE_WINDOWS / max(cfg.min_reps, 1)
    # Only where there is a lead-in to hide work in: on the CPU the device clock is the host's.
    has_lead = cfg.lead_ms > 0 and type(backend).busy_wait is not Backend.busy_wait
    p_cross = max(CROSS_CHECK_FRACTION, CROSS_CHECKS / max(cfg.min_reps, 1)) if has_lead else 0.0
    start = _perf_counter_ns()
    i = 0
    while True:
        if _chooser.random() < p_cross:
            out = None
            cross_ms.append(_cross_check(run, refresh, backend, -(10 ** 9) - len(cross_ms)))
        # The previous output is released here, outside both timers, not amid the checks, and before
        # the fresh inputs are made: one output and one set of inputs alive at a time.
        out = None
        refresh(i)
        backend.synchronize()
        lead, timer = backend.timer(), backend.timer()
        h0 = _perf_counter_ns()
        # Queued ahead of the start event: the cache flush, then a short device busy-wait. While
        # the device works through them, the host queues the call, so the timed region starts
        # with the call's work waiting, as in steady-state use, and not with the first launch's
        # host latency after an idle synchronize (which read 3-7% high against do_bench).
        lead.start()
        if cfg.flush_cache:
            backend.flush_cache()
        backend.busy_wait(cfg.lead_ms)
        lead.stop()
        timer.start()
        c0 = _perf_counter_ns()
        out = _call(run)
        c1 = _perf_counter_ns()
        timer.stop()
        backend.synchronize()
        h1 = _perf_counter_ns()
        # A call costs the longer of its device time and the host time to issue it: back to back,
        # a call whose launches take longer than its kernels is bound by the host, and the lead-in
        # must not hide that.
        host_ms.append((c1 - c0) / 1e6)
        device_ms.append(max(timer.elapsed_ms(), host_ms[-1]))
        # Host time of the call alone: the lead-in's device time taken off the host's whole span.
        wall_ms.append(max((h1 - h0) / 1e6 - lead.elapsed_ms(), 0.0))
        if on_output is not None:
            on_output(i, out)
        if i + 1 == cfg.min_reps and cfg.min_time_ms > 0:  # the expected count, now that a call's time is known
            expected = max(cfg.min_reps, cfg.min_time_ms / max(sum(device_ms) / len(device_ms), 1e-6))
            p_idle = IDLE_WINDOWS / expected
        if _chooser.random() < p_idle:
            idle.append(_idle_window())
        i += 1
        if i >= cfg.min_reps:
            if sum(device_ms) >= cfg.min_time_ms or (_perf_counter_ns() - start) / 1e9 >= cfg.max_time_s:
                break
    out = None
    while has_lead and len(cross_ms) < CROSS_CHECKS:
        cross_ms.append(_cross_check(run, refresh, backend, -(10 ** 9) - len(cross_ms)))
    while len(idle) < IDLE_WINDOWS:
        out = _call(run)
        backend.synchronize()
        out = None
        idle.append(_idle_window())
    timing = summarize(device_ms, wall_ms, host_ms)
    timing.idle_cpu = _median(idle)
    if cross_ms:
        # The wall-clock cross-check reads the longer of the two: with the lead-in (work past its
        # end) and without it (work that would otherwise have run while it spun).
        timing.wall_median_ms = max(timing.wall_median_ms, _median(cross_ms))
    return timing


def _cross_check(run: Callable[[], Any], refresh: Callable[[int], None], backend: Backend, index: int) -> float:
    """One untimed repetition with no lead-in: host time from an idle device to all work done."""
    refresh(index)
    backend.synchronize()
    h0 = _perf_counter_ns()
    out = _call(run)
    backend.synchronize()
    h1 = _perf_counter_ns()
    del out
    return (h1 - h0) / 1e6


def measure_ceilings(backend: Backend, info: DeviceInfo) -> DeviceInfo:
    """Measure memory bandwidth (a large copy, bytes read + written) and the matrix-product rates:
    fp32, and on CUDA devices TF32 and fp16 tensor cores.

    These are the speed-of-light figures the audit and the tables compare against (audit.py picks
    the fastest unit a run's precision admits). Each product runs under the switches it names and
    the run's switches are restored after.
    """
    from . import precision
    dev = backend.device
    gpu = not devices.kind(info.kind).host_clock
    n_bytes = (1 << 30) if gpu else (256 << 20)
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device=dev).fill_(1.0)
    dst = torch.empty_like(src)
    m = 8192 if gpu else 1024
    a = torch.randn(m, m, device=dev)
    b = torch.randn(m, m, device=dev)
    cfg = TimingConfig(warmup_calls=2, warmup_ms=0.0, min_reps=10 if gpu else 3, min_time_ms=0.0,
                       max_time_s=30.0, flush_cache=False)

    def rate(x: torch.Tensor, y: torch.Tensor) -> float:
        mm = benchmark(lambda: torch.mm(x, y), lambda i: None, backend, cfg)
        return 2 * m ** 3 / (mm.median_ms * 1e-3) / 1e12

    copy = benchmark(lambda: dst.copy_(src), lambda i: None, backend, cfg)
    info.bandwidth_gbs = 2 * n_bytes / (copy.median_ms * 1e-3) / 1e9
    switches = precision.read_switches()
    try:
        precision.apply({**switches, "matmul_allow_tf32": False, "float32_matmul_precision": "highest"})
        info.peak_tflops_fp32 = rate(a, b)
        if info.kind == "cuda":
            precision.apply({**switches, "matmul_allow_tf32": True, "float32_matmul_precision": "high"})
            info.peak_tflops_tf32 = rate(a, b)
            info.peak_tflops_fp16 = rate(a.half(), b.half())
    finally:
        precision.apply(switches)
    return info


def in_mode(model: Any, mode: str, like: Any = None) -> Any:
    """Put a model in the mode timing uses: `eval`, `train`, or `as_constructed` (the mode `like`, a
    freshly built reference, has; the model's own when there is none)."""
    if mode == "eval":
        model.eval()
    elif mode == "train":
        model.train()
    elif like is not None:
        model.train(like.training)
    return model


# Timed outputs kept for the judge hold at most this many bytes (at least one output is kept): on a
# problem with gigabytes of output, three copies would cost more device memory than the problem.
KEPT_BYTES = 4 << 30


def time_model(model: Any, problem: Any, cfg: TimingConfig, rng: random.Random, backend: Backend, keep: int = 0,
               after_call: Callable[[], None] | None = None) -> tuple[Timing, list[tuple[int, str, Any, str]]]:
    """Time `model` on fresh inputs per repetition, under no_grad; keep `keep` timed outputs (fewer
    where they would pass KEPT_BYTES) for the judge as (input seed, input distribution, output copy,
    which call made it).

    Every repetition's inputs come from a seed drawn then (torch's seed is replaced right after, so
    `torch.initial_seed()` tells the candidate nothing). Which repetitions are kept is decided after
    each call, by reservoir sampling from the OS's randomness: nothing in the process says in advance
    which outputs will be looked at. A kept repetition's inputs are made again from its seed to check
    that the model left them unchanged and that its output does not alias them.
    """
    from . import integrity
    from .checks import (Reject, _copy_, _element_size, _numel, check_not_aliased, check_plain, flatten,
                         inputs_unchanged)
    device = backend.device
    buffers = problem.make_inputs(rng.getrandbits(31), device)
    integrity.reseed()
    seeds: dict[int, int] = {}

    def refresh(i: int) -> None:
        seeds[i] = rng.getrandbits(31)
        fresh = problem.make_inputs(seeds[i], device)
        integrity.reseed()
        for b, f in zip(buffers, fresh):
            if isinstance(b, torch.Tensor):
                _copy_(b, f)  # the unbound method: a candidate may have shadowed `b.copy_`

    chooser = random.SystemRandom()
    kept: list[tuple[int, str, Any, str]] = []
    seen = 0
    limit = keep  # lowered for large outputs at the first one (each kept output is a full copy)

    def on_output(i: int, out: Any) -> None:
        nonlocal seen, limit
        where = f"timed repetition {i}"
        if after_call is not None:
            after_call()
        check_plain(out, f"{where}: output")
        if seen == 0 and keep:
            size = sum(_numel(t) * _element_size(t) for t in flatten(out) if isinstance(t, torch.Tensor))
            limit = min(keep, max(1, KEPT_BYTES // max(size, 1)))
        seen += 1
        slot = len(kept) if len(kept) < limit else chooser.randrange(seen)
        if slot >= limit:
            return
        pristine = problem.make_inputs(seeds[i], device)
        integrity.reseed()
        if not inputs_unchanged(pristine, buffers):
            raise Reject("rejected", f"input_mutated: {where}: the model changed its inputs in place")
        for t in flatten(out):
            if isinstance(t, torch.Tensor):
                check_not_aliased(t, buffers, f"{where}: output")
        entry = (seeds[i], "standard", _output_copy(out), where)
        if slot == len(kept):
            kept.append(entry)
        else:
            kept[slot] = entry

    def run() -> Any:
        with torch.no_grad():
            return model(*buffers)

    timing = benchmark(run, refresh, backend, cfg, on_output if (keep or after_call) else None)
    return timing, kept


SAME_INPUTS = "on the same inputs"  # in the label of repeat_check's outputs, which the judge tells apart


def repeat_check(model: Any, problem: Any, cfg: TimingConfig, rng: random.Random, backend: Backend,
                 after_call: Callable[[], None] | None = None) -> list[tuple[int, str, Any, str]]:
    """Up to cfg.repeat_calls calls (and about cfg.repeat_ms) on one set of inputs, each output
    compared bit for bit with the first's. A deterministic kernel never differs; a race does now and
    then (on an H200 a transposed-conv kernel wrote one tile wrong in about 1 call of 150,
    experiments/RESULTS.md), where the verification trials and the few kept timed outputs see it only
    by chance. Returns, where one differs, the first output and that one, for the judge as kept timed
    outputs are (a kernel that sums in a varying order differs too, and passes there); else nothing."""
    from . import integrity
    from .checks import check_plain, flatten, same_bits
    if cfg.repeat_calls <= 0:
        return []
    seed = rng.getrandbits(31)
    inputs = problem.make_inputs(seed, backend.device)
    integrity.reseed()

    def call(what: str) -> Any:
        with torch.no_grad():
            out = _call(lambda: model(*inputs))
        if after_call is not None:
            after_call()
        check_plain(out, f"{what}: output")
        return out

    with _collector_only_in_calls():  # as in benchmark
        first = _output_copy(call("the first of the repeated calls"))
        first_leaves = flatten(first)
        start = _perf_counter_ns()
        for k in range(1, cfg.repeat_calls):
            out = call(f"repeated call {k + 1}")
            leaves = flatten(out)
            if len(leaves) != len(first_leaves) or not all(
                    same_bits(a, b) if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) else a == b
                    for a, b in zip(leaves, first_leaves)):
                return [(seed, "standard", first, f"call 1 of {k + 1} {SAME_INPUTS}"),
                        (seed, "standard", _output_copy(out), f"call {k + 1} {SAME_INPUTS}, whose output differs "
                                                              "from call 1's")]
            del out, leaves
            if (_perf_counter_ns() - start) / 1e6 > cfg.repeat_ms:
                break
    return []


def speedup_interval(candidate_ms: list[float], baseline_ms: list[float], level: float = 0.95,
                     draws: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """The speedup median(baseline) / median(candidate) over rounds timed in pairs, and a bootstrap
    interval: the rounds resampled with replacement, the ratio of medians each time, the central
    `level` share of those ratios. (point, low, high)."""
    import numpy as np
    c, b = np.asarray(candidate_ms, dtype=float), np.asarray(baseline_ms, dtype=float)
    point = float(np.median(b) / np.median(c))
    if len(c) < 2:
        return point, point, point
    idx = np.random.default_rng(seed).integers(0, len(c), size=(draws, len(c)))
    ratios = np.median(b[idx], axis=1) / np.median(c[idx], axis=1)
    low, high = np.quantile(ratios, [(1 - level) / 2, 1 - (1 - level) / 2])
    return point, float(low), float(high)


def part_config(cfg: TimingConfig) -> TimingConfig:
    """One of a full measurement's `repeats` parts (a candidate's, torch.compile's): its share of the
    repetitions and timed time, so that timing twice costs what timing once did. Each part's median
    stands alone and the fastest is kept: a slowed stretch of seconds spoils one part, not both."""
    import dataclasses
    parts = max(1, cfg.repeats)
    return dataclasses.replace(cfg, min_reps=max(5, cfg.min_reps // parts), min_time_ms=cfg.min_time_ms / parts,
                               repeat_calls=-(-cfg.repeat_calls // parts), repeat_ms=cfg.repeat_ms / parts)


def round_config(cfg: TimingConfig) -> TimingConfig:
    """One confirmation round: a tenth of the repetitions and time of a full measurement (the
    interval comes from the spread across rounds, so many short rounds beat few long ones), one
    timed output kept for the judge."""
    import dataclasses
    return dataclasses.replace(cfg, min_reps=max(5, cfg.min_reps // 10), min_time_ms=cfg.min_time_ms / 10,
                               warmup_ms=cfg.warmup_ms / 4, checked_outputs=min(cfg.checked_outputs, 1),
                               repeat_calls=0)


def screen_config(cfg: TimingConfig) -> TimingConfig:
    """Screening one of a candidate's configurations: a short measurement (a fifth of the
    repetitions and time of a full one), enough to rank configurations that differ by more than
    the noise; the winner is then timed in full."""
    import dataclasses
    return dataclasses.replace(cfg, min_reps=max(5, cfg.min_reps // 5), min_time_ms=cfg.min_time_ms / 5,
                               warmup_ms=cfg.warmup_ms / 2, max_time_s=min(cfg.max_time_s, 10.0), checked_outputs=0,
                               repeat_calls=0)
