"""The optimize job: one problem, searched on a pool of evaluators, every result persisted as it lands.

The loop keeps the pool fed (one job per evaluator plus one waiting, so none idles between
dispatches), plans a new generation whenever the drafts run out, and records each result in the
store before anything else looks at it. The population is checkpointed at each generation; a
resumed run rebuilds it from the checkpoint and replays the evaluations recorded after it, so at
most the evaluations in flight are lost and nothing recorded is evaluated again.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

from ..cluster import Job, Pool, Result
from ..config import Config
from ..model.candidate import Candidate, Evaluation
from ..model.problem import Problem, load_problem
from ..proposers import Ask, Context, make_proposers, reference_candidate
from ..search.loop import Planned, Progress, SearchLoop
from ..search.tuning import Tuner, make_storage
from ..store import open_store
from . import result
from .disk import check_evaluation, is_disk_full
from .hints import read_hints


class RunError(RuntimeError):
    """The run cannot start or go on (a reference that fails, a run dir in the wrong state)."""


class Interrupted(Exception):
    """A signal asked the run to stop; raised by `drive` between two steps (never inside a pool call)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_stop = {"signum": 0}


def request_stop(signum: int) -> None:
    """Ask every running `drive` to stop at its next step (safe to call from a signal handler)."""
    _stop["signum"] = signum


def problem_id(problem: Problem) -> str:
    return f"{problem.name}-{problem.digest[:8]}"


