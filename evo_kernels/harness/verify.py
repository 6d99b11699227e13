"""The correctness protocol, as the evaluator runs it: requests to the judge and to the defendant.

    defendant: load          import the candidate, build ModelNew with the reference's weights
    judge:     begin         build the reference and the float64 oracle; plan the trials
    per trial:
      judge:     reference   the reference as run and the oracle on the trial's inputs and weights
      defendant: trial       ModelNew on the same inputs and weights, in the trial's mode
      judge:     compare     the outputs (mapped from the defendant's memory), inputs and buffers
    defendant: time          the timing protocol, a sample of timed outputs kept
    judge:     timed         those outputs against the reference for their inputs
    (time and timed in timing.repeats parts; the fastest part's median is the candidate's)

The defendant is stopped (SIGSTOP) whenever the judge works. Nothing the candidate's process says
is believed: the judge decides, from what it maps of that process's memory. Every rejection is a
reason starting with the tag of the check that failed (`accuracy:`, `mode_mismatch:`,
`buffer_mismatch:`, `input_mutated:`, `output_lifetime:`, ...).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..model.candidate import Candidate, Timing
from .sandbox import SandboxWorker


@dataclass
class Verdict:
    status: str = "ok"
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    trials: list[str] = field(default_factory=list)  # what each trial ran (mode, grad, weights, inputs)
    oracle_error: dict[str, Any] = field(default_factory=dict)  # the worst "candidate" and "baseline" errors
    timing: dict[str, Any] | None = None
    profile: list[dict[str, Any]] | None = None
    peak_memory: dict[str, int] = field(default_factory=dict)  # bytes, per process
    mode: str = ""  # the mode the candidate was timed in
    kernels: dict[str, float] = field(default_factory=dict)  # what one call runs: kernel name -> count


class _Stop(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _ask(worker: SandboxWorker, msg: dict[str, Any], deadline: float, who: str) -> dict[str, Any]:
    """One request with what is left of the evaluation's time; a failure ends the evaluation."""
    left = max(1.0, deadline - time.monotonic())
    reply = worker.request(msg, timeout=min(left, worker.cfg.timeout_s))
    if reply.get("status") not in (None, "ok"):
        status, reason = reply["status"], reply.get("reason", "")
        if status == "timeout":
            reason = (f"timeout: no result within the evaluation's time limit of {worker.cfg.timeout_s:g} s "
                      f"(sandbox.timeout_s); the {who}'s process was killed and replaced")
        if who == "judge" and status in ("crash", "timeout"):
            reason = f"{reason} (in the judge's process, judging this candidate's outputs)"
        raise _Stop(status, reason)
    if reply.get("ok") is False:
        raise _Stop("crash", f"crash: the {who}'s process failed: {reply.get('error') or reply.get('reason')}")
    return reply


def _load_and_verify(judge: SandboxWorker, defendant: SandboxWorker, problem: str, candidate: Candidate,
                     cfg: Config, rng: random.Random, deadline: float, verdict: Verdict) -> None:
    """Load the candidate and run every trial; raises _Stop on the first failure."""
    config = cfg.to_dict()
    init_seed, idx_seed = rng.getrandbits(31), rng.getrandbits(31)
    _ask(defendant, {"op": "load", "problem": problem, "source": candidate.source, "params": candidate.params,
                     "config": config, "init_seed": init_seed}, deadline, "defendant")
    with defendant.paused():
        begun = _ask(judge, {"op": "begin", "problem": problem, "config": config, "init_seed": init_seed,
                             "idx_seed": idx_seed, "plan_seed": rng.getrandbits(63)}, deadline, "judge")
    for trial in begun["trials"]:
        with defendant.paused():
            ref = _ask(judge, {"op": "reference", "trial": trial}, deadline, "judge")
        trial = ref["trial"]  # widened inputs the reference cannot take fall back to standard ones
        ran = _ask(defendant, {"op": "trial", "trial": trial, "out_bytes": ref["out_bytes"]}, deadline, "defendant")
        with defendant.paused():
            judged = _ask(judge, {"op": "compare", "trial": trial, "payload": ran["payload"]}, deadline, "judge")
        verdict.notes.extend(ref.get("notes", []) + ran.get("notes", []) + judged.get("notes", []))
        verdict.trials.append(trial)


def _time_round(judge: SandboxWorker, defendant: SandboxWorker, cfg: Config, deadline: float) -> dict[str, Any]:
    """The candidate timed (a sample of its timed outputs judged); its timing, mode and kernels."""
    t = _ask(defendant, {"op": "time", "config": cfg.to_dict()}, deadline, "defendant")
    with defendant.paused():
        _ask(judge, {"op": "timed", "payload": t["payload"]}, deadline, "judge")
    return t


def _wall_check(measurements: list[dict[str, Any]]) -> Timing:
    """The wall-clock cross-check (timing.hidden_work_reason) over all of a candidate's measurements
    (Timing dicts): their pooled medians, which it read."""
    from .timing import hidden_work_reason, pooled_medians
    pooled = pooled_medians(measurements)
    held = hidden_work_reason(pooled)
    if held:
        raise _Stop("rejected", held)
    return pooled


