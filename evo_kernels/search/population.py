"""Population and selection for the evolutionary search: islands, elite archive, tournaments.

Pure: no Ray, no GPU, no I/O, no clock. Every random choice comes from one `random.Random(seed)` held
in the population, so a population is a deterministic function of (config, reference, results), and
`to_state()` / `from_state()` carry it across a checkpoint without changing what it does next.

The generation loop (elsewhere) drives it:

    pop = Population(SearchConfig(seed=0), reference, reference_eval)
    for island, parents in pop.plan_generation(n_drafts):     # 1 parent: mutation, 2: crossover
        drafts = proposer.propose(problem, parents, pop.feedback(island), ...)
        for cand in drafts:
            if not pop.seen(cand.id):                           # never evaluate an id twice
                pop.add(cand, evaluate(cand), island)
    pop.end_generation()                                        # truncation, elitism, migration
    pop.best()

Fitness is `evaluation.speedup` for evaluations whose status is `ok`; anything else is never a parent
and is kept, with its error text, in a per-island feedback list. The reference candidate is a member
of every island and is never truncated away, so `best()` is never slower than the reference.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import asdict
from typing import Any

from ..config import SearchConfig
from ..model.candidate import Candidate, Evaluation

Member = tuple[Candidate, Evaluation]
Cell = tuple[str, int]  # (technique tag, number of custom kernels)

_TRITON_DECORATOR = re.compile(r"^\s*@\s*triton\.(jit|autotune)\b")
_DEF = re.compile(r"^\s*(async\s+)?def\s")
_CALLS = re.compile(r"\bload_inline\s*\(|\bcpp_extension\.load\s*\(|\b(cupy|cp)\.RawKernel\s*\(")


def count_custom_kernels(source: str) -> int:
    """Number of custom kernels a candidate defines.

    One per function decorated with `@triton.jit` and/or `@triton.autotune` (a kernel carrying both
    counts once), one per `load_inline(...)` or `cpp_extension.load(...)` call, one per
    `cupy.RawKernel(...)` (or `cp.RawKernel`). Importing `cpp_extension` alone builds nothing and
    does not count. Comment lines are ignored.
    """
    count, decorated = 0, False
    for line in source.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if _TRITON_DECORATOR.match(line):
            decorated = True
        elif _DEF.match(line):
            count += int(decorated)
            decorated = False
        count += len(_CALLS.findall(line))
    return count


def fitness(evaluation: Evaluation) -> float | None:
    """Speedup of an `ok` evaluation; None (not selectable) for every other outcome. A candidate that
    runs a baseline's own kernels (`same_as`) is worth at most 1.0: it cannot beat itself."""
    s = evaluation.speedup
    if not (evaluation.ok and s is not None and math.isfinite(s)):
        return None
    return min(float(s), 1.0) if evaluation.same_as else float(s)


