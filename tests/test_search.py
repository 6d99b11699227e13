"""Tests for evo_kernels.search.population: pure population logic, no GPU, fast."""
from __future__ import annotations

import json
from pathlib import Path
from collections import Counter

import pytest

from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.search.population import Population, SearchConfig, count_custom_kernels

REF = Candidate(source="class ModelNew: pass  # reference", technique="reference", proposer="reference")
REF_EVAL = Evaluation(status="ok", speedup=1.0)

TRITON_ONE = """
import triton
import triton.language as tl

@triton.autotune(
    configs=[triton.Config({"BLOCK": 128}), triton.Config({"BLOCK": 256})],
    key=["n"],
)
@triton.jit
def add_kernel(x, y, out, n, BLOCK: tl.constexpr):
    pass

def helper():
    pass
"""


def cand(i: int, technique: str = "custom", source: str = "") -> Candidate:
    return Candidate(source=f"# candidate {i}\n{source}", technique=technique)


def ok(speedup: float) -> Evaluation:
    return Evaluation(status="ok", speedup=speedup)


def fail(reason: str) -> Evaluation:
    return Evaluation(status="compile_error", reason=reason)


def pop(**kw) -> Population:
    return Population(SearchConfig(**kw), REF, REF_EVAL)


def ids(members) -> list[str]:
    return [c.id for c, _ in members]


def drive(p: Population, generations: int, start: int = 0) -> list:
    """A fixed, seed-independent stream of results; returns every plan as candidate ids."""
    plans = []
    n = start
    for _ in range(generations):
        plan = p.plan_generation(6)
        plans.append([(isl, ids(parents)) for isl, parents in plan])
        for isl, _ in plan:
            n += 1
            ev = fail(f"error {n}") if n % 5 == 0 else ok(0.5 + (n * 37 % 23) / 10)
            p.add(cand(n, technique=["compile", "triton", "cuda"][n % 3]), ev, isl)
        p.end_generation()
    return plans


# -- count_custom_kernels -------------------------------------------------------------------------

def test_count_custom_kernels():
    assert count_custom_kernels("import torch\nclass ModelNew: pass\n") == 0
    assert count_custom_kernels(TRITON_ONE) == 1  # autotune + jit on one function counts once
    assert count_custom_kernels(TRITON_ONE + "\n@triton.jit\ndef k2(x):\n    pass\n") == 2
    cuda = (
        "from torch.utils.cpp_extension import load_inline\n"
        "a = load_inline(name='a', cpp_sources='', cuda_sources='')\n"
        "b = torch.utils.cpp_extension.load_inline(name='b', cpp_sources='')\n"
        "c = cpp_extension.load(name='c', sources=['c.cu'])\n"
    )
    assert count_custom_kernels(cuda) == 3  # the import alone is not a kernel
    assert count_custom_kernels("import cupy\nk = cupy.RawKernel(src, 'f')\ng = cp.RawKernel(s, 'g')\n") == 2
    assert count_custom_kernels("# @triton.jit\ndef f():\n    pass\n# load_inline(\n") == 0


# -- determinism ----------------------------------------------------------------------------------

def test_same_seed_same_plans_and_state():
    a, b = pop(seed=7), pop(seed=7)
    assert drive(a, 6) == drive(b, 6)
    assert json.dumps(a.to_state()) == json.dumps(b.to_state())


def test_different_seed_differs():
    a, b = pop(seed=1), pop(seed=2)
    plans_a, plans_b = drive(a, 6), drive(b, 6)
    assert plans_a != plans_b
    assert a.to_state()["rng"] != b.to_state()["rng"]


# -- selection ------------------------------------------------------------------------------------

def test_tournament_prefers_fitter_members():
    def draws(tournament_size: int) -> Counter:
        p = pop(islands=1, island_size=20, tournament_size=tournament_size, seed=3)
        for i in range(10):
            p.add(cand(i), ok(float(i + 1)), 0)  # speedups 1..10 (plus the reference at 1.0)
        return Counter(p.select_parents(0, 1)[0][1].speedup for _ in range(3000))

    strong, uniform = draws(3), draws(1)
    mean = lambda c: sum(k * v for k, v in c.items()) / sum(c.values())
    assert mean(strong) > mean(uniform) + 1.5
    assert strong[10.0] > 4 * strong[2.0]
    assert abs(uniform[10.0] - uniform[2.0]) < 150  # size 1 is uniform: the contrast is the tournament


def test_select_parents_distinct_when_possible():
    p = pop(islands=1)
    assert ids(p.select_parents(0, 2)) == [REF.id, REF.id]  # only the reference: repeats allowed
    p.add(cand(1), ok(2.0), 0)
    for _ in range(50):
        a, b = ids(p.select_parents(0, 2))
        assert a != b


