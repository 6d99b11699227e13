"""Tuning at the cost of one evaluation: a candidate's configurations are timed briefly in one
sandbox call, the fastest is verified and timed in full (the next fastest if it fails), and every
configuration is still an optuna trial, marked as screened."""
import dataclasses
import random

import optuna
import pytest

from conftest import CANDIDATES, CONFIGS, PROBLEMS
from evo_kernels import config
from evo_kernels.harness.evaluator import Evaluator
from evo_kernels.harness.timing import screen_config
from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.search.loop import SearchLoop
from evo_kernels.search.tuning import Tuner, make_storage

PROBLEM = str(PROBLEMS / "tiny_linear_relu.py")
SOURCE = (CANDIDATES / "screened_linear_relu.py").read_text()
CONFIGS_ = [{"MODE": m} for m in ("slow", "fast", "wrong", "raises")]


def test_the_fastest_correct_configuration_is_evaluated_and_all_are_listed():
    cfg = config.load(CONFIGS / "search_local.yaml")
    cfg.device = "cpu"
    with Evaluator("cpu", cfg) as evaluator:
        ev = evaluator.screen(PROBLEM, Candidate(source=SOURCE), CONFIGS_)
    rows = {r["params"]["MODE"]: r for r in ev.screened}
    assert list(rows) == ["slow", "fast", "wrong", "raises"]
    assert rows["raises"]["ms"] is None and "this configuration does not run" in rows["raises"]["reason"]
    assert rows["slow"]["ms"] > 3 * rows["fast"]["ms"], rows
    # "wrong" screened fastest, failed the full protocol, and the next fastest was evaluated instead.
    assert rows["wrong"]["ms"] < rows["fast"]["ms"] and rows["wrong"]["failed"] == "incorrect"
    assert rows["wrong"]["reason"].startswith("chosen, then failed the full protocol: constant_output")
    assert rows["fast"]["chosen"] and ev.status == "ok", ev.reason
    assert ev.candidate_id == Candidate(source=SOURCE, params={"MODE": "fast"}).id
    # the full protocol, in timing.repeats parts (not the screen's short measurement)
    assert len(ev.timing["attempts_ms"]) == cfg.timing.repeats and ev.speedup is not None
    assert ev.timing["reps"] >= cfg.timing.min_reps // cfg.timing.repeats > screen_config(cfg.timing).min_reps


def test_one_screen_spends_one_evaluation_and_tells_optuna_every_configuration(tmp_path):
    cfg = config.load(CONFIGS / "search_local.yaml")
    cfg.tuning = dataclasses.replace(cfg.tuning, trials_per_candidate=4, screen=4, sampler="grid")
    storage = make_storage("", tmp_path)
    tuner = Tuner(storage, "grid", seed=0)
    loop = SearchLoop(cfg, tuner, lambda c: "study")
    reference = Candidate(source="class ModelNew: pass", technique="reference")
    ref_ev = Evaluation(status="ok", timing={"median_ms": 1.0}, speedup=1.0)
    loop.begin(reference, ref_ev, None, [], [Candidate(source=SOURCE, technique="start")])
    cand, meta = loop.next_job()
    assert sorted(t["params"]["MODE"] for t in meta["screen"]) == ["fast", "raises", "slow", "wrong"]
    assert not loop.ready  # the whole tuning task is in this one job
    loop.submitted(1, cand, meta)
    chosen = cand.with_params({"MODE": "fast"})
    screened = [{"params": {"MODE": "slow"}, "ms": 2.0}, {"params": {"MODE": "fast"}, "ms": 0.5, "chosen": True},
                {"params": {"MODE": "wrong"}, "ms": 0.1, "failed": "incorrect",
                 "reason": "chosen, then failed the full protocol: mismatch"},
                {"params": {"MODE": "raises"}, "ms": None, "reason": "runtime_error: raised"}]
    ev = Evaluation(status="ok", timing={"median_ms": 0.6}, speedup=1.6, candidate_id=chosen.id, screened=screened)
    loop.record(chosen, ev, meta, key=1)
    assert loop.progress.done == 1 and loop.results[chosen.id] is ev
    study = optuna.load_study(study_name="study", storage=storage)
    by_mode = {t.params["MODE"]: t for t in study.trials}
    assert by_mode["fast"].value == pytest.approx(0.6) and "screened" not in by_mode["fast"].user_attrs
    assert by_mode["slow"].value == pytest.approx(2.0) and by_mode["slow"].user_attrs["screened"] is True
    assert by_mode["wrong"].state == optuna.trial.TrialState.FAIL  # fast, but wrong: never optuna's best
    assert by_mode["raises"].state == optuna.trial.TrialState.FAIL
    assert by_mode["raises"].user_attrs["reason"] == "runtime_error: raised"
    assert loop.population.seen(chosen.id) and study.best_params == {"MODE": "fast"}


