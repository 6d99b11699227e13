"""Where evaluations run: a pool of evaluators, one per GPU (or CPU/Mac host), each owning a sandbox
worker. No search logic lives here: the driver submits jobs and polls for results.

- `LocalPool`: one Evaluator in this process's care (no Ray); evaluations run one at a time.
- `RayPool`: one Ray actor per GPU (`num_gpus=1`) or per CPU/Mac host, labelled with its hardware
  (custom resource `hw:<label>`); jobs are routed by label and dispatched asynchronously
  (`ray.wait`) so every actor stays busy; an actor that dies is recreated and its job retried
  (`cluster.max_retries`), then reported as `crash`.
"""
from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .model.candidate import Candidate, Evaluation
from .config import Config
from .model import devices


@dataclass
class Job:
    key: int  # the driver's handle for this job
    problem: str  # problem file path
    candidate: Candidate
    hardware: str | None = None  # run only on evaluators with this label (None: any)
    # "evaluate"; "confirm": verify again, then time in rounds interleaved with the baselines;
    # "screen": time each of `configs` briefly, then evaluate the fastest (tuning in one evaluation)
    kind: str = "evaluate"
    attempts: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # opaque to the pool (island, trial, ...)
    configs: list[dict[str, Any]] = field(default_factory=list)  # a screen's parameter values


@dataclass
class WorkerInfo:
    name: str
    hardware: str
    device: str
    node: str = ""
    gpu: str = ""  # a GPU evaluator's CUDA_VISIBLE_DEVICES: the device Ray gave it


@dataclass
class Result:
    job: Job
    evaluation: Evaluation
    worker: WorkerInfo


class Pool(ABC):
    """The driver's view of the evaluators: submit jobs, poll finished results."""

    @property
    @abstractmethod
    def workers(self) -> list[WorkerInfo]: ...

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Queue a job; it is dispatched to a free evaluator with a matching label."""

    @abstractmethod
    def poll(self, timeout: float | None = None) -> list[Result]:
        """Dispatch what can be dispatched; return the results finished within `timeout` seconds."""

    @abstractmethod
    def pending(self) -> int:
        """Jobs queued or running."""

    @abstractmethod
    def baselines(self, problem: str, hardware: str | None = None) -> dict[str, Any]:
        """Baseline timings of `problem` on an evaluator of `hardware` (Baselines.to_dict())."""

    def running(self) -> int:
        return self.pending()

    def stats(self) -> dict[str, Any]:
        """Accounting per evaluator: jobs, busy seconds, idle seconds while matching work was queued."""
        return {"wall_s": 0.0, "actors": []}

    def hardware(self) -> list[str]:
        return sorted({w.hardware for w in self.workers})

    def close(self) -> None:
        pass

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_job(evaluator: Any, kind: str, problem: str, candidate: Candidate,
            configs: list[dict[str, Any]] | None = None) -> Evaluation:
    if kind == "confirm":
        return evaluator.confirm(problem, candidate)
    if kind == "screen":
        return evaluator.screen(problem, candidate, list(configs or [candidate.params]))
    return evaluator.evaluate(problem, candidate)


def _evaluator_error(worker: str, error: BaseException) -> Evaluation:
    """The evaluator itself raised (e.g. the reference fails on this device): that job's `crash`."""
    return Evaluation(status="crash", reason=f"crash: evaluator error on {worker}: {type(error).__name__}: {error}")