def test_plan_generation_round_robin_and_crossover_share():
    p = pop(seed=5)
    for i in range(12):
        p.add(cand(i, technique=["compile", "triton"][i % 2]), ok(1.0 + i / 10), i % 4)
    plan = p.plan_generation(400)
    assert [isl for isl, _ in plan[:9]] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    sizes = Counter(len(parents) for _, parents in plan)
    assert set(sizes) == {1, 2}
    assert 0.2 < sizes[2] / len(plan) < 0.4
    for island, parents in plan:
        assert ids(parents)[0] in p._islands[island]  # the first parent comes from the draft's island
        if len(parents) == 2:
            assert parents[0][0].id != parents[1][0].id
    # The round-robin continues across calls instead of restarting at island 0.
    assert [isl for isl, _ in p.plan_generation(3)] == [0, 1, 2]


def test_crossover_falls_back_to_mutation_without_a_partner():
    p = pop(crossover_rate=1.0)
    assert all(len(parents) == 1 for _, parents in p.plan_generation(20))  # only the reference exists


# -- failures, reference, elitism -----------------------------------------------------------------

def test_failures_never_parents_but_in_feedback():
    p = pop(islands=2)
    bad = [cand(i) for i in range(5)]
    for i, c in enumerate(bad):
        p.add(c, fail(f"error text {i}"), 0)
    p.add(cand(99), Evaluation(status="ok", speedup=None), 0)  # ok without a speedup: no fitness
    bad_ids = {c.id for c in bad} | {cand(99).id}
    for _ in range(3):
        for _, parents in p.plan_generation(40):
            assert not bad_ids & set(ids(parents))
        assert not bad_ids & set(ids(p.select_parents(0, 2)))
        p.end_generation()
    fb = p.feedback(0, limit=3)
    assert [e.reason for _, e in fb][:2] == ["", "error text 4"]  # newest first
    assert [e.reason for _, e in p.feedback(0, limit=10)][1:] == [f"error text {i}" for i in (4, 3, 2, 1, 0)]
    assert p.feedback(1) == []
    assert len(p.feedback(None, limit=100)) == 6


def test_feedback_is_bounded():
    p = pop(feedback_size=4)
    for i in range(10):
        p.add(cand(i), fail(f"e{i}"), 0)
    assert [e.reason for _, e in p.feedback(0, limit=100)] == ["e9", "e8", "e7", "e6"]


def test_reference_never_removed_and_best_not_worse():
    p = pop(island_size=3, elite_size=1, tournament_size=1)
    assert p.best()[0].id == REF.id
    for g in range(4):
        for isl in range(4):
            for j in range(6):
                p.add(cand(g * 100 + isl * 10 + j), ok(0.2 + 0.1 * j), isl)  # all slower than baseline
        p.end_generation()
        for isl in range(4):
            assert REF.id in ids(p.members(isl))
            assert len(p.members(isl)) <= 3 + 1  # island_size, plus at most one migrant
    best_c, best_e = p.best()
    assert best_c.id == REF.id and best_e.speedup == 1.0
    p.add(cand(1000), ok(1.5), 2)
    assert p.best()[1].speedup == 1.5
    p.add(cand(1001), ok(1.5), 1)
    assert p.best()[0].id == cand(1000).id  # a tie goes to the earlier one


def test_elitism_keeps_the_best_after_truncation():
    for seed in range(40):
        p = pop(islands=1, island_size=6, elite_size=2, tournament_size=1, seed=seed)
        speeds = [1.1 + 0.01 * ((i * 7) % 20) for i in range(20)]
        for i, s in enumerate(speeds):
            p.add(cand(i), ok(s), 0)
        top2 = {cand(i).id for i in sorted(range(20), key=lambda i: -speeds[i])[:2]}
        p.end_generation()
        kept = set(ids(p.members(0)))
        assert len(kept) == 6
        assert REF.id in kept
        assert top2 <= kept, f"seed {seed}: an elite was truncated away"


def test_rejects_bad_reference_and_island():
    with pytest.raises(ValueError):
        Population(SearchConfig(), REF, fail("broken"))
    with pytest.raises(ValueError):
        pop().add(cand(1), ok(2.0), 4)
    with pytest.raises(ValueError):
        SearchConfig(island_size=2, elite_size=2)


# -- archive --------------------------------------------------------------------------------------

