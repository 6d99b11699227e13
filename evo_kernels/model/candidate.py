"""Candidate (source + params + lineage) and Evaluation (status, timings, speedup).

Both are plain data: they cross process boundaries (sandbox worker, Ray actors) as dicts and are
stored as rows, so every field is JSON-serialisable.
"""
from __future__ import annotations

import hashlib
import json
import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

# Every status an evaluation can end with. Only `ok` carries a fitness. `proposal_error`: a proposer's
# draft that is not code (an LLM answer with none, or no answer), recorded without being run.
# Top-level modules a candidate may import (the policy refuses anything else by name, so new ways to
# reach threads, files or the network do not need a rule each; the LLM's prompts list them).
ALLOWED_IMPORTS = {"torch", "triton", "math", "numbers", "functools", "itertools", "operator", "typing",
                   "typing_extensions", "dataclasses", "collections", "enum", "abc", "numpy", "einops",
                   "cupy", "__future__"}
# An evaluation's note where its evaluator found the disk its workers write to short of space after
# it failed: the failure may be the disk's, so the search stops (resumable) rather than record it.
DISK_FULL_NOTE = "disk_full: "
STATUSES = ("ok", "incorrect", "rejected", "compile_error", "runtime_error", "timeout", "crash", "proposal_error")


@dataclass(frozen=True)
class Candidate:
    """A drop-in module source defining `ModelNew`, with the parameter values it is run with."""

    source: str
    params: dict[str, Any] = field(default_factory=dict)
    parents: tuple[str, ...] = ()
    proposer: str = "user"
    technique: str = "custom"
    generation: int = 0

    @property
    def id(self) -> str:
        """Content hash: the same source and parameters are the same candidate."""
        blob = json.dumps({"source": self.source, "params": self.params}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_params(self, params: dict[str, Any]) -> "Candidate":
        """The same draft run with other parameter values (a tuning trial)."""
        return dataclasses.replace(self, params=dict(params))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parents"] = list(self.parents)
        d["id"] = self.id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(
            source=d["source"],
            params=dict(d.get("params") or {}),
            parents=tuple(d.get("parents") or ()),
            proposer=d.get("proposer", "user"),
            technique=d.get("technique", "custom"),
            generation=int(d.get("generation", 0)),
        )


@dataclass
class Timing:
    """Summary of one timed run (milliseconds)."""

    median_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    reps: int
    wall_median_ms: float  # host wall clock around call + device-wide sync; cross-check for events
    host_median_ms: float = 0.0  # host time to issue the call (launches); above device time: host-bound
    idle_cpu: float = 0.0  # cores' worth of CPU the process used while idle between calls (hidden work)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evaluation:
    """The outcome of verifying (and, if correct, timing) one candidate on one device."""

    status: str
    reason: str = ""
    candidate_id: str = ""
    device: str = ""
    hardware: str = ""
    timing: dict[str, Any] | None = None
    speedup: float | None = None
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    # What the speedup is against, as measured by the same worker: eager_ms, compile_ms, best_ms,
    # noise, floor_ms and the device facts. Set for every timed evaluation.
    baseline: dict[str, Any] | None = None
    profile: list[dict[str, Any]] | None = None  # top kernels by device time per call (torch.profiler)
    precision: str = ""  # the run's policy: as_run (the accuracy contract) or strict
    # Errors against the float64 oracle, the worst over the trials: "candidate" and "baseline" (eager as
    # run), each {norm, q999, max, mismatches}; empty where no oracle ran.
    oracle_error: dict[str, Any] = field(default_factory=dict)
    mode: str = ""  # the mode the candidate was timed in (train or eval)
    trials: list[str] = field(default_factory=list)  # what each verification trial ran
    peak_memory: dict[str, int] = field(default_factory=dict)  # bytes of device memory, per sandbox process
    same_as: str = ""  # "eager" or "compile": runs the same kernels as that baseline (never a win over it)
    # A confirmation's rounds (interleaved with the baselines'), speedup, 95% interval and verdict.
    confirmation: dict[str, Any] | None = None
    # A screening evaluation's configurations: {"params", "ms" (short timing, or None), "reason"};
    # the one verified and timed in full (this evaluation's candidate) has "chosen": True.
    screened: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown evaluation status {self.status!r}; expected one of {STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median_ms(self) -> float | None:
        return None if self.timing is None else self.timing["median_ms"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Evaluation":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