class Population:
    """Islands of `ok` members, a MAP-Elites archive, and the recent failures per island."""

    def __init__(self, config: SearchConfig, reference: Candidate, reference_eval: Evaluation):
        if fitness(reference_eval) is None:
            raise ValueError(f"the reference evaluation must be ok with a speedup, got {reference_eval}")
        self.config = config
        self.reference_id = reference.id
        self.generation = 0
        self._rng = random.Random(config.seed)
        self._records: dict[str, Member] = {}
        self._order: dict[str, int] = {}  # id -> arrival number: deterministic tie-breaks
        self._islands: list[list[str]] = [[] for _ in range(config.islands)]
        self._archive: dict[Cell, str] = {}
        self._failures: list[list[str]] = [[] for _ in range(config.islands)]
        self._seen: set[str] = set()
        self._cursor = 0  # next island in the round-robin of plan_generation
        self.add(reference, reference_eval, 0)
        for ids in self._islands[1:]:
            ids.append(self.reference_id)

    # -- recording results ------------------------------------------------------------------------

    def seen(self, candidate_id: str) -> bool:
        """Whether this candidate id was already recorded (evaluated); never evaluate it again."""
        return candidate_id in self._seen

    def add(self, candidate: Candidate, evaluation: Evaluation, island: int) -> bool:
        """Record an evaluated candidate on `island`. Returns False (and ignores it) for a seen id."""
        self._check_island(island)
        cid = candidate.id
        if cid in self._seen:
            return False
        self._seen.add(cid)
        self._records[cid] = (candidate, evaluation)
        self._order[cid] = len(self._seen)  # seen ids are never pruned: a unique, growing number
        if fitness(evaluation) is None:
            kept = self._failures[island]
            kept.append(cid)
            del kept[: max(0, len(kept) - self.config.feedback_size)]
            return True
        self._islands[island].append(cid)
        cell = self.cell(candidate)
        if cell not in self._archive or self._key(cid) > self._key(self._archive[cell]):
            self._archive[cell] = cid
        return True

    # -- selection --------------------------------------------------------------------------------

    def select_parents(self, island: int, k: int = 1) -> list[Member]:
        """`k` tournament winners from `island`, distinct while the island has enough members."""
        self._check_island(island)
        chosen: list[str] = []
        for _ in range(k):
            exclude = set(chosen) if len(chosen) < len(self._islands[island]) else set()
            chosen.append(self._tournament(self._islands[island], exclude))
        return [self._records[c] for c in chosen]

    def plan_generation(self, n_drafts: int) -> list[tuple[int, list[Member]]]:
        """Parents for `n_drafts` drafts: islands round-robin; about `crossover_rate` of the drafts get
        a second parent from another island or another archive cell (crossover), the rest one parent
        (mutation). A crossover with no distinct second parent available falls back to mutation."""
        plan = []
        for _ in range(n_drafts):
            island = self._cursor
            self._cursor = (self._cursor + 1) % self.config.islands
            first = self._tournament(self._islands[island], set())
            parents = [first]
            if self._rng.random() < self.config.crossover_rate:
                second = self._crossover_partner(island, first)
                if second is not None:
                    parents.append(second)
            plan.append((island, [self._records[p] for p in parents]))
        return plan

    def _crossover_partner(self, island: int, first: str) -> str | None:
        others = [i for i in range(self.config.islands) if i != island]
        first_cell = self.cell(self._records[first][0])
        cells = [c for c, cid in self._archive.items() if c != first_cell and cid != first]
        sources = ["island", "archive"]
        self._rng.shuffle(sources)
        for source in sources:
            if source == "island" and others:
                pool = self._islands[self._rng.choice(others)]
                if any(cid != first for cid in pool):
                    return self._tournament(pool, {first})
            if source == "archive" and cells:
                return self._archive[self._rng.choice(cells)]
        return None

    def _tournament(self, ids: list[str], exclude: set[str]) -> str:
        pool = [cid for cid in ids if cid not in exclude]
        entrants = self._rng.sample(pool, min(self.config.tournament_size, len(pool)))
        return max(entrants, key=self._key)

    # -- end of a generation ----------------------------------------------------------------------

    def end_generation(self) -> None:
        """Truncate every island to `island_size` (the reference and the `elite_size` best always
        survive; the other places go to tournament winners, which keeps some diversity), advance the
        generation counter, and migrate when it is a multiple of `migration_interval`."""
        cfg = self.config
        for i, ids in enumerate(self._islands):
            ranked = sorted(ids, key=self._key, reverse=True)
            keep = set(ranked[: cfg.elite_size]) | {self.reference_id}
            rest = [cid for cid in ids if cid not in keep]
            while len(keep) < cfg.island_size and rest:
                winner = self._tournament(rest, set())
                keep.add(winner)
                rest.remove(winner)
            self._islands[i] = [cid for cid in ids if cid in keep]
        self.generation += 1
        if cfg.migration_size and cfg.islands > 1 and self.generation % cfg.migration_interval == 0:
            self._migrate()
        self._prune()

    def _migrate(self) -> None:
        """Copy the best `migration_size` members of island i to island i+1 (ring), all at once. The
        receiving island may hold more than `island_size` until the next truncation."""
        ranked = [sorted(ids, key=self._key, reverse=True) for ids in self._islands]
        migrants = [[c for c in r if c != self.reference_id][: self.config.migration_size] for r in ranked]
        for i, moving in enumerate(migrants):
            target = self._islands[(i + 1) % self.config.islands]
            target.extend(c for c in moving if c not in target)

    def _prune(self) -> None:
        live = {self.reference_id, *self._archive.values()}
        for ids in self._islands + self._failures:
            live.update(ids)
        for cid in [c for c in self._records if c not in live]:
            del self._records[cid], self._order[cid]

    # -- views ------------------------------------------------------------------------------------

    def best(self) -> Member:
        """The fittest `ok` member ever recorded (earliest wins a tie, so the reference wins at 1.0)."""
        return self._records[max(self._archive.values(), key=self._key)]

    def members(self, island: int) -> list[Member]:
        """The members of `island`, fittest first."""
        self._check_island(island)
        return [self._records[c] for c in sorted(self._islands[island], key=self._key, reverse=True)]

    def archive(self) -> dict[Cell, Member]:
        """The MAP-Elites archive: (technique, custom kernels) -> the fittest member of that cell."""
        return {cell: self._records[cid] for cell, cid in self._archive.items()}

    def feedback(self, island: int | None = None, limit: int = 5) -> list[Member]:
        """Recent failed evaluations (newest first) of `island`, or of all islands, with their reasons."""
        if island is not None:
            self._check_island(island)
        ids = [c for ids in self._failures for c in ids] if island is None else self._failures[island]
        ids = sorted(ids, key=self._order.__getitem__, reverse=True)[:limit]
        return [self._records[c] for c in ids]

    @staticmethod
    def cell(candidate: Candidate) -> Cell:
        return (candidate.technique, count_custom_kernels(candidate.source))

    def _key(self, cid: str) -> tuple[float, int]:
        return (fitness(self._records[cid][1]), -self._order[cid])

    def _check_island(self, island: int) -> None:
        if not 0 <= island < self.config.islands:
            raise ValueError(f"island {island} out of range [0, {self.config.islands})")

    # -- checkpoint -------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot; `from_state` of it continues exactly as this population."""
        version, internal, gauss = self._rng.getstate()
        return {
            "config": asdict(self.config),
            "reference_id": self.reference_id,
            "generation": self.generation,
            "cursor": self._cursor,
            "rng": [version, list(internal), gauss],
            "records": [
                {"candidate": c.to_dict(), "evaluation": e.to_dict(), "order": self._order[cid]}
                for cid, (c, e) in self._records.items()
            ],
            "islands": [list(ids) for ids in self._islands],
            "archive": [[tech, n, cid] for (tech, n), cid in self._archive.items()],
            "failures": [list(ids) for ids in self._failures],
            "seen": sorted(self._seen),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Population":
        pop = cls.__new__(cls)
        pop.config = SearchConfig(**state["config"])
        pop.reference_id = state["reference_id"]
        pop.generation = state["generation"]
        pop._cursor = state["cursor"]
        version, internal, gauss = state["rng"]
        pop._rng = random.Random()
        pop._rng.setstate((version, tuple(internal), gauss))
        pop._records, pop._order = {}, {}
        for r in state["records"]:
            cand = Candidate.from_dict(r["candidate"])
            if cand.id != r["candidate"].get("id", cand.id):
                raise ValueError(f"state record {r['candidate'].get('id')} does not match its content")
            pop._records[cand.id] = (cand, Evaluation.from_dict(r["evaluation"]))
            pop._order[cand.id] = r["order"]
        pop._islands = [list(ids) for ids in state["islands"]]
        pop._archive = {(tech, n): cid for tech, n, cid in state["archive"]}
        pop._failures = [list(ids) for ids in state["failures"]]
        pop._seen = set(state["seen"])
        return pop