def test_a_search_screens_a_tunable_start_candidate_in_one_evaluation(tmp_path):
    from conftest import run_cli
    cfg = tmp_path / "run.yaml"
    cfg.write_text((CONFIGS / "search_local.yaml").read_text().replace(
        "  trials_per_candidate: 2\n  screen: 1", "  trials_per_candidate: 4\n  screen: 4\n  sampler: grid"))
    code, summary, err = run_cli("optimize", PROBLEM, "--device", "cpu", "--config", str(cfg), "--budget", "2",
                                 "--start", str(CANDIDATES / "screened_linear_relu.py"), "--only", "start",
                                 "--run-dir", str(tmp_path / "run"), "--json")
    assert code == 0, err[-2000:]
    assert summary["evaluations"] == 2  # the reference, and one screen of the four configurations
    from evo_kernels.store import SQLiteStore
    store = SQLiteStore(tmp_path / "run" / "store.sqlite")
    (prow,) = store.problems()
    rows = [r for r in store.records(prow.id) if r.candidate.technique != "reference"]
    assert len(rows) == 1 and rows[0].candidate.params == {"MODE": "fast"} and rows[0].evaluation.ok
    assert len(rows[0].evaluation.screened) == 4 and rows[0].meta["study"]
    trials = optuna.load_study(study_name=rows[0].meta["study"],
                               storage=f"sqlite:///{tmp_path / 'run' / 'optuna.sqlite'}").trials
    assert sorted(t.params["MODE"] for t in trials) == ["fast", "raises", "slow", "wrong"]
    assert sum(bool(t.user_attrs.get("screened")) for t in trials) == 3


def _first_screen(tmp_path, source: str) -> list[dict]:
    """The configurations of the first screen a search asks of a start candidate (8 to a screen)."""
    cfg = config.load(CONFIGS / "search_local.yaml")
    cfg.tuning = dataclasses.replace(cfg.tuning, trials_per_candidate=8, screen=8, sampler="tpe")
    loop = SearchLoop(cfg, Tuner(make_storage("", tmp_path), "tpe", seed=0), lambda c: "study")
    reference = Candidate(source="class ModelNew: pass", technique="reference")
    loop.begin(reference, Evaluation(status="ok", timing={"median_ms": 1.0}, speedup=1.0), None, [],
               [Candidate(source=source, technique="start")])
    _, meta = loop.next_job()
    return [t["params"] for t in meta["screen"]]


def test_a_screen_tries_the_defaults_and_their_neighbours_first(tmp_path):
    # The space's default first, then every parameter moved to its next value in turn (a constraint
    # pruning one of them), for half the screen; the sampler's picks for the rest.
    from evo_kernels.model.tunables import neighbours
    space = {"BLOCK": [128, 64, 256], "WARPS": [8, 4], "STAGES": [3, 2, 4]}
    constraints = ["BLOCK * WARPS <= 1024"]
    defaults = {"BLOCK": 128, "WARPS": 8, "STAGES": 3}
    assert neighbours(defaults, space, constraints, 10) == [
        {"BLOCK": 64, "WARPS": 8, "STAGES": 3}, {"BLOCK": 128, "WARPS": 4, "STAGES": 3},
        {"BLOCK": 128, "WARPS": 8, "STAGES": 2}, {"BLOCK": 128, "WARPS": 8, "STAGES": 4}]  # 256 x 8 breaks it
    assert neighbours(defaults, space, constraints, 2) == neighbours(defaults, space, constraints, 10)[:2]
    source = f"TUNABLE = {space!r}\nclass ModelNew:\n    pass\n"
    # The defaults, 3 neighbours, then 4 of the sampler's picks.
    asked = _first_screen(tmp_path, source)
    assert len(asked) == 8 and asked[:4] == [defaults] + neighbours(defaults, space, [], 3)


