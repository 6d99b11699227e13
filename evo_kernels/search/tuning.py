"""optuna studies over a candidate's declared parameters.

A candidate declares its parameters (model/tunables.py). Each (problem, candidate, hardware) gets one study; each trial is one evaluation whose
value is the median latency in ms. Failed configurations are recorded as failed trials with their
reason. Storage is SQLite in the run directory by default, or any optuna storage URL (an RDB for a
cluster, `journal:PATH` for journal storage on a shared file system).
"""
from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any, Iterator

import optuna

from ..model.candidate import Candidate, Evaluation
from ..model.tunables import satisfies

log = logging.getLogger(__name__)


def make_storage(url: str, run_dir: Path) -> Any:
    if not url:
        return optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'optuna.sqlite'}",
                                          engine_kwargs={"connect_args": {"timeout": 30}})
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend
        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
    return optuna.storages.RDBStorage(url)


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler stops the study when the grid is done, which only works inside study.optimize;
    with ask/tell the tuner checks `is_exhausted` itself."""

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        pass


def _sampler(name: str, space: dict[str, list[Any]], seed: int) -> optuna.samplers.BaseSampler:
    if name == "grid":
        return _AskTellGridSampler({k: list(v) for k, v in space.items()}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)


class Tuner:
    """Asks optuna for parameter values of tunable candidates and tells it the outcomes."""

    def __init__(self, storage: Any, sampler: str = "tpe", seed: int = 0) -> None:
        self.storage = storage
        self.sampler = sampler
        self.seed = seed
        self._studies: dict[str, optuna.Study] = {}
        self._trials: dict[tuple[str, int], optuna.Trial] = {}  # asked, not yet told
        optuna.logging.set_verbosity(optuna.logging.WARNING)

    def study(self, name: str, space: dict[str, list[Any]]) -> optuna.Study:
        if name not in self._studies:
            self._studies[name] = optuna.create_study(
                study_name=name, storage=self.storage, direction="minimize", load_if_exists=True,
                sampler=_sampler(self.sampler, space, self.seed))
        return self._studies[name]

    def enqueue(self, study: str, space: dict[str, list[Any]], params: dict[str, Any]) -> None:
        """Make `params` the study's next trial (unless a trial with them exists)."""
        self.study(study, space).enqueue_trial(params, skip_if_exists=True)

    def asked(self, study: str, space: dict[str, list[Any]]) -> int:
        """Trials of the study asked so far (finished, failed or still running), not counting those a
        stopped run left unevaluated (`fail_stale`), which are asked again."""
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
        return sum(1 for t in self.study(study, space).get_trials(deepcopy=False, states=states)
                   if not t.user_attrs.get("stale"))

    def fail_stale(self, prefix: str) -> int:
        """Mark trials a stopped or killed run left RUNNING in the studies named `prefix`... as
        failed and `stale` (their evaluations never came back), and queue their configurations again,
        so that a resumed run evaluates them instead of losing them (a suite run in slices left every
        slice's last drafts so). A configuration already queued again once is not queued a third
        time. Only the caller's own studies: in a suite every problem has a tuner on the same
        storage, and another problem's trials may be in flight as this one resumes. Trials this
        tuner asked are its own, in flight, never stale."""
        n = 0
        for summary in optuna.get_all_study_summaries(self.storage):
            if not summary.study_name.startswith(prefix):
                continue
            study = self.study(summary.study_name, {})
            study_id = self.storage.get_study_id_from_name(summary.study_name)
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                if (summary.study_name, t.number) in self._trials:
                    continue
                trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
                self.storage.set_trial_user_attr(trial_id, "reason", "the run stopped before its evaluation came back")
                if not t.user_attrs.get("retry"):
                    self.storage.set_trial_user_attr(trial_id, "stale", True)
                    study.enqueue_trial(t.params, user_attrs={"retry": True}, skip_if_exists=False)
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                n += 1
        return n

    def ask(self, study_name: str, base: Candidate, space: dict[str, list[Any]],
            constraints: list[str] = ()) -> tuple[Candidate, int] | None:
        """A trial: the base candidate with sampled parameters, or None when the space is exhausted.

        Configurations that break a constraint are pruned here, before any device time.
        """
        study = self.study(study_name, space)
        if isinstance(study.sampler, optuna.samplers.GridSampler) and study.sampler.is_exhausted(study):
            return None
        dists = {k: optuna.distributions.CategoricalDistribution(v) for k, v in space.items()}
        for _ in range(20):
            trial = study.ask(fixed_distributions=dists)
            params = dict(trial.params)
            if satisfies(params, list(constraints)):
                self._trials[(study_name, trial.number)] = trial
                cand = Candidate(source=base.source, params=params, parents=base.parents, proposer=base.proposer,
                                 technique=base.technique, generation=base.generation)
                return cand, trial.number
            trial.set_user_attr("reason", "pruned: breaks a constraint of the space")
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
            if isinstance(study.sampler, optuna.samplers.GridSampler) and study.sampler.is_exhausted(study):
                return None
        return None

    @contextlib.contextmanager
    def _unless_finished(self, study: optuna.Study, trial_number: int) -> Iterator[None]:
        """Telling a trial that someone else finished already (another tuner on the same storage
        marked it failed) leaves it as it is, rather than stopping the run on optuna's error: the
        evaluation is in the run's store regardless."""
        try:
            yield
        except optuna.exceptions.UpdateFinishedTrialError:
            state = self.storage.get_trial(self.storage.get_trial_id_from_study_id_trial_number(
                self.storage.get_study_id_from_name(study.study_name), trial_number)).state
            log.warning("optuna trial %d of %s was already %s; its result stays in the run's store only",
                        trial_number, study.study_name, state.name)

    def tell(self, study_name: str, trial_number: int, evaluation: Evaluation) -> None:
        study = self._studies[study_name]
        trial = self._trials.pop((study_name, trial_number), None)
        ms = evaluation.median_ms
        with self._unless_finished(study, trial_number):
            if trial is not None:
                trial.set_user_attr("status", evaluation.status)
                trial.set_user_attr("speedup", evaluation.speedup)
            if evaluation.ok and ms is not None and math.isfinite(ms):
                study.tell(trial_number, ms, skip_if_finished=True)
            else:
                if trial is not None:
                    trial.set_user_attr("reason", evaluation.reason[:500])
                study.tell(trial_number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)

    def tell_screened(self, study_name: str, trial_number: int, row: dict[str, Any] | None) -> None:
        """A configuration only screened (timed briefly, not verified): its short timing is the
        trial's value, marked `screened`; one that failed to run, or was chosen and failed the full
        protocol, is a failed trial with its reason."""
        study = self._studies[study_name]
        trial = self._trials.pop((study_name, trial_number), None)
        ms = None if (row or {}).get("failed") else (row or {}).get("ms")  # (failed in full: not a value)
        with self._unless_finished(study, trial_number):
            if trial is not None:
                trial.set_user_attr("screened", True)
                if ms is None:
                    trial.set_user_attr("reason", str((row or {}).get("reason") or "not screened")[:500])
            if ms is not None and math.isfinite(ms):
                study.tell(trial_number, ms, skip_if_finished=True)
            else:
                study.tell(trial_number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
