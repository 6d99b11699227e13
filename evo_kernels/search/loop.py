"""One problem's search as a state machine: plan generations, hand out work, record results.

No store, pool, clock or network here: the runner (run/optimize.py) asks proposers for the drafts a
plan calls for, submits the jobs this hands out, writes every result to the store and then tells it
here. The tuner (optuna, search/tuning.py) is the one collaborator: a draft that declares tunables
becomes a tuning task whose trials are asked one at a time, interleaved with other work.

    loop = SearchLoop(cfg, tuner, study_name)
    loop.begin(reference, ref_eval, state=None, records=[...], seeds=[...])
    while not loop.out_of_work(...):
        if loop.needs_plan():
            plan = loop.plan_generation()                         # parents per draft
            loop.add_drafts(plan, drafts_from_proposers, rejected)  # proposal errors come back to record
        item = loop.next_job()                                    # (candidate, meta) or None
        ... evaluate ... loop.record(candidate, evaluation, meta)
"""
from __future__ import annotations

import collections
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..config import Config, SearchConfig
from ..model.candidate import Candidate, Evaluation
from ..model.tunables import TunableError, first_screen, parse_screen_first, parse_tunable
from .population import Member, Population


class TunerLike(Protocol):
    def study(self, name: str, space: dict[str, list[Any]]) -> Any: ...
    def enqueue(self, study: str, space: dict[str, list[Any]], params: dict[str, Any]) -> None: ...
    def asked(self, study: str, space: dict[str, list[Any]]) -> int: ...
    def ask(self, study: str, base: Candidate, space: dict[str, list[Any]],
            constraints: list[str] = ()) -> tuple[Candidate, int] | None: ...
    def tell(self, study: str, trial: int, evaluation: Evaluation) -> None: ...
    def tell_screened(self, study: str, trial: int, row: dict[str, Any] | None) -> None: ...


@dataclass
class Tuning:
    """A tunable draft being tuned: trials are asked one at a time, interleaved with other work."""

    study: str
    base: Candidate
    space: dict[str, list[Any]]
    constraints: list[str]
    island: int
    left: int

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "base": self.base.to_dict(), "space": self.space,
                "constraints": self.constraints, "island": self.island, "left": self.left}


@dataclass(frozen=True)
class Planned:
    """One generation's plan: per draft its island, its parents and the island's recent failures."""

    generation: int
    asks: list[tuple[int, list[Member], list[Member]]]
    elites: list[Member]


@dataclass
class Progress:
    generation: int = 0
    done: int = 0
    running: int = 0
    budget: int = 0
    best_speedup: float = 0.0
    best_technique: str = ""
    by_status: dict[str, int] = field(default_factory=dict)


def technique_allowed(technique: str, only: list[str], exclude: list[str]) -> bool:
    """`only`/`exclude` name techniques or their families: "compile" covers "compile_tuned"."""
    parts = [p for p in technique.split("+") if p]

    def named(part: str, names: list[str]) -> bool:
        return any(part == n or part.startswith(n + "_") for n in names)

    if any(named(p, exclude) for p in parts):
        return False
    return not only or all(named(p, only) for p in parts)