def test_a_screen_tries_the_drafts_screen_first_configurations_after_its_defaults(tmp_path):
    # A draft's SCREEN_FIRST (changes from its defaults: a template's measured alternatives) come right
    # after the defaults, in its order, those outside the space or its constraints, equal to the
    # defaults or repeated left out, at most the sampler's half; then the neighbours not among them,
    # then the sampler's picks.
    from evo_kernels.model.tunables import neighbours, screen_first
    space = {"BLOCK": [128, 64, 256], "WARPS": [8, 4], "STAGES": [3, 2, 4]}
    defaults = {"BLOCK": 128, "WARPS": 8, "STAGES": 3}
    first = [{"BLOCK": 256, "WARPS": 4}, {"BLOCK": 256}, {"STAGES": 5}, {"OTHER": 1}, {"WARPS": 8},
             {"WARPS": 4}, {"BLOCK": 256, "WARPS": 4}, {"STAGES": 2}, {"STAGES": 4}]
    source = f"TUNABLE = {space!r}\nSCREEN_FIRST = {first!r}\nclass ModelNew:\n    pass\n"
    wanted = [{"BLOCK": 256, "WARPS": 4, "STAGES": 3}, {"BLOCK": 256, "WARPS": 8, "STAGES": 3},
              {"BLOCK": 128, "WARPS": 4, "STAGES": 3}, {"BLOCK": 128, "WARPS": 8, "STAGES": 2}]
    assert screen_first(first, defaults, space, [], 10) == wanted + [{"BLOCK": 128, "WARPS": 8, "STAGES": 4}]
    assert screen_first(first, defaults, space, ["BLOCK * WARPS <= 1024"], 10)[:2] == [wanted[0], wanted[2]]
    asked = _first_screen(tmp_path, source)
    rest = [p for p in neighbours(defaults, space, [], 3) if p not in wanted]
    assert len(asked) == 8 and asked[:6] == [defaults] + wanted + rest  # then two of the sampler's


def test_a_malformed_screen_first_is_a_compile_error(tmp_path):
    cfg = config.load(CONFIGS / "search_local.yaml")
    loop = SearchLoop(cfg, Tuner(make_storage("", tmp_path), "tpe", seed=0), lambda c: "study")
    bad = Candidate(source='TUNABLE = {"B": [1, 2]}\nSCREEN_FIRST = {"B": 2}\n', technique="start")
    got = loop.enqueue(bad, 0)
    assert got is not None and got.status == "compile_error" and "line 2: SCREEN_FIRST" in got.reason
    assert not loop.ready and not loop.tasks  # nothing queued, no study asked


def test_a_screen_in_flight_when_the_run_stops_is_screened_again_on_resume(tmp_path):
    # A suite run in slices stops with a draft's screen in flight: the resumed run's checkpoint still
    # holds the tuning task, its trials are failed as stale (not counted), and the same
    # configurations are screened again. (Before, every slice lost its last drafts' screens.)
    cfg = config.load(CONFIGS / "search_local.yaml")
    cfg.tuning = dataclasses.replace(cfg.tuning, trials_per_candidate=4, screen=4, sampler="tpe")
    reference = Candidate(source="class ModelNew: pass", technique="reference")
    ref_ev = Evaluation(status="ok", timing={"median_ms": 1.0}, speedup=1.0)
    storage = make_storage("", tmp_path)
    first = SearchLoop(cfg, Tuner(storage, "tpe", seed=0), lambda c: "p1:study")
    first.begin(reference, ref_ev, None, [], [Candidate(source=SOURCE, technique="start")])
    cand, meta = first.next_job()
    first.submitted(1, cand, meta)
    state = first.state(last_seq=0)  # the checkpoint, the screen in flight; then the run stops
    tuner = Tuner(storage, "tpe", seed=0)
    assert tuner.fail_stale("p1:") == 4
    resumed = SearchLoop(cfg, tuner, lambda c: "p1:study")
    resumed.begin(reference, ref_ev, state, [], [])
    again, again_meta = resumed.next_job()
    assert [t["params"] for t in again_meta["screen"]] == [t["params"] for t in meta["screen"]]
    assert again.params == cand.params