def _close(judge: SandboxWorker, defendant: SandboxWorker, verdict: Verdict) -> None:
    ended = judge.request({"op": "end"}) if judge.alive() else {}
    unloaded = defendant.request({"op": "unload"}) if defendant.alive() else {}
    verdict.oracle_error = ended.get("oracle_error") or {}
    verdict.notes = list(dict.fromkeys(verdict.notes + list(ended.get("notes") or [])))
    verdict.peak_memory = {"judge": int(ended.get("peak_memory") or 0),
                           "defendant": int(unloaded.get("peak_memory") or 0)}


def verify_and_time(judge: SandboxWorker, defendant: SandboxWorker, problem: str, candidate: Candidate,
                    cfg: Config, rng: random.Random, timed: bool = True) -> Verdict:
    verdict = Verdict()
    deadline = time.monotonic() + cfg.sandbox.timeout_s
    try:
        _load_and_verify(judge, defendant, problem, candidate, cfg, rng, deadline, verdict)
        if timed:
            # timing.repeats parts of a measurement, the fastest kept (as torch.compile's are): one
            # slowed by interference would otherwise decide the candidate's fitness. Each one's
            # outputs judged.
            from .timing import part_config
            part = Config(**{**cfg.__dict__, "timing": part_config(cfg.timing)})
            times = [_time_round(judge, defendant, part, deadline) for _ in range(cfg.timing.repeats)]
            _wall_check([r["timing"] for r in times])
            t = min(times, key=lambda r: r["timing"]["median_ms"])
            verdict.timing = dict(t["timing"], attempts_ms=[r["timing"]["median_ms"] for r in times])
            verdict.mode, verdict.kernels = t.get("mode", ""), t.get("kernels") or {}
            if cfg.timing.profile_top_kernels > 0:
                verdict.profile = _ask(defendant, {"op": "profile", "top": cfg.timing.profile_top_kernels},
                                       deadline, "defendant")["profile"]
    except _Stop as stop:
        verdict.status, verdict.reason = stop.status, stop.reason
    finally:
        _close(judge, defendant, verdict)
    return verdict


def confirm(judge: SandboxWorker, defendant: SandboxWorker, problem: str, candidate: Candidate, cfg: Config,
            rng: random.Random, rounds: int, baselines: list[str]) -> tuple[Verdict, list[dict[str, float]]]:
    """The candidate verified again, then timed in `rounds` short rounds interleaved with the
    baselines' (the order rotates each round: drift and warm-up fall on each alike). Per round the
    median ms of the candidate and of each baseline."""
    verdict = Verdict()
    deadline = time.monotonic() + cfg.sandbox.timeout_s + rounds * 60.0
    from .timing import round_config
    short = Config(**{**cfg.__dict__, "timing": round_config(cfg.timing)})
    order = ["candidate"] + list(baselines)
    rows: list[dict[str, float]] = []
    timings: list[dict[str, Any]] = []  # the candidate's rounds, for the wall-clock check over them all
    try:
        _load_and_verify(judge, defendant, problem, candidate, cfg, rng, deadline, verdict)
        for r in range(rounds):
            row: dict[str, float] = {}
            for which in order[r % len(order):] + order[:r % len(order)]:
                if which == "candidate":
                    timings.append(_time_round(judge, defendant, short, deadline)["timing"])
                    row[which] = timings[-1]["median_ms"]
                else:
                    with defendant.paused():
                        row[which] = _ask(judge, {"op": "time_baseline", "problem": problem, "which": which,
                                                  "config": short.to_dict()}, deadline, "judge")["timing"]["median_ms"]
            rows.append(row)
        if timings:  # (kept: the rounds' medians of the device, wall and host clocks, as the check read them)
            verdict.timing = _wall_check(timings).to_dict()
    except _Stop as stop:
        verdict.status, verdict.reason = stop.status, stop.reason
    finally:
        _close(judge, defendant, verdict)
    return verdict, rows


def screen(defendant: SandboxWorker, problem: str, candidate: Candidate, configs: list[dict[str, Any]],
           cfg: Config, rng: random.Random) -> list[dict[str, Any]]:
    """Each configuration of a candidate loaded and timed briefly in the defendant, on the same
    inputs: per configuration {"params", "ms"} or {"params", "ms": None, "reason"}. A configuration
    that crashes or hangs costs only itself (the process is replaced for the next one). Once
    `tuning.screen_time_s` has gone to the screen, the configurations left are listed unscreened."""
    config, init_seed, seed = cfg.to_dict(), rng.getrandbits(31), rng.getrandbits(31)
    out: list[dict[str, Any]] = []
    started, loaded = time.monotonic(), 0
    for params in configs:
        row: dict[str, Any] = {"params": dict(params), "ms": None}
        spent = time.monotonic() - started
        if loaded and spent >= cfg.tuning.screen_time_s:
            row["reason"] = (f"not screened: the screen's time (tuning.screen_time_s = {cfg.tuning.screen_time_s:g} s) "
                             f"went to those before it ({loaded} screened in {spent:.0f} s)")
            out.append(row)
            continue
        loaded += 1
        deadline = time.monotonic() + cfg.sandbox.timeout_s
        try:
            _ask(defendant, {"op": "load", "problem": problem, "source": candidate.source, "params": params,
                             "config": config, "init_seed": init_seed}, deadline, "defendant")
            row["ms"] = _ask(defendant, {"op": "screen", "seed": seed}, deadline, "defendant")["ms"]
        except _Stop as stop:
            row["reason"] = f"{stop.status}: {stop.reason}"[:500]
        out.append(row)
    if defendant.alive():
        defendant.request({"op": "unload"})
    return out