class SearchLoop:
    def __init__(self, cfg: Config, tuner: TunerLike, study_name: Callable[[Candidate], str]) -> None:
        self.cfg = cfg
        self.tuner = tuner
        self.study_name = study_name
        self.population: Population | None = None
        self.reference: Candidate | None = None
        self.results: dict[str, Evaluation] = {}
        self.planned: set[str] = set()  # drafts already queued or tuned: never planned twice
        self.echoes: dict[str, list[tuple[str, int]]] = {}  # trials asking for a configuration in flight
        self.tasks: dict[str, Tuning] = {}  # tuning tasks by study, also once all their trials are asked
        self.ready: collections.deque[tuple[Candidate, dict[str, Any]] | Tuning] = collections.deque()
        self.inflight: dict[int, tuple[Candidate, dict[str, Any]]] = {}
        self.progress = Progress(budget=cfg.budget)
        self.empty = 0  # consecutive generations that planned nothing new
        # Technique -> the best speedup over the faster baseline it reached here (ok evaluations only):
        # what proposers learn from (the rules proposer stops drafting a template that lost alone).
        self.technique_best: dict[str, float] = {}

    # -- start ---------------------------------------------------------------------------------------
    def begin(self, reference: Candidate, ref_eval: Evaluation, state: dict[str, Any] | None,
              records: list[tuple[int, Candidate, Evaluation, dict[str, Any]]],
              seeds: list[Candidate]) -> list[tuple[Candidate, Evaluation, int]]:
        """The reference is measured: build the population (or restore it from a checkpoint `state`),
        replay the recorded evaluations the checkpoint has not seen, and queue the given seeds (a new
        run) or the pending work of the checkpoint (a resumed one). Returns the seeds that will not run,
        with their evaluations (a malformed TUNABLE), for the runner to record."""
        self.reference = reference
        last_seq = 0
        invalid: list[tuple[Candidate, Evaluation, int]] = []
        if state is not None:
            self.population = Population.from_state(state["population"])
            last_seq = state["last_seq"]
            self.progress.generation = state.get("generation", 0)
            self.planned = set(state.get("planned", []))
        else:
            core = {f.name: getattr(self.cfg.search, f.name) for f in dataclasses.fields(SearchConfig)}
            self.population = Population(SearchConfig(**core), reference, ref_eval)
            for i, seed in enumerate(seeds):
                self.planned.add(seed.id)
                error = self.enqueue(seed, i % self.cfg.search.islands)
                if error is not None:
                    invalid.append((seed, error, i % self.cfg.search.islands))
        self.progress.done, self.progress.by_status = 0, {}  # recounted from the records
        for seq, cand, ev, meta in records:
            self.results[cand.id] = ev
            self._count(ev)
            self._note_technique(cand, ev)
            if seq > last_seq and cand.id != reference.id:
                self.population.add(cand, ev, int(meta.get("island", 0)) % self.cfg.search.islands)
        if state is not None:
            self._restore_pending(state.get("ready", []))
        self.update_best()
        return invalid

    @property
    def started(self) -> bool:
        return self.population is not None

    # -- planning ------------------------------------------------------------------------------------
    def needs_plan(self) -> bool:
        return not self.ready

    def has_budget(self) -> bool:
        return self.progress.done + len(self.inflight) < self.cfg.budget

    def plan_generation(self, n: int | None = None) -> Planned:
        """Close the last generation (truncation, migration) and choose parents for the next."""
        pop = self.population
        assert pop is not None
        if self.progress.generation > 0:
            pop.end_generation()
        self.progress.generation += 1
        plan = pop.plan_generation(self.cfg.search.drafts_per_generation if n is None else n)
        asks = [(island, parents, pop.feedback(island)) for island, parents in plan]
        elites = sorted(pop.archive().values(), key=lambda m: -(m[1].speedup or 0.0))
        return Planned(self.progress.generation, asks, elites)

    def add_drafts(self, plan: Planned, drafts: list[list[Candidate]],
                   rejected: dict[str, str]) -> tuple[int, list[tuple[Candidate, Evaluation, int]]]:
        """Queue each ask's drafts (never one seen or planned before, nor one of a technique the run
        excludes). Returns how many were queued, and the drafts that will not run, with the evaluation
        the runner records for each: `proposal_error` for those that are not code (`rejected`: an
        unusable LLM answer), `compile_error` for a malformed TUNABLE."""
        queued = 0
        errors: list[tuple[Candidate, Evaluation, int]] = []
        pop = self.population
        assert pop is not None
        for (island, _, _), out in zip(plan.asks, drafts):
            for draft in out:
                if pop.seen(draft.id) or draft.id in self.planned:
                    continue
                if not technique_allowed(draft.technique, self.cfg.search.only, self.cfg.search.exclude):
                    continue
                self.planned.add(draft.id)
                if draft.id in rejected:
                    errors.append((draft, Evaluation(status="proposal_error", reason=rejected[draft.id],
                                                     candidate_id=draft.id, device=self.cfg.device), island))
                    continue
                invalid = self.enqueue(draft, island)
                if invalid is None:
                    queued += 1
                else:
                    errors.append((draft, invalid, island))
        self.empty = 0 if queued else self.empty + 1
        return queued, errors

    def enqueue(self, draft: Candidate, island: int) -> Evaluation | None:
        """Queue a draft; one that declares tunables becomes a tuning task (its first trial is its own
        values: a ported candidate's tuned ones, else the defaults). A malformed TUNABLE or SCREEN_FIRST is
        not queued: its compile_error comes back, for the runner to record."""
        try:
            space, constraints = parse_tunable(draft.source)
        except TunableError as e:
            return Evaluation(status="compile_error", reason=f"TUNABLE: {e}")
        try:
            changes = parse_screen_first(draft.source)
        except TunableError as e:
            return Evaluation(status="compile_error", reason=f"SCREEN_FIRST: {e}")
        if not space or self.cfg.tuning.trials_per_candidate <= 1:
            self.ready.append((draft, {"island": island}))
            return None
        study = self.study_name(draft)
        defaults = {k: (draft.params[k] if k in draft.params else v[0]) for k, v in space.items()}
        if self.cfg.tuning.sampler != "grid":  # a grid visits the defaults anyway
            self.tuner.enqueue(study, space, defaults)
            screen = min(self.cfg.tuning.screen, self.cfg.tuning.trials_per_candidate)
            for params in first_screen(changes, defaults, space, constraints, screen):
                self.tuner.enqueue(study, space, params)
        task = Tuning(study, draft, space, constraints, island, self.cfg.tuning.trials_per_candidate)
        self.tasks[study] = task
        self.ready.append(task)
        return None

    # -- handing out work ----------------------------------------------------------------------------
    def next_job(self) -> tuple[Candidate, dict[str, Any]] | None:
        """The next candidate to evaluate and its meta (island, tuning trial), or None when what was at
        the head of the queue needs no evaluation (measured already, or in flight)."""
        item = self.ready.popleft()
        if isinstance(item, Tuning):
            return self._ask_trial(item)
        cand, meta = item
        if cand.id in self.results or any(c.id == cand.id for c, _ in self.inflight.values()):
            return None
        return cand, meta

    def _ask_trial(self, task: Tuning) -> tuple[Candidate, dict[str, Any]] | None:
        if self.cfg.tuning.screen > 1:
            return self._ask_screen(task)
        asked = self.tuner.ask(task.study, task.base, task.space, task.constraints)
        if asked is None:
            return None
        cand, number = asked
        task.left -= 1
        if task.left > 0:
            self.ready.append(task)  # interleave its next trial with other work
        if self._answered(task.study, number, cand):
            return None
        return cand, {"island": task.island, "study": task.study, "trial": number}

    def _answered(self, study: str, number: int, cand: Candidate) -> bool:
        """Whether a trial the sampler asked for a configuration already measured (told its result
        now) or being measured (told when it comes back) needs no evaluation of its own."""
        if cand.id in self.results:
            self.tuner.tell(study, number, self.results[cand.id])
            return True
        if any(c.id == cand.id for c, _ in self.inflight.values()):
            self.echoes.setdefault(cand.id, []).append((study, number))
            return True
        return False

    def _ask_screen(self, task: Tuning) -> tuple[Candidate, dict[str, Any]] | None:
        """Up to `tuning.screen` trials at once, for one evaluation that screens them all and verifies
        the fastest. Trials asking for a configuration measured or in flight are answered from it."""
        configs: list[dict[str, Any]] = []
        trials: list[dict[str, Any]] = []
        k = min(self.cfg.tuning.screen, task.left)
        for _ in range(k):
            asked = self.tuner.ask(task.study, task.base, task.space, task.constraints)
            if asked is None:
                task.left = 0
                break
            cand, number = asked
            task.left -= 1
            if not self._answered(task.study, number, cand):
                if cand.params not in configs:
                    configs.append(cand.params)
                trials.append({"trial": number, "params": cand.params})
        if task.left > 0:
            self.ready.append(task)
        if not configs:
            return None
        first = task.base.with_params(configs[0])
        return first, {"island": task.island, "study": task.study, "screen": trials}

    def submitted(self, key: int, cand: Candidate, meta: dict[str, Any]) -> None:
        self.inflight[key] = (cand, meta)

    # -- results -------------------------------------------------------------------------------------
    def record(self, cand: Candidate, ev: Evaluation, meta: dict[str, Any], key: int | None = None) -> None:
        """A result the runner has stored: results, counts, the population, the tuner."""
        if key is not None:
            self.inflight.pop(key, None)
        # A result can make new drafts possible (a new parent): generations planned empty while it
        # was in flight do not count towards stopping for lack of drafts.
        self.empty = 0
        self.results[cand.id] = ev
        self._count(ev)
        self._note_technique(cand, ev)
        if self.population is not None and not meta.get("reference"):
            self.population.add(cand, ev, int(meta.get("island", 0)) % self.cfg.search.islands)
        if "screen" in meta:
            self._tell_screen(meta, cand, ev)
        elif "study" in meta:
            self.tuner.tell(meta["study"], meta["trial"], ev)
        for study, number in self.echoes.pop(cand.id, []):
            self.tuner.tell(study, number, ev)
        self.update_best()

    def _tell_screen(self, meta: dict[str, Any], chosen: Candidate, ev: Evaluation) -> None:
        """The chosen configuration's trial gets the evaluation; the others their screening times."""
        rows = {json.dumps(r["params"], sort_keys=True): r for r in ev.screened}
        for t in meta["screen"]:
            if t["params"] == chosen.params or not rows:  # (nothing screened: the evaluation failed first)
                self.tuner.tell(meta["study"], t["trial"], ev)
            else:
                self.tuner.tell_screened(meta["study"], t["trial"], rows.get(json.dumps(t["params"], sort_keys=True)))

    def _note_technique(self, cand: Candidate, ev: Evaluation) -> None:
        if ev.ok and ev.speedup is not None:
            t = cand.technique
            self.technique_best[t] = max(ev.speedup, self.technique_best.get(t, 0.0))

    def _count(self, ev: Evaluation) -> None:
        if ev.status != "proposal_error":  # no device time spent: not part of the budget
            self.progress.done += 1
        self.progress.by_status[ev.status] = self.progress.by_status.get(ev.status, 0) + 1

    def update_best(self) -> None:
        self.progress.running = len(self.inflight)
        if self.population is not None:
            best, best_ev = self.population.best()
            self.progress.best_speedup = best_ev.speedup or 0.0
            self.progress.best_technique = best.technique

    def out_of_work(self) -> bool:
        """Nothing in flight or queued, and the proposers had nothing new for several generations."""
        return not self.inflight and not self.ready and self.empty >= self.cfg.search.max_generations_without_drafts

    def over_budget(self) -> bool:
        return self.progress.done >= self.cfg.budget

    # -- checkpoint ----------------------------------------------------------------------------------
    def state(self, last_seq: int) -> dict[str, Any]:
        """What a resumed run needs (the runner adds its own: proposers, planning time)."""
        assert self.population is not None
        return {"population": self.population.to_state(), "last_seq": last_seq,
                "generation": self.progress.generation, "planned": sorted(self.planned), "ready": self._pending()}

    def _pending(self) -> list[dict[str, Any]]:
        """Planned work not yet evaluated (queued drafts, tuning left, drafts and trials in flight): a
        killed run that resumes evaluates it, instead of losing drafts already marked as planned. A
        tuning task counts its trials in flight as left: the resumed run's optuna marks them stale
        and asks them again (`Tuner.fail_stale`), and `_restore_pending` subtracts what the study
        holds beyond that."""
        out: list[dict[str, Any]] = []
        tuning: dict[str, dict[str, Any]] = {}
        for item in self.ready:
            if isinstance(item, Tuning):
                tuning[item.study] = item.to_dict()
            else:
                out.append({"candidate": item[0].to_dict(), "meta": item[1]})
        for cand, meta in self.inflight.values():
            if "study" in meta:
                task = self.tasks.get(meta["study"])
                if task is not None:
                    entry = tuning.setdefault(meta["study"], {**task.to_dict(), "left": 0})
                    entry["left"] += len(meta.get("screen", ())) or 1
            elif not meta.get("reference"):
                out.append({"candidate": cand.to_dict(), "meta": meta})
        return out + list(tuning.values())

    def _restore_pending(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            if "study" in item:
                # Trials asked after the checkpoint are in the study: only the rest is still to do.
                asked = self.tuner.asked(item["study"], item["space"])
                left = min(item["left"], self.cfg.tuning.trials_per_candidate - asked)
                task = Tuning(item["study"], Candidate.from_dict(item["base"]), item["space"], item["constraints"],
                              item["island"], left)
                self.tasks[task.study] = task
                if left > 0:
                    self.ready.append(task)
            else:
                cand = Candidate.from_dict(item["candidate"])
                if cand.id not in self.results:
                    self.ready.append((cand, item["meta"]))
