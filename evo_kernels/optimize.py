"""The optimize job: one problem, searched on a pool of evaluators, every result persisted as it lands.

The loop keeps the pool fed (one job per evaluator plus one waiting, so none idles between
dispatches), plans a new generation whenever the drafts run out, and records each result in the
store before anything else looks at it. The population is checkpointed at each generation; a
resumed run rebuilds it from the checkpoint and replays the evaluations recorded after it, so at
most the evaluations in flight are lost and nothing recorded is evaluated again.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna

from .candidate import Candidate, Evaluation
from .cluster import Job, Pool, Result
from .config import Config
from .problem import Problem, load_problem
from .proposers import Ask, Context, make_proposers, reference_candidate
from .search import Population, SearchConfig
from .store import Store
from .tuning import Tuner, TunableError, make_storage, parse_tunable


class RunError(RuntimeError):
    """The run cannot start or go on (a reference that fails, a run dir in the wrong state)."""


_COMPILED_REFERENCE = """class ModelNew(Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._compiled = torch.compile(super().forward)

    def forward(self, *inputs):
        return self._compiled(*inputs)
"""


HINTS_FILE = "hints.txt"


def add_hint(run_dir: Path, text: str) -> None:
    """Append guidance to a (possibly running) run; the search reads it at its next generation."""
    if not (run_dir / "store.sqlite").exists():
        raise RunError(f"{run_dir}: no run here (no store.sqlite)")
    text = " ".join(text.split())
    if not text:
        raise RunError("an empty hint")
    with open(run_dir / HINTS_FILE, "a") as f:
        f.write(text + "\n")


def read_hints(run_dir: Path) -> list[str]:
    path = run_dir / HINTS_FILE
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def technique_allowed(technique: str, only: list[str], exclude: list[str]) -> bool:
    """`only`/`exclude` name techniques or their families: "compile" covers "compile_tuned"."""
    parts = [p for p in technique.split("+") if p]

    def named(part: str, names: list[str]) -> bool:
        return any(part == n or part.startswith(n + "_") for n in names)

    if any(named(p, exclude) for p in parts):
        return False
    return not only or all(named(p, only) for p in parts)


def problem_id(problem: Problem) -> str:
    return f"{problem.name}-{problem.digest[:8]}"


def drop_in_source(candidate: Candidate) -> str:
    """The candidate as a module runnable without evo_kernels: its source with its parameters set."""
    if not candidate.params:
        return candidate.source
    lines = [candidate.source.rstrip(), "", "", "# Parameters chosen by the search (override the defaults above)."]
    lines += [f"{k} = {v!r}" for k, v in sorted(candidate.params.items())]
    return "\n".join(lines) + "\n"


@dataclass
class _Tuning:
    """A tunable draft being tuned: trials are asked one at a time, interleaved with other work."""

    study: str
    base: Candidate
    space: dict[str, list[Any]]
    constraints: list[str]
    island: int
    left: int


@dataclass
class Progress:
    generation: int = 0
    done: int = 0
    running: int = 0
    budget: int = 0
    best_speedup: float = 0.0
    best_technique: str = ""
    by_status: dict[str, int] = field(default_factory=dict)


class Optimizer:
    def __init__(self, problem_path: str | Path, cfg: Config, run_dir: str | Path, pool: Pool,
                 resume: bool = False, on_progress: Callable[[Progress], None] | None = None,
                 out_dir: str | Path | None = None, hardware: str | None = None,
                 seeds: list[Candidate] | None = None) -> None:
        self.problem_path = str(Path(problem_path).resolve())
        self.problem = load_problem(problem_path)
        self.pid = problem_id(self.problem)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.out_dir = Path(out_dir) if out_dir else self.run_dir  # best.py and summary.json
        self.pool = pool
        self.on_progress = on_progress
        self.store = Store(self.run_dir / "store.sqlite")
        existing = self.store.run_for(self.pid)
        if not resume and existing is not None:
            raise RunError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose "
                           "another --run-dir")
        self.resume = resume
        self.run_id = int(existing["id"]) if existing is not None else self.store.start_run(
            "optimize", {"problem": self.problem_path, "config": cfg.to_dict()}, self.pid)
        self.store.add_problem(self.pid, self.problem_path, self.problem.name, self.problem.level, self.problem.source)
        labels = pool.hardware()
        if hardware is not None and hardware not in labels:
            raise RunError(f"no evaluator with hardware {hardware!r}; the pool has {labels}")
        self.hardware = hardware or labels[0]  # one search targets one hardware class
        self.seeds = list(seeds or [])  # candidates to evaluate (and tune) first: ported or given
        self.tuner = Tuner(make_storage(cfg.tuning.storage, self.run_dir), cfg.tuning.sampler, cfg.search.seed)
        self.proposers = make_proposers(cfg.search.proposers, cfg.search.seed, cfg.device, cfg, self.run_dir)
        self.results: dict[str, Evaluation] = {}
        self.planned: set[str] = set()  # drafts already queued or tuned: never planned twice
        self.echoes: dict[str, list[tuple[str, int]]] = {}  # trials asking for a configuration in flight
        self.ready: collections.deque[tuple[Candidate, dict[str, Any]] | _Tuning] = collections.deque()
        self.inflight: dict[int, Job] = {}
        self.next_key = 0
        self.progress = Progress(budget=cfg.budget)
        self.population: Population | None = None
        self.baselines: dict[str, Any] = {}
        self.reference: Candidate | None = None
        self.error = ""  # set when the problem cannot be searched (its reference fails)
        self.empty = 0  # consecutive generations that planned nothing new
        self.started = time.monotonic()
        # The time limit's clock (see spent_s): evaluation spans from the store, planning time here.
        self.spans: list[tuple[float, float]] = []
        self.planning_s = 0.0

    # -- steps (driven by `drive`, which shares one pool among several problems) -----------------
    def start(self) -> None:
        """Reuse a recorded reference evaluation, or submit the reference as the first job."""
        self.reference = reference_candidate(self.problem)
        for _, cand, ev, _ in self.store.evaluation_rows(self.pid):
            if cand.id == self.reference.id:
                self._begin(ev)
                return
        self._submit(self.reference, {"island": 0, "reference": True})

    def _begin(self, ref_eval: Evaluation) -> None:
        """The reference is measured: build (or restore) the population and start searching."""
        if not ref_eval.ok:
            self.error = (f"{self.problem_path}: the reference, run as a candidate, was not accepted "
                          f"({ref_eval.status}: {ref_eval.reason}); is the problem deterministic?")
            return
        self.baselines = ref_eval.baseline or {}
        row = self.store.run_for(self.pid)
        state = json.loads(row["state"]) if row is not None and row["state"] else None
        last_seq = 0
        if state is not None:
            self.population = Population.from_state(state["population"])
            last_seq = state["last_seq"]
            for p, s in zip(self.proposers, state.get("proposers", [])):
                p.load_state_dict(s if isinstance(s, dict) else {"rng": s})  # a list: an rng state alone
            self.progress.generation = state.get("generation", 0)
            self.planned = set(state.get("planned", []))
        else:
            core = {f.name: getattr(self.cfg.search, f.name) for f in dataclasses.fields(SearchConfig)}
            self.population = Population(SearchConfig(**core), self.reference, ref_eval)
            for i, seed in enumerate(self.seeds):
                self.planned.add(seed.id)
                self._enqueue(seed, i % self.cfg.search.islands)
        self.progress.done, self.progress.by_status = 0, {}  # recounted from the store
        self.spans = self.store.evaluation_spans(self.pid)
        self.planning_s = float(state.get("planning_s", 0.0)) if state is not None else 0.0
        for seq, cand, ev, meta in self.store.evaluation_rows(self.pid):
            self.results[cand.id] = ev
            self._count(ev)
            if seq > last_seq and cand.id != self.reference.id:
                self.population.add(cand, ev, int(meta.get("island", 0)) % self.cfg.search.islands)
        if state is not None:
            self._restore_pending(state.get("ready", []))
        if self.resume:
            self.tuner.fail_stale()
        self._report()

    @property
    def finished(self) -> bool:
        if self.error:
            return True
        if self.population is None:
            return False
        out_of_work = not self.inflight and not self.ready and self.empty >= self.cfg.search.max_generations_without_drafts
        return self._out_of_time() or self.progress.done >= self.cfg.budget or out_of_work

    def handle(self, result: Result) -> None:
        """Record one result (the store first); the reference's result starts the search."""
        self._record(result)
        if result.job.meta.get("reference"):
            self._begin(result.evaluation)

    def feed(self, capacity: int) -> int:
        """Submit up to `capacity` jobs; returns how many were submitted."""
        if self.population is None or self.finished:
            return 0
        submitted = 0
        while submitted < capacity and self.progress.done + len(self.inflight) < self.cfg.budget:
            if not self.ready:
                if not self._plan_generation():
                    self.empty += 1
                    break
                self.empty = 0
            item = self.ready.popleft()
            if isinstance(item, _Tuning):
                submitted += self._ask_trial(item)
                continue
            cand, meta = item
            if cand.id in self.results or any(j.candidate.id == cand.id for j in self.inflight.values()):
                continue
            self._submit(cand, meta)
            submitted += 1
        return submitted

    def _checkpoint(self) -> None:
        if self.population is None:
            return
        row = self.store.db.execute("SELECT MAX(seq) FROM evaluations WHERE problem_id = ?", (self.pid,)).fetchone()
        self.store.save_state(self.run_id, {
            "population": self.population.to_state(), "last_seq": int(row[0] or 0),
            "generation": self.progress.generation, "planned": sorted(self.planned), "planning_s": self.planning_s,
            "proposers": [p.state_dict() for p in self.proposers], "ready": self._pending_state()})

    def _pending_state(self) -> list[dict[str, Any]]:
        """Planned work not yet evaluated (queued drafts, tuning left, drafts in flight): a killed run
        that resumes evaluates it, instead of losing drafts already marked as planned."""
        out: list[dict[str, Any]] = []
        for item in self.ready:
            if isinstance(item, _Tuning):
                out.append({"study": item.study, "base": item.base.to_dict(), "space": item.space,
                            "constraints": item.constraints, "island": item.island, "left": item.left})
            else:
                out.append({"candidate": item[0].to_dict(), "meta": item[1]})
        for job in self.inflight.values():
            if "study" not in job.meta and not job.meta.get("reference"):  # a trial in flight is optuna's
                out.append({"candidate": job.candidate.to_dict(), "meta": job.meta})
        return out

    def _restore_pending(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            if "study" in item:
                # Trials asked after the checkpoint are in the study: only the rest is still to do.
                asked = len(self.tuner.study(item["study"], item["space"]).get_trials(deepcopy=False, states=(
                    optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)))
                left = min(item["left"], self.cfg.tuning.trials_per_candidate - asked)
                if left > 0:
                    self.ready.append(_Tuning(item["study"], Candidate.from_dict(item["base"]), item["space"],
                                              item["constraints"], item["island"], left))
            else:
                cand = Candidate.from_dict(item["candidate"])
                if cand.id not in self.results:
                    self.ready.append((cand, item["meta"]))

    def run(self) -> dict[str, Any]:
        """Search this one problem to the end; the summary."""
        drive([self], self.pool)
        if self.error:
            raise RunError(self.error)
        return self.finish()

    def spent_s(self) -> float:
        """The time charged to this problem: wall-clock time during which at least one of its
        evaluations was running (the union of their spans, so parallel evaluators are not counted
        twice), plus the time spent planning its generations. In a suite, where problems share the
        pool, a problem is not charged for the time the pool spent on the others; a resumed run
        goes on from what the store holds."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total + self.planning_s

    def _out_of_time(self) -> bool:
        return self.cfg.time_limit_s > 0 and self.spent_s() > self.cfg.time_limit_s

    def _ask_trial(self, task: _Tuning) -> int:
        asked = self.tuner.ask(task.study, task.base, task.space, task.constraints)
        if asked is None:
            return 0
        cand, number = asked
        task.left -= 1
        if task.left > 0:
            self.ready.append(task)  # interleave its next trial with other work
        meta = {"island": task.island, "study": task.study, "trial": number}
        if cand.id in self.results:  # the sampler proposed a configuration already measured
            self.tuner.tell(task.study, number, self.results[cand.id])
            return 0
        if any(j.candidate.id == cand.id for j in self.inflight.values()):  # ...or one being measured
            self.echoes.setdefault(cand.id, []).append((task.study, number))
            return 0
        self._submit(cand, meta)
        return 1

    def hints(self) -> list[str]:
        """The run's hints: the config's, then any added while it runs (`evo-kernels hint`), read at
        every generation so guidance takes effect without a restart."""
        return list(self.cfg.hints) + read_hints(self.run_dir)

    def study_name(self, draft: Candidate) -> str:
        return f"{self.pid}:{draft.id}:{self.hardware}"

    def _plan_generation(self) -> bool:
        t0 = time.monotonic()
        try:
            return self._plan()
        finally:
            self.planning_s += time.monotonic() - t0

    def _plan(self) -> bool:
        pop = self.population
        assert pop is not None
        if self.progress.generation > 0:
            pop.end_generation()
        self.progress.generation += 1
        planned = 0
        if not self.proposers:  # tuning given candidates only (`tune`, `port` without budget)
            self._checkpoint()
            return False
        plan = pop.plan_generation(self.cfg.search.drafts_per_generation)
        context = Context(self.progress.generation, self.baselines,
                          sorted(pop.archive().values(), key=lambda m: -(m[1].speedup or 0.0)), self.results,
                          hints=tuple(self.hints()))
        drafts: list[list[Candidate]] = [[] for _ in plan]
        rejected: dict[str, str] = {}
        for k, proposer in enumerate(self.proposers):  # each proposer gets its share of the plan at once
            proposer.observe(context)
            mine = list(range(k, len(plan), len(self.proposers)))
            if not mine:
                continue
            asks = [Ask(plan[i][1], pop.feedback(plan[i][0]), 1) for i in mine]
            for i, out in zip(mine, proposer.propose_many(self.problem, asks)):
                drafts[i] = out
            rejected.update(proposer.take_rejections())
        for (island, _), out in zip(plan, drafts):
            for draft in out:
                if pop.seen(draft.id) or draft.id in self.planned:
                    continue
                if not technique_allowed(draft.technique, self.cfg.search.only, self.cfg.search.exclude):
                    continue
                self.planned.add(draft.id)
                if draft.id in rejected:  # not code (an unusable answer, no answer): recorded, never run
                    self._record_local(draft, Evaluation(status="proposal_error", reason=rejected[draft.id],
                                                         candidate_id=draft.id, device=self.cfg.device,
                                                         hardware=self.hardware), island)
                    continue
                planned += self._enqueue(draft, island)
        self._checkpoint()
        return planned > 0

    def _enqueue(self, draft: Candidate, island: int) -> int:
        try:
            space, constraints = parse_tunable(draft.source)
        except TunableError as e:
            self._record_local(draft, Evaluation(status="compile_error", reason=f"TUNABLE: {e}"), island)
            return 0
        if not space or self.cfg.tuning.trials_per_candidate <= 1:
            self.ready.append((draft, {"island": island}))
            return 1
        study = self.study_name(draft)
        # The first trial is the draft's own values (a ported candidate's tuned ones), else the defaults.
        defaults = {k: (draft.params[k] if k in draft.params else v[0]) for k, v in space.items()}
        if self.cfg.tuning.sampler != "grid":  # a grid visits the defaults anyway
            self.tuner.study(study, space).enqueue_trial(defaults, skip_if_exists=True)
        self.ready.append(_Tuning(study, draft, space, constraints, island, self.cfg.tuning.trials_per_candidate))
        return 1

    def _submit(self, cand: Candidate, meta: dict[str, Any]) -> None:
        job = Job(key=self.next_key, problem=self.problem_path, candidate=cand, hardware=self.hardware, meta=meta)
        self.next_key += 1
        self.inflight[job.key] = job
        self.pool.submit(job)
        self._report()

    def _record(self, result: Result) -> None:
        job, ev = result.job, result.evaluation
        self.inflight.pop(job.key, None)
        ev.hardware = result.worker.hardware  # the routing label (a node's hw: resource), not the device name
        self._record_local(job.candidate, ev, int(job.meta.get("island", 0)), job.meta)
        if "study" in job.meta:
            self.tuner.tell(job.meta["study"], job.meta["trial"], ev)
        for study, number in self.echoes.pop(job.candidate.id, []):
            self.tuner.tell(study, number, ev)

    def _record_local(self, cand: Candidate, ev: Evaluation, island: int, meta: dict[str, Any] | None = None) -> None:
        self.store.add_evaluation(self.pid, cand, ev, meta or {"island": island})  # persisted first
        now = time.time()
        self.spans.append((now - ev.duration_s, now))
        self.results[cand.id] = ev
        self._count(ev)
        if self.population is not None and not (meta or {}).get("reference"):
            self.population.add(cand, ev, island % self.cfg.search.islands)
        self._report()

    def _count(self, ev: Evaluation) -> None:
        if ev.status != "proposal_error":  # no device time spent: not part of the budget
            self.progress.done += 1
        self.progress.by_status[ev.status] = self.progress.by_status.get(ev.status, 0) + 1

    def _report(self) -> None:
        self.progress.running = len(self.inflight)
        if self.population is not None:
            best, best_ev = self.population.best()
            self.progress.best_speedup = best_ev.speedup or 0.0
            self.progress.best_technique = best.technique
        if self.on_progress is not None:
            self.on_progress(self.progress)

    # -- outputs ----------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Write best.py and summary.json. When no candidate beat the faster baseline, the baseline
        itself is the result (the reference, or the reference under torch.compile), at 1.0x."""
        assert self.population is not None
        best, best_ev = self.population.best()
        eager_ms = self.baselines["eager_ms"]
        compile_ms = self.baselines.get("compile_ms")
        baseline_ms = self.baselines["best_ms"]
        # The reference beating the faster baseline is timing noise, not a result of the search.
        if best_ev.speedup is not None and best_ev.speedup > 1.0 and best.id != self.reference.id:
            source, technique, speedup, best_ms = drop_in_source(best), best.technique, best_ev.speedup, best_ev.median_ms
            params, best_id = best.params, best.id
        else:
            use_compile = compile_ms is not None and compile_ms < eager_ms
            source = reference_candidate(self.problem).source
            if use_compile:
                source = source.replace("class ModelNew(Model):\n    pass\n", _COMPILED_REFERENCE)
            technique = "baseline:" + ("compile" if use_compile else "eager")
            speedup, best_ms, params, best_id = 1.0, baseline_ms, {}, None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "best.py").write_text(source)
        by_proposer: dict[str, int] = {}
        for _, cand, _, _ in self.store.evaluation_rows(self.pid):
            by_proposer[cand.proposer] = by_proposer.get(cand.proposer, 0) + 1
        found = [e.speedup for _, e in self._searched() if e.ok and e.speedup]
        found_best = max(found) if found else None
        summary = {
            "problem": self.problem_path, "problem_id": self.pid, "level": self.problem.level,
            "device": self.cfg.device,
            "found_speedup": found_best,  # best of the search's own correct candidates (fast_p)
            "found_speedup_vs_eager": found_best * baseline_ms / eager_ms if found_best else None,
            "hardware": self.hardware, "best_speedup": speedup, "best_speedup_vs_eager": eager_ms / best_ms,
            "best_ms": best_ms, "best_candidate": best_id, "best_technique": technique, "best_params": params,
            "eager_ms": eager_ms, "compile_ms": compile_ms,
            "evaluations": self.progress.done, "budget": self.cfg.budget, "generations": self.progress.generation,
            "by_status": dict(sorted(self.progress.by_status.items())), "by_proposer": dict(sorted(by_proposer.items())),
            "reduced_precision_allowed": self.cfg.verify.allow_reduced_precision,
            "seeds": self.seed_report(),
            "hints": self.hints(),
            "elapsed_s": round(time.monotonic() - self.started, 2),
            "spent_s": round(self.spent_s(), 2),
            # Where the result's time goes: the winner's top kernels, or the reference's.
            "top_kernels": (best_ev if best_id else self.results.get(self.reference.id, best_ev)).profile or [],
        }
        for p in self.proposers:  # e.g. the LLM's requests, tokens and cost, under "llm"
            report = p.report()
            if report and p.name not in summary:
                summary[p.name] = report
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def seed_report(self) -> list[dict[str, Any]]:
        """How each given implementation (--start, a ported candidate) fared: its first evaluation's
        status and reason, and the best speedup over its tuning trials. Never silently dropped."""
        rows = []
        for seed in self.seeds:
            mine = [(c, e) for _, c, e, meta in self.store.evaluation_rows(self.pid)
                    if c.id == seed.id or meta.get("study") == self.study_name(seed)]
            first = mine[0][1] if mine else None
            ok = [e.speedup for _, e in mine if e.ok and e.speedup]
            rows.append({"technique": seed.technique, "status": first.status if first else "not evaluated",
                         "reason": first.reason if first else "", "best_speedup": max(ok) if ok else None})
        return rows

    def _searched(self) -> list[tuple[Candidate, Evaluation]]:
        """Every evaluation of this problem except the reference's."""
        ref_id = self.reference.id if self.reference else None
        return [(c, e) for _, c, e, _ in self.store.evaluation_rows(self.pid) if c.id != ref_id]

    def close(self) -> None:
        self._checkpoint()
        self.store.close()


def drive(optimizers: list[Optimizer], pool: Pool, poll_s: float = 0.5) -> None:
    """Run several searches on one pool until each is finished.

    The pool is kept fed across problems (one job per evaluator plus one waiting), so evaluators
    never idle at one problem's tail while another has work. Problems take turns submitting.
    """
    by_problem = {o.problem_path: o for o in optimizers}
    for o in optimizers:
        o.start()
    while True:
        active = [o for o in optimizers if not o.finished]
        inflight = sum(len(o.inflight) for o in optimizers)
        if not active and not inflight:
            return
        target = 2 * max(1, len(pool.workers))
        progressed = True
        while inflight < target and progressed:  # round robin, one job per problem per turn
            progressed = False
            for o in active:
                if inflight >= target:
                    break
                n = o.feed(1)
                inflight += n
                progressed = progressed or n > 0
        if not inflight:
            if all(o.finished for o in optimizers):
                return
            continue  # nothing could be submitted now: planning moves each search toward its end
        for result in pool.poll(timeout=poll_s):
            by_problem[result.job.problem].handle(result)