class LocalPool(Pool):
    """One evaluator, run from this process; `poll` evaluates the next queued job."""

    def __init__(self, cfg: Config, cache_dir: str | Path | None = None) -> None:
        from .harness.backends import resolve_device
        from .harness.evaluator import Evaluator
        device = resolve_device(cfg.device)  # the sandbox worker needs a concrete device, not "auto"
        self.evaluator = Evaluator(device, cfg, cache_dir).start()
        info = self.evaluator.describe()
        self._info = WorkerInfo(name="local-0", hardware=info["hardware"], device=device, node="local")
        self.queue: collections.deque[Job] = collections.deque()
        self.busy_s = 0.0
        self.jobs = 0
        self.idle_pending_s = 0.0  # between polls, with work queued: the driver is the bottleneck
        self._t0 = self._mark = time.monotonic()

    @property
    def workers(self) -> list[WorkerInfo]:
        return [self._info]

    def submit(self, job: Job) -> None:
        if job.hardware not in (None, self._info.hardware):
            raise ValueError(f"no evaluator with hardware {job.hardware!r}; this pool has {self._info.hardware!r}")
        if not self.queue:
            self._mark = time.monotonic()  # the evaluator now waits on work that is queued
        self.queue.append(job)

    def poll(self, timeout: float | None = None) -> list[Result]:
        if not self.queue:
            return []
        job = self.queue.popleft()
        job.attempts += 1
        started = time.monotonic()
        self.idle_pending_s += started - self._mark
        try:
            evaluation = run_job(self.evaluator, job.kind, job.problem, job.candidate, job.configs)
        except Exception as e:  # noqa: BLE001 - e.g. BaselineError: one job's failure, as in RayPool
            evaluation = _evaluator_error(self._info.name, e)
        self._mark = time.monotonic()
        self.busy_s += self._mark - started
        self.jobs += 1
        return [Result(job, evaluation, self._info)]

    def pending(self) -> int:
        return len(self.queue)

    def baselines(self, problem: str, hardware: str | None = None) -> dict[str, Any]:
        return self.evaluator.baselines(problem).to_dict()

    def stats(self) -> dict[str, Any]:
        now = time.monotonic()
        idle = self.idle_pending_s + (now - self._mark if self.queue else 0.0)
        actor = {**asdict(self._info), "jobs": self.jobs, "busy_s": self.busy_s, "idle_pending_s": idle, "deaths": 0}
        return {"wall_s": now - self._t0, "actors": [actor]}

    def close(self) -> None:
        self.evaluator.close()


# -- Ray ------------------------------------------------------------------------------------------------
_MAX_DEATHS_IN_ROW = 3  # an actor slot that dies this often without finishing a job is given up


def _host_device(preference: str) -> str:
    """The device of an evaluator on a host without GPUs: the one asked for when it is a per-host kind,
    else the Mac's GPU where there is one, else the CPU."""
    if preference != "auto" and not devices.kind(preference).per_gpu:
        return preference
    if sys.platform == "darwin":  # torch is only worth importing here where MPS can exist
        from .harness.backends import available
        if available("mps"):
            return "mps"
    return "cpu"


def _run(cmd: list[str]) -> list[str] | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else None


def _local_gpus() -> list[str]:
    """Names of the GPUs this process may use, asked outside it so the driver holds no CUDA context."""
    if shutil.which("nvidia-smi") is not None:
        rows = _run(["nvidia-smi", "--query-gpu=index,uuid,name", "--format=csv,noheader"])
        if rows is not None:
            rows = [[field.strip() for field in row.split(",", 2)] for row in rows]
            # nvidia-smi lists every GPU; Ray (and torch) honour CUDA_VISIBLE_DEVICES.
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible is not None:
                keep = {v.strip() for v in visible.split(",") if v.strip()}
                rows = [r for r in rows if r[0] in keep or r[1] in keep]
            return [name for _, _, name in rows]
    elif not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/kfd")):
        return []  # no GPU driver here: spare a CPU-only host the torch import
    return _run([sys.executable, "-c", "import torch\nfor i in range(torch.cuda.device_count()):"
                                       " print(torch.cuda.get_device_name(i))"]) or []


