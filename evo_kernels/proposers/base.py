"""The one plugin point of the search: a Proposer turns parents (and recent failures) into drafts.

A draft is a `Candidate` whose source defines `ModelNew`; it may declare tunable parameters
(`TUNABLE = {...}`), which tuning.py then searches. Proposers never evaluate anything.
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod

from ..candidate import Candidate, Evaluation
from ..problem import Problem

Member = tuple[Candidate, Evaluation]


class Proposer(ABC):
    """Subclasses set `name` and implement `propose`; randomness comes from `self.rng` only."""

    name: str = ""

    def __init__(self, seed: int = 0, device: str = "cpu") -> None:
        self.rng = random.Random(seed)
        self.device = device

    @abstractmethod
    def propose(self, problem: Problem, parents: list[Member], feedback: list[Member], n: int) -> list[Candidate]:
        """Up to `n` drafts derived from `parents` (one parent: mutation; two: crossover).

        `feedback` holds recent failed evaluations (status and reason) so a proposer can avoid
        repeating them. Returning fewer than `n` (or none) is fine: the search moves on.
        """


def reference_source(problem: Problem) -> str:
    """The problem's own code with `ModelNew` = the reference: the search's first member."""
    return problem.source.rstrip() + "\n\n\nclass ModelNew(Model):\n    pass\n"


def reference_candidate(problem: Problem) -> Candidate:
    return Candidate(source=reference_source(problem), proposer="reference", technique="reference")
