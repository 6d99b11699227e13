"""The one plugin point of the search: a Proposer turns parents (and recent failures) into drafts.

A draft is a `Candidate` whose source defines `ModelNew`; it may declare tunable parameters
(`TUNABLE = {...}`), which tuning.py then searches. Proposers never evaluate anything.

`propose` is the only method a proposer must write. The others have defaults that do nothing, for
proposers that need more of the search: `observe` (what the search knows before a generation),
`propose_many` (one generation's asks at once, e.g. to send them concurrently), `take_rejections`
(drafts that are not code, recorded as `proposal_error` without running), `state_dict` /
`load_state_dict` (checkpointed with the run) and `report` (shown in the run's summary).
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..model.candidate import Candidate, Evaluation
from ..model.problem import Problem

Member = tuple[Candidate, Evaluation]


@dataclass(frozen=True)
class Ask:
    """One planned draft: its parents (one: mutation; two: crossover) and its island's recent failures."""

    parents: list[Member]
    feedback: list[Member]
    n: int = 1


@dataclass(frozen=True)
class Context:
    """What the search knows before a generation is proposed."""

    generation: int
    baselines: dict[str, Any]  # eager_ms, compile_ms, best_ms, floor_ms, device_info (name, sm_count, ...)
    elites: list[Member]  # the elite archive, fittest first
    results: Mapping[str, Evaluation]  # every evaluation recorded so far, by candidate id
    hints: tuple[str, ...] = ()  # guidance in words from the engineer running the search
    # Technique -> the best speedup over the faster baseline it reached on this problem (ok evaluations).
    techniques: Mapping[str, float] = field(default_factory=dict)


class Proposer(ABC):
    """Subclasses set `name` and implement `propose`; randomness comes from `self.rng` only."""

    name: str = ""

    def __init__(self, seed: int = 0, device: str = "cpu") -> None:
        self.rng = random.Random(seed)
        self.device = device
        self._rejected: dict[str, str] = {}

    @abstractmethod
    def propose(self, problem: Problem, parents: list[Member], feedback: list[Member], n: int) -> list[Candidate]:
        """Up to `n` drafts derived from `parents` (one parent: mutation; two: crossover).

        `feedback` holds recent failed evaluations (status and reason) so a proposer can avoid
        repeating them. Returning fewer than `n` (or none) is fine: the search moves on.
        """

    def propose_many(self, problem: Problem, asks: list[Ask]) -> list[list[Candidate]]:
        """The drafts of each ask, in the asks' order (the search depends on that order)."""
        return [self.propose(problem, a.parents, a.feedback, a.n) for a in asks]

    def observe(self, context: Context) -> None:
        """Called before each generation is proposed; read-only."""

    def reject(self, candidate: Candidate, reason: str) -> Candidate:
        """Mark a returned draft as unusable: the search records it as `proposal_error` with `reason`."""
        self.__dict__.setdefault("_rejected", {})[candidate.id] = reason
        return candidate

    def take_rejections(self) -> dict[str, str]:
        """Candidate id -> reason for the drafts marked by `reject` since the last call."""
        out, self._rejected = getattr(self, "_rejected", {}), {}
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, checkpointed with the run so a resumed run continues the same."""
        return {"rng": _lists(self.rng.getstate())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(_tuples(state["rng"]))

    def report(self) -> dict[str, Any]:
        """Anything worth a place in the run's summary.json (e.g. tokens and cost); {} for none."""
        return {}


def _lists(state: Any) -> Any:
    return [_lists(x) for x in state] if isinstance(state, tuple) else state


def _tuples(state: Any) -> Any:
    return tuple(_tuples(x) for x in state) if isinstance(state, list) else state


def reference_source(problem: Problem) -> str:
    """The problem's own code with `ModelNew` = the reference: the search's first member."""
    return problem.source.rstrip() + "\n\n\nclass ModelNew(Model):\n    pass\n"


def reference_candidate(problem: Problem) -> Candidate:
    return Candidate(source=reference_source(problem), proposer="reference", technique="reference")