class Optimizer:
    """One problem's search on a shared pool: the loop's decisions (search/loop.py), carried out with
    the store, the pool and the proposers."""

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
        self.store = open_store(self.run_dir)
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
        self.loop = SearchLoop(cfg, self.tuner, self.study_name)
        self.jobs: dict[int, Job] = {}  # in flight, by key
        self.next_key = 0
        self.baselines: dict[str, Any] = {}
        self.reference: Candidate | None = None
        self.error = ""  # set when the problem cannot be searched (its reference fails)
        self.started = time.monotonic()
        self.confirmed: dict[str, Evaluation] = self.store.confirmations(self.pid)  # candidate id -> confirmation
        self._confirm_list: list[Candidate] | None = None
        # The time limit's clock (see spent_s): evaluation spans from the store, planning time here.
        self.spans: list[tuple[float, float]] = []
        self.planning_s = 0.0

    # -- what the loop knows, for the driver and reports ------------------------------------------------
    @property
    def progress(self) -> Progress:
        return self.loop.progress

    @property
    def results(self) -> dict[str, Evaluation]:
        return self.loop.results

    @property
    def population(self) -> Any:
        return self.loop.population

    @property
    def inflight(self) -> dict[int, Job]:
        return self.jobs

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
        if state is not None:
            for p, s in zip(self.proposers, state.get("proposers", [])):
                p.load_state_dict(s if isinstance(s, dict) else {"rng": s})  # a list: an rng state alone
        self.spans = self.store.evaluation_spans(self.pid)
        self.planning_s = float(state.get("planning_s", 0.0)) if state is not None else 0.0
        if self.resume:  # before the loop restores its tuning tasks: stale trials are asked again
            self.tuner.fail_stale(f"{self.pid}:")
        invalid = self.loop.begin(self.reference, ref_eval, state, self.store.evaluation_rows(self.pid), self.seeds)
        for seed, ev, island in invalid:
            self._record_local(seed, ev, {"island": island})
        self._report()

    @property
    def finished(self) -> bool:
        if self.error:
            return True
        if not self.loop.started:
            return False
        return self._out_of_time() or self.loop.over_budget() or self.loop.out_of_work()

    def handle(self, outcome: Result) -> None:
        """Record one result (the store first); the reference's result starts the search."""
        job, ev = outcome.job, outcome.evaluation
        check_evaluation(ev, outcome.worker.hardware)  # before anything is recorded of it
        self.jobs.pop(job.key, None)
        ev.hardware = outcome.worker.hardware  # the routing label (a node's hw: resource), not the device name
        if job.kind == "confirm":
            self.store.save_confirmation(self.pid, job.candidate, ev)
            self.confirmed[job.candidate.id] = ev
            return
        cand = job.candidate
        chosen = next((r for r in ev.screened if r.get("chosen")), None)
        if chosen is not None:  # a screen: the evaluation is of the configuration it chose
            cand = cand.with_params(chosen["params"])
        self._record_local(cand, ev, job.meta, key=job.key)
        if job.meta.get("reference"):
            self._begin(ev)

    def feed(self, capacity: int) -> int:
        """Submit up to `capacity` jobs (drafts while searching, then confirmations); how many."""
        if not self.loop.started or self.error:
            return 0
        if self.finished:
            return self._feed_confirmations(capacity)
        submitted = 0
        while submitted < capacity and self.loop.has_budget():
            if self.loop.needs_plan() and not self._plan_generation():
                break
            job = self.loop.next_job()
            if job is not None:
                self._submit(*job)
                submitted += 1
        return submitted

    def _checkpoint(self) -> None:
        if not self.loop.started:
            return
        state = self.loop.state(self.store.last_seq(self.pid))
        state.update(planning_s=self.planning_s, proposers=[p.state_dict() for p in self.proposers])
        self.store.save_state(self.run_id, state)

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

    def hints(self) -> list[str]:
        """The run's hints: the config's, then any added while it runs (`evo-kernels hint`), read at
        every generation so guidance takes effect without a restart."""
        return list(self.cfg.hints) + read_hints(self.run_dir)

    def study_name(self, draft: Candidate) -> str:
        return f"{self.pid}:{draft.id}:{self.hardware}"

    def _plan_generation(self) -> bool:
        """Plan a generation, ask the proposers, queue their drafts; whether anything was queued."""
        t0 = time.monotonic()
        try:
            if not self.proposers:  # tuning given candidates only (`tune`, `port` without budget)
                queued, _ = self.loop.add_drafts(self.loop.plan_generation(0), [], {})
                return queued > 0
            plan = self.loop.plan_generation()
            drafts, rejected = self._propose(plan)
            queued, errors = self.loop.add_drafts(plan, drafts, rejected)
            for draft, ev, island in errors:  # not code, or a malformed TUNABLE: recorded, never run
                if ev.status == "proposal_error":
                    ev.hardware = self.hardware
                self._record_local(draft, ev, {"island": island})
            return queued > 0
        finally:
            self.planning_s += time.monotonic() - t0
            self._checkpoint()

    def _propose(self, plan: Planned) -> tuple[list[list[Candidate]], dict[str, str]]:
        """Each proposer gets its share of the plan's asks at once (they may answer concurrently)."""
        context = Context(plan.generation, self.baselines, plan.elites, self.results, hints=tuple(self.hints()),
                          techniques=dict(self.loop.technique_best))
        drafts: list[list[Candidate]] = [[] for _ in plan.asks]
        rejected: dict[str, str] = {}
        for k, proposer in enumerate(self.proposers):
            proposer.observe(context)
            mine = list(range(k, len(plan.asks), len(self.proposers)))
            if not mine:
                continue
            asks = [Ask(plan.asks[i][1], plan.asks[i][2], 1) for i in mine]
            for i, out in zip(mine, proposer.propose_many(self.problem, asks)):
                drafts[i] = out
            rejected.update(proposer.take_rejections())
        return drafts, rejected

    def _submit(self, cand: Candidate, meta: dict[str, Any]) -> None:
        screen = [t["params"] for t in meta.get("screen", [])]
        configs = [p for i, p in enumerate(screen) if p not in screen[:i]]
        job = Job(key=self.next_key, problem=self.problem_path, candidate=cand, hardware=self.hardware, meta=meta,
                  kind="screen" if configs else "evaluate", configs=configs)
        self.next_key += 1
        self.jobs[job.key] = job
        self.loop.submitted(job.key, cand, meta)
        self.pool.submit(job)
        self._report()

    def _record_local(self, cand: Candidate, ev: Evaluation, meta: dict[str, Any], key: int | None = None) -> None:
        self.store.add_evaluation(self.pid, cand, ev, meta)  # persisted first
        now = time.time()
        self.spans.append((now - ev.duration_s, now))
        self.loop.record(cand, ev, meta, key)
        self._report()

    def _report(self) -> None:
        self.loop.update_best()
        if self.on_progress is not None:
            self.on_progress(self.progress)

    def best_member(self) -> tuple[Candidate, Evaluation] | None:
        """The fittest candidate of the search so far and its evaluation (None before it started)."""
        return self.loop.population.best() if self.loop.started else None

    def trials_of(self, seed: Candidate) -> list[tuple[Candidate, Evaluation]]:
        """A given candidate's evaluations: itself and its tuning trials, in order."""
        study = self.study_name(seed)
        return [(c, e) for _, c, e, meta in self.store.evaluation_rows(self.pid)
                if c.id == seed.id or meta.get("study") == study]

    # -- confirmation and outputs --------------------------------------------------------------
    def to_confirm(self) -> list[Candidate]:
        """The candidates to time again before a result is reported (result.py decides which), fixed
        once the search has finished."""
        if self._confirm_list is None:
            self._confirm_list = result.to_confirm(self.cfg, self.store.evaluation_rows(self.pid),
                                                   self.reference.id if self.reference else "")
        return self._confirm_list

    @property
    def done(self) -> bool:
        """Finished searching, and every confirmation the result needs has come back."""
        if self.error:
            return True
        if not self.finished:
            return False
        return not self.jobs and all(c.id in self.confirmed for c in self.to_confirm())

    def _feed_confirmations(self, capacity: int) -> int:
        if any(j.kind != "confirm" for j in self.jobs.values()):
            return 0  # (a search result still in flight may be the best: the list waits for it)
        submitted = 0
        pending = {j.candidate.id for j in self.jobs.values()}
        for cand in self.to_confirm():
            if submitted >= capacity:
                break
            if cand.id in self.confirmed or cand.id in pending:
                continue
            job = Job(key=self.next_key, problem=self.problem_path, candidate=cand, hardware=self.hardware,
                      kind="confirm", meta={"confirm": True})
            self.next_key += 1
            self.jobs[job.key] = job
            self.pool.submit(job)
            submitted += 1
        return submitted

    def finish(self) -> dict[str, Any]:
        """Write best.py and summary.json from the store (result.py)."""
        summary = result.summarize(self)
        for p in self.proposers:  # e.g. the LLM's requests, tokens and cost, under "llm"
            report = p.report()
            if report and p.name not in summary:
                summary[p.name] = report
        self.store.save_summary(self.pid, summary)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "best.py").write_text(summary.pop("_source"))
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def seed_report(self) -> list[dict[str, Any]]:
        """How each given implementation (--start, a ported candidate) fared: its first evaluation's
        status and reason, and the best speedup over its tuning trials. Never silently dropped."""
        rows = []
        for seed in self.seeds:
            mine = self.trials_of(seed)
            first = mine[0][1] if mine else None
            ok = [e.speedup for _, e in mine if e.ok and e.speedup]
            rows.append({"technique": seed.technique, "status": first.status if first else "not evaluated",
                         "reason": first.reason if first else "", "best_speedup": max(ok) if ok else None})
        return rows

    def stop_reason(self) -> tuple[str, str]:
        """Why the search ended: (budget | time_limit | no_new_drafts | error, a sentence)."""
        if self.error:
            return "error", self.error
        if self.loop.over_budget():
            return "budget", f"the budget of {self.cfg.budget} evaluations is spent"
        if self._out_of_time():
            return "time_limit", (f"the time limit of {self.cfg.time_limit_s:g} s for this problem is reached "
                                  f"({self.spent_s():.0f} s spent)")
        if self.loop.out_of_work():
            return "no_new_drafts", (f"the proposers had no new draft for {self.cfg.search.max_generations_without_drafts} "
                                     f"generations, with {self.cfg.budget - self.progress.done} evaluations of the "
                                     "budget left (add a proposer, e.g. --llm MODEL, or hints)")
        return "running", "the search has not finished"

    def close(self) -> None:
        try:
            self._checkpoint()
        except (OSError, sqlite3.Error) as e:
            if not is_disk_full(e):
                raise
            # No room for this checkpoint: the last one stands, and --resume replays what came after it
        finally:
            self.store.close()