def test_a_configuration_rejected_for_its_precision_is_followed_by_another_precision(monkeypatch):
    """level3/04 on an H200: the screen's fastest configurations all ran the seeded rounded TF32
    conv, which the contract rejected (cuDNN had run one of the block's convs in fp32); the next
    fastest, the same precision, would fail alike. After an accuracy failure the fastest
    configuration of another precision is evaluated; after a crash, the next fastest."""
    from evo_kernels import config as config_module
    from evo_kernels.harness import evaluator as evaluator_module
    screened = [{"params": {"CONV_PRECISION": "tf32rn", "CONV_WARPS": 8}, "ms": 1.0},
                {"params": {"CONV_PRECISION": "tf32rn", "CONV_WARPS": 4}, "ms": 1.1},
                {"params": {"CONV_PRECISION": "tf32x3", "CONV_WARPS": 8}, "ms": 2.0}]
    for failure, second in (("incorrect", {"CONV_PRECISION": "tf32x3", "CONV_WARPS": 8}),
                            ("runtime_error", {"CONV_PRECISION": "tf32rn", "CONV_WARPS": 4})):
        rows = [dict(r, params=dict(r["params"])) for r in screened]
        monkeypatch.setattr(evaluator_module, "verify_screen", lambda *a, **k: rows)
        ev = Evaluator("cpu", config_module.Config(device="cpu"))  # no workers started
        monkeypatch.setattr(ev, "baselines", lambda key: None)
        asked = []

        def evaluate(key, cand):
            asked.append(cand.params)
            fails = cand.params["CONV_PRECISION"] == "tf32rn" and failure == "incorrect" or len(asked) == 1
            return Evaluation(status=failure if fails else "ok", reason="accuracy: worse than eager" if fails else "")
        monkeypatch.setattr(ev, "evaluate", evaluate)
        result = ev.screen(PROBLEM, Candidate(source=SOURCE), [r["params"] for r in screened])
        assert asked == [screened[0]["params"], second] and result.status == "ok", (failure, asked)
        chosen = [r["params"] for r in result.screened if r.get("chosen")]
        assert chosen == [second] and result.screened[0]["failed"] == failure


def test_a_screen_stops_loading_configurations_when_its_time_is_spent(monkeypatch):
    """Each load compiles the draft's kernels anew; past tuning.screen_time_s the configurations left
    are listed unscreened (the defaults, first, always run). Stand-in defendant: loads take no time."""
    from evo_kernels.harness import verify

    asked: list[dict] = []

    def ask(worker, msg, deadline, who):
        asked.append(msg)
        return {"ms": 1.0 + len(asked)} if msg["op"] == "screen" else {}

    class Defendant:
        def alive(self):
            return False

    monkeypatch.setattr(verify, "_ask", ask)
    cfg = config.Config()
    configs = [{"MODE": m} for m in ("slow", "fast", "wrong")]
    cfg.tuning.screen_time_s = 0.0
    rows = verify.screen(Defendant(), PROBLEM, Candidate(source=SOURCE), configs, cfg, random.Random(0))
    assert [m["op"] for m in asked] == ["load", "screen"] and rows[0]["ms"] is not None
    assert [r["params"]["MODE"] for r in rows] == ["slow", "fast", "wrong"]
    for r in rows[1:]:
        assert r["ms"] is None and r["reason"].startswith("not screened: the screen's time (tuning.screen_time_s = 0 s) "
                                                          "went to those before it (1 screened in 0 s)")
    asked.clear()
    cfg.tuning.screen_time_s = 600.0
    rows = verify.screen(Defendant(), PROBLEM, Candidate(source=SOURCE), configs, cfg, random.Random(0))
    assert all(r["ms"] is not None for r in rows) and len(asked) == 6