class EvaluatorActor:
    """Lives in a Ray worker process: one Evaluator (hence one sandbox worker) for one GPU or host.

    `hardware` is the label of the node's `hw:` resource where it has one; without it the actor
    labels itself from its own device. In a GPU actor Ray has set CUDA_VISIBLE_DEVICES, so "cuda"
    is the GPU it was given.
    """

    def __init__(self, cfg: Config, device: str, name: str, hardware: str | None = None,
                 cache_dir: str | Path | None = None) -> None:
        import ray

        from .harness.evaluator import Evaluator
        device = device if device != "auto" and devices.kind(device).per_gpu else _host_device(device)
        self.evaluator = Evaluator(device, cfg, cache_dir).start()
        self._info = WorkerInfo(name=name, hardware=hardware or self.evaluator.describe()["hardware"],
                                device=device, node=ray.get_runtime_context().get_node_id(),
                                gpu=os.environ.get("CUDA_VISIBLE_DEVICES", "") if devices.kind(device).per_gpu else "")

    def info(self) -> dict[str, Any]:
        return asdict(self._info)

    def run(self, kind: str, problem: str, candidate: dict[str, Any],
            configs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return run_job(self.evaluator, kind, problem, Candidate.from_dict(candidate), configs).to_dict()

    def baselines(self, problem: str) -> dict[str, Any]:
        return self.evaluator.baselines(problem).to_dict()

    def close(self) -> None:
        self.evaluator.close()


@dataclass
class _Slot:
    """One evaluator actor as the driver sees it: what it runs, and its accounting."""

    info: WorkerInfo
    options: dict[str, Any]  # Ray actor options: resources and node affinity, reused to recreate it
    args: tuple[Any, ...]  # EvaluatorActor's arguments
    handle: Any = None
    job: Job | None = None
    ref: Any = None  # the running evaluate() call
    ran_on: Any = None  # the handle it was sent to: one death is handled once, even if seen twice
    sent: float = 0.0  # when the running job was dispatched
    mark: float = 0.0  # accounted up to here
    jobs: int = 0
    busy_s: float = 0.0
    idle_pending_s: float = 0.0
    deaths: int = 0
    deaths_in_row: int = 0
    retired: bool = False
    measured: set[str] = field(default_factory=set)  # problems whose baselines its evaluator has timed


class RayPool(Pool):
    """Evaluator actors across a Ray cluster (or a local Ray instance), routed by hardware label."""

    def __init__(self, cfg: Config, cache_dir: str | Path | None = None, address: str | None = None) -> None:
        import ray
        self._ray = ray
        self.cfg = cfg
        self.queue: collections.deque[Job] = collections.deque()
        self._done: list[Result] = []  # results decided outside ray.wait (a job given up after deaths)
        self._slots: list[_Slot] = []
        self._owns_ray = not ray.is_initialized()
        address = address or cfg.cluster.address or None
        if self._owns_ray:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                self._init_local()
        self._actor_cls = ray.remote(EvaluatorActor)
        try:
            self._start_actors(cache_dir)
        except BaseException:
            self.close()
            raise
        self._t0 = time.monotonic()
        for slot in self._slots:
            slot.mark = self._t0

    # -- actors ---------------------------------------------------------------------------------------
    def _init_local(self) -> None:
        """A Ray instance on this host only, advertising its hardware as `hw:<label>`."""
        from .harness.backends import get_backend, hardware_label
        device = self.cfg.device
        per_host = device != "auto" and not devices.kind(device).per_gpu
        gpus = [] if per_host else _local_gpus()
        if not per_host and device != "auto" and not gpus:
            raise ValueError(f"device {device!r} requested but this machine has no CUDA GPU")
        if gpus:
            labels = collections.Counter(hardware_label(name) for name in gpus)
        else:  # one host: its evaluators share one unit of the label
            labels = collections.Counter([get_backend(_host_device(device)).describe().hardware])
        self._ray.init(num_cpus=os.cpu_count() or 1, num_gpus=len(gpus), include_dashboard=False,
                       log_to_driver=False, object_store_memory=128 << 20,
                       resources={f"hw:{label}": float(n) for label, n in labels.items()})

    def _node_slots(self, node: dict[str, Any], cache_dir: str | Path | None) -> list[_Slot]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        res = node["Resources"]
        labels = [k[3:] for k in res if k.startswith("hw:")]
        # A node with two kinds of GPU cannot say which one Ray hands an actor: let it describe itself.
        label = labels[0] if len(labels) == 1 else None
        per_host = self.cfg.device != "auto" and not devices.kind(self.cfg.device).per_gpu
        gpus = 0 if per_host else int(res.get("GPU", 0))
        if res.get("GPU") and not gpus:
            label = None  # a GPU node's label names its GPUs, not the CPU this run asked for
        if gpus:
            n, device = gpus * self.cfg.cluster.actors_per_gpu, devices.GPU_KIND
            # No CPU reservation: a GPU actor mostly waits on its GPU, and a node may advertise few CPUs.
            options: dict[str, Any] = {"num_gpus": 1 / self.cfg.cluster.actors_per_gpu, "num_cpus": 0}
        else:
            n, device = min(self.cfg.cluster.cpu_actors or 1, int(res.get("CPU", 0))), self.cfg.device
            options = {"num_cpus": 1}
        if label is not None and n:
            options["resources"] = {f"hw:{label}": res[f"hw:{label}"] / n}
        # Pinned to the node, so "one actor per GPU of each node" holds, also when recreated. Ray does
        # not restart it (max_restarts 0): _lost() recreates it, so a job never meets a half-restarted actor.
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        options["max_restarts"] = 0
        ip = node.get("NodeManagerAddress", "")
        slots = []
        for i in range(n):
            name = f"{label or device}-{i}@{ip}"
            slots.append(_Slot(info=WorkerInfo(name, label or "", device, node["NodeID"]), options=options,
                               args=(self.cfg, device, name, label, cache_dir)))
        return slots

    def _start_actors(self, cache_dir: str | Path | None) -> None:
        ray = self._ray
        nodes = sorted((n for n in ray.nodes() if n["Alive"]), key=lambda n: n["NodeManagerAddress"])
        self._slots = [s for node in nodes for s in self._node_slots(node, cache_dir)]
        if not self._slots:
            raise RuntimeError("no evaluator can run: no node of the Ray cluster offers a GPU or a CPU")
        for slot in self._slots:
            slot.handle = self._create(slot)
        limit = self.cfg.sandbox.startup_timeout_s + 60
        try:
            infos = ray.get([s.handle.info.remote() for s in self._slots], timeout=limit)
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(f"evaluator actors did not start within {limit:g} s (resources not available?): "
                               f"{[s.info.name for s in self._slots]}") from None
        except ray.exceptions.RayError as e:
            raise RuntimeError(f"an evaluator actor failed to start: {e}") from None
        for slot, info in zip(self._slots, infos):
            slot.info = WorkerInfo(**info)

    def _create(self, slot: _Slot) -> Any:
        return self._actor_cls.options(**slot.options).remote(*slot.args)

    def _live(self) -> list[_Slot]:
        return [s for s in self._slots if not s.retired]

    def _lost(self, slot: _Slot) -> None:
        """The slot's actor died: recreate it on its node, or give the slot up (node gone, dies repeatedly)."""
        ray = self._ray
        slot.deaths += 1
        slot.deaths_in_row += 1
        try:  # an actor that is unreachable but alive would keep its GPU: make sure it is gone
            ray.kill(slot.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - already dead
            pass
        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        slot.measured.clear()  # a new actor times its baselines again
        if slot.info.node in alive and slot.deaths_in_row <= _MAX_DEATHS_IN_ROW:
            slot.handle = self._create(slot)
        else:
            slot.retired = True

    # -- dispatch -------------------------------------------------------------------------------------
    @property
    def workers(self) -> list[WorkerInfo]:
        return [s.info for s in self._live()]

    def _account(self, now: float) -> None:
        """Charge each free actor the time since the last event if matching work was queued.

        The queue only changes in submit/poll, so between two events whether an actor had matching
        work queued is constant and this is exact. Running actors are charged when their job ends.
        """
        wanted = {job.hardware for job in self.queue}
        for slot in self._slots:
            if slot.ref is None and not slot.retired and (None in wanted or slot.info.hardware in wanted):
                slot.idle_pending_s += now - slot.mark
            slot.mark = now

    def _dispatch(self) -> None:
        """Give each free actor a queued job it can run: preferably one of a problem whose baselines
        it has already timed (each evaluator times a problem's baselines once, on its own device,
        before its first candidate of that problem), else the oldest. No actor waits for affinity."""
        now = time.monotonic()
        self._account(now)
        for slot in self._live():
            if slot.ref is not None or not self.queue:
                continue
            runnable = [j for j in self.queue if j.hardware in (None, slot.info.hardware)]
            if not runnable:
                continue
            # The oldest job, or one of a problem whose baselines this actor has timed among the first
            # few (one per live actor): affinity without starving other problems of a suite.
            window = runnable[:len(self._live())]
            job = next((j for j in window if j.problem in slot.measured), runnable[0])
            del self.queue[next(i for i, j in enumerate(self.queue) if j is job)]
            job.attempts += 1
            slot.job, slot.sent, slot.ran_on = job, now, slot.handle
            slot.measured.add(job.problem)
            slot.ref = slot.handle.run.remote(job.kind, job.problem, job.candidate.to_dict(), job.configs)

    def submit(self, job: Job) -> None:
        labels = self.hardware()
        if not labels or (job.hardware is not None and job.hardware not in labels):
            raise ValueError(f"no evaluator with hardware {job.hardware!r}; this pool has {labels}")
        self._account(time.monotonic())
        self.queue.append(job)
        self._dispatch()  # start it now: the driver may do other work before it polls

    def poll(self, timeout: float | None = None) -> list[Result]:
        ray = self._ray
        self._dispatch()
        running = {s.ref: s for s in self._slots if s.ref is not None}
        if running:
            refs = list(running)
            first, _ = ray.wait(refs, num_returns=1, timeout=0 if self._done else timeout)
            # Everything else that has finished too, without waiting.
            ready = set(first) | set(ray.wait(refs, num_returns=len(refs), timeout=0)[0] if first else ())
            now = time.monotonic()
            self._account(now)
            for ref in refs:
                if ref in ready:
                    self._finish(running[ref], now)
            self._dispatch()
        done, self._done = self._done, []
        return done

    def _finish(self, slot: _Slot, now: float) -> None:
        ray = self._ray
        job, ref, took = slot.job, slot.ref, now - slot.sent
        assert job is not None
        slot.job = slot.ref = None
        try:
            evaluation = Evaluation.from_dict(ray.get(ref))
        except ray.exceptions.RayTaskError as e:  # the evaluator itself raised (e.g. a broken reference)
            cause = getattr(e, "cause", None) or e
            evaluation = _evaluator_error(slot.info.name, cause)
            slot.busy_s += took
        except ray.exceptions.RayError as e:  # the actor (or its node) died
            slot.busy_s += took  # work lost, not dispatch overhead
            if slot.handle is slot.ran_on:  # not yet replaced (baselines() may have seen the death first)
                self._lost(slot)
            if job.attempts <= self.cfg.cluster.max_retries:
                self.queue.appendleft(job)
            else:
                evaluation = Evaluation(status="crash", reason=(
                    f"crash: the evaluator actor died ({type(e).__name__}) on each of {job.attempts} attempt(s); "
                    f"last on {slot.info.name}"))
                self._done.append(Result(job, evaluation, slot.info))
            if slot.retired:
                self._give_up_orphans()
            return
        else:
            # The actor's own time is work; the rest of the round trip is dispatch overhead.
            busy = min(evaluation.duration_s, took)
            slot.busy_s += busy
            slot.idle_pending_s += took - busy
            slot.deaths_in_row = 0
        slot.jobs += 1
        self._done.append(Result(job, evaluation, slot.info))

    def _give_up_orphans(self) -> None:
        """Queued jobs whose hardware no live actor has any more end as `crash` rather than wait forever."""
        labels = set(self.hardware())
        for job in [j for j in self.queue if (j.hardware not in labels if j.hardware else not labels)]:
            self.queue.remove(job)
            worker = WorkerInfo(name="", hardware=job.hardware or "", device="")
            self._done.append(Result(job, Evaluation(status="crash", reason=(
                f"crash: no evaluator actor with hardware {job.hardware!r} is left (its actors kept dying)")), worker))

    def pending(self) -> int:
        return len(self.queue) + self.running()

    def running(self) -> int:
        return sum(s.ref is not None for s in self._slots)

    def baselines(self, problem: str, hardware: str | None = None) -> dict[str, Any]:
        ray = self._ray
        for _ in range(self.cfg.cluster.max_retries + 1):
            candidates = [s for s in self._live() if hardware in (None, s.info.hardware)]
            if not candidates:
                raise ValueError(f"no evaluator with hardware {hardware!r}; this pool has {self.hardware()}")
            slot = min(candidates, key=lambda s: s.ref is not None)  # a free one if there is one
            try:
                return ray.get(slot.handle.baselines.remote(problem))
            except ray.exceptions.RayTaskError:
                raise  # e.g. BaselineError: the reference is broken on this hardware
            except ray.exceptions.RayError:
                self._lost(slot)
        raise RuntimeError(f"baselines of {problem} on {hardware!r}: the evaluator actor died on each attempt")

    def stats(self) -> dict[str, Any]:
        now = time.monotonic()
        self._account(now)
        return {"wall_s": now - self._t0,
                "actors": [{**asdict(s.info), "jobs": s.jobs, "busy_s": s.busy_s, "idle_pending_s": s.idle_pending_s,
                            "deaths": s.deaths} for s in self._slots]}

    def close(self) -> None:
        ray = self._ray
        handles = [s.handle for s in self._slots if s.handle is not None and not s.retired]
        idle = [s.handle for s in self._slots if s.handle is not None and not s.retired and s.ref is None]
        try:  # idle evaluators stop their sandbox workers; a busy one's worker exits when its socket closes
            ray.get([h.close.remote() for h in idle], timeout=30)
        except Exception:  # noqa: BLE001 - closing what is already broken
            pass
        for h in handles:
            try:
                ray.kill(h)
            except Exception:  # noqa: BLE001
                pass
        self._slots = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