def drive(optimizers: list[Optimizer], pool: Pool, poll_s: float = 0.5) -> None:
    """Run several searches on one pool until each is finished.

    The pool is kept fed across problems (one job per evaluator plus one waiting), so evaluators
    never idle at one problem's tail while another has work. Problems take turns submitting, the one
    with the fewest evaluations done or running first (breadth first).
    """
    by_problem = {o.problem_path: o for o in optimizers}
    for o in optimizers:
        o.start()
    while True:
        if _stop["signum"]:
            raise Interrupted(_stop["signum"])
        active = [o for o in optimizers if not o.done]
        inflight = sum(len(o.inflight) for o in optimizers)
        if not active and not inflight:
            return
        target = 2 * max(1, len(pool.workers))
        progressed = True
        while inflight < target and progressed:  # round robin, one job per problem per turn
            progressed = False
            # The least served problem first: a suite stopped early has every problem equally informed.
            for o in sorted(active, key=lambda o: o.progress.done + len(o.jobs)):
                if inflight >= target:
                    break
                n = o.feed(1)
                inflight += n
                progressed = progressed or n > 0
        if not inflight:
            if all(o.done for o in optimizers):
                return
            continue  # nothing could be submitted now: planning moves each search toward its end
        for outcome in pool.poll(timeout=poll_s):
            by_problem[outcome.job.problem].handle(outcome)