def test_archive_keeps_best_per_cell():
    p = pop(islands=2)
    p.add(cand(1, "triton", TRITON_ONE), ok(1.2), 0)
    p.add(cand(2, "triton", TRITON_ONE), ok(1.8), 1)
    p.add(cand(3, "triton", TRITON_ONE), ok(1.5), 0)  # worse than the cell's elite
    p.add(cand(4, "triton", TRITON_ONE + "@triton.jit\ndef k2():\n    pass\n"), ok(1.1), 0)
    p.add(cand(5, "compile"), ok(1.3), 0)
    p.add(cand(6, "compile"), fail("boom"), 0)
    arch = p.archive()
    assert set(arch) == {("reference", 0), ("triton", 1), ("triton", 2), ("compile", 0)}
    assert arch[("triton", 1)][0].id == cand(2, "triton", TRITON_ONE).id
    assert arch[("triton", 1)][1].speedup == 1.8
    assert arch[("triton", 2)][1].speedup == 1.1
    assert arch[("compile", 0)][0].id == cand(5, "compile").id
    assert Population.cell(cand(4, "triton", TRITON_ONE)) == ("triton", 1)
    # Archive members survive truncation of their island.
    for i in range(20):
        p.add(cand(100 + i), ok(3.0), 0)
        p.add(cand(200 + i), ok(3.0), 1)
    p.end_generation()
    assert p.archive()[("triton", 2)][1].speedup == 1.1


# -- migration ------------------------------------------------------------------------------------

def test_migration_copies_best_to_next_island_at_interval():
    p = pop(islands=3, migration_interval=2, migration_size=1)
    best = [cand(10 * i) for i in range(3)]
    for i in range(3):
        p.add(best[i], ok(5.0 + i), i)
        p.add(cand(10 * i + 1), ok(2.0), i)
    p.end_generation()  # generation 1: no migration yet
    for i in range(3):
        assert best[i].id not in ids(p.members((i + 1) % 3))
    p.end_generation()  # generation 2: migration
    assert p.generation == 2
    for i in range(3):
        there = ids(p.members((i + 1) % 3))
        assert best[i].id in there
        assert cand(10 * i + 1).id not in there  # only the best migration_size move
    assert ids(p.members(0))[0] == best[2].id  # the ring wraps: island 2 -> island 0
    assert Counter(ids(p.members(1)))[best[0].id] == 1


# -- checkpoint -----------------------------------------------------------------------------------

def test_state_round_trip_continues_identically():
    a = pop(seed=11)
    drive(a, 4)
    a.plan_generation(3)  # mid-generation: the round-robin cursor and RNG have moved
    restored = Population.from_state(json.loads(json.dumps(a.to_state())))
    assert json.dumps(restored.to_state()) == json.dumps(a.to_state())
    assert drive(a, 5, start=1000) == drive(restored, 5, start=1000)
    assert json.dumps(restored.to_state()) == json.dumps(a.to_state())
    assert restored.best()[0].id == a.best()[0].id
    assert restored.generation == a.generation == 9


# -- dedup ----------------------------------------------------------------------------------------

def test_seen_dedups_candidates():
    p = pop()
    assert p.seen(REF.id)
    c = cand(1)
    assert not p.seen(c.id)
    assert p.add(c, ok(2.0), 0) is True
    assert p.seen(c.id)
    assert p.add(Candidate(source=c.source, technique="other"), ok(9.0), 1) is False  # same id
    assert p.best()[1].speedup == 2.0
    assert c.id not in ids(p.members(1))
    f = cand(2)
    p.add(f, fail("x"), 0)
    assert p.seen(f.id) and p.add(f, ok(3.0), 0) is False
    for _ in range(5):
        p.end_generation()
    assert p.seen(f.id) and p.seen(c.id)  # pruning records never forgets what was evaluated


def test_generations_planned_empty_while_a_draft_runs_do_not_end_the_search(tmp_path):
    """Proposers with nothing new while the only draft is in flight: its result (a new parent) resets
    the count, and the search stops for lack of drafts only after empty generations that followed it."""
    from evo_kernels import config
    from evo_kernels.model.candidate import Candidate, Evaluation
    from evo_kernels.search.loop import SearchLoop
    from evo_kernels.search.tuning import Tuner, make_storage
    cfg = config.load(Path(__file__).parent / "configs" / "search_local.yaml")
    loop = SearchLoop(cfg, Tuner(make_storage("", tmp_path)), lambda c: "s")
    reference = Candidate(source="class ModelNew: pass", technique="reference")
    draft = Candidate(source="class ModelNew: pass  # a draft", technique="x")
    loop.begin(reference, Evaluation(status="ok", timing={"median_ms": 1.0}, speedup=1.0), None, [], [draft])
    cand, meta = loop.next_job()
    loop.submitted(1, cand, meta)
    for _ in range(cfg.search.max_generations_without_drafts + 2):  # the proposers repeat themselves
        plan = loop.plan_generation()
        loop.add_drafts(plan, [[draft] for _ in plan.asks], {})
    assert not loop.out_of_work()  # in flight
    loop.record(cand, Evaluation(status="ok", timing={"median_ms": 0.9}, speedup=1.1), meta, key=1)
    assert not loop.out_of_work()  # its result may give the proposers something new
    assert loop.technique_best == {"x": 1.1}  # what proposers are told each technique reached
    for _ in range(cfg.search.max_generations_without_drafts):
        plan = loop.plan_generation()
        loop.add_drafts(plan, [[draft] for _ in plan.asks], {})
    assert loop.out_of_work()
