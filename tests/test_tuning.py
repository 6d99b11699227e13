import optuna
import pytest

from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.model.tunables import TunableError, parse_screen_first, parse_tunable, satisfies, with_screen_first
from evo_kernels.search.tuning import Tuner, make_storage

SRC = '''
BLOCK = 64
TUNABLE = {"BLOCK": [32, 64, 128], "WARPS": [4, 8]}
'''


def test_parse_inline_and_named_space(tmp_path):
    assert parse_tunable(SRC) == ({"BLOCK": [32, 64, 128], "WARPS": [4, 8]}, [])
    assert parse_tunable("x = 1") == ({}, [])
    (tmp_path / "tiles.yaml").write_text("params:\n  BM: [16, 32]\n  BN: [16, 32]\nconstraints:\n  - BM * BN <= 512\n")
    assert parse_tunable('TUNABLE = "tiles"', tmp_path) == ({"BM": [16, 32], "BN": [16, 32]}, ["BM * BN <= 512"])
    with pytest.raises(TunableError, match="does not exist"):
        parse_tunable('TUNABLE = "nope"', tmp_path)
    with pytest.raises(TunableError, match="non-empty lists"):
        parse_tunable('TUNABLE = {"A": []}')
    with pytest.raises(TunableError, match="literal"):
        parse_tunable('TUNABLE = make_space()')


def test_constraints():
    assert satisfies({"BM": 16, "BN": 32}, ["BM * BN <= 512"])
    assert not satisfies({"BM": 32, "BN": 32}, ["BM * BN <= 512"])


def test_screen_first_is_written_after_the_tunable_and_read_back():
    source = 'import torch\nTUNABLE = {"B": [1, 2], "W": [4, 8]}\nB = 1\n'
    configs = [{"B": 2}, {"B": 2, "W": 8}]
    written = with_screen_first(source, configs)
    assert written.splitlines()[2] == f"SCREEN_FIRST = {configs!r}" and parse_screen_first(written) == configs
    assert parse_tunable(written) == parse_tunable(source)
    assert with_screen_first(source, []) == source and parse_screen_first(source) == []
    assert with_screen_first("B = 1\n", configs) == "B = 1\n"  # nothing to screen without a TUNABLE
    for bad in ("SCREEN_FIRST = {'B': 2}", "SCREEN_FIRST = [{'B': 2}, 3]", "SCREEN_FIRST = [{1: 2}]",
                "SCREEN_FIRST = [dict(B=2)]"):
        with pytest.raises(TunableError, match="line 2: SCREEN_FIRST"):
            parse_screen_first("B = 1\n" + bad + "\n")


def test_grid_covers_the_space_prunes_constraints_and_records_failures(tmp_path):
    tuner = Tuner(make_storage("", tmp_path), "grid", seed=0)
    base = Candidate(source=SRC)
    space = {"BLOCK": [32, 64, 128], "WARPS": [4, 8]}
    seen = []
    while True:
        asked = tuner.ask("s", base, space, ["BLOCK * WARPS <= 512"])
        if asked is None:
            break
        cand, number = asked
        seen.append((cand.params["BLOCK"], cand.params["WARPS"]))
        ok = cand.params["BLOCK"] != 32
        ev = Evaluation(status="ok", timing={"median_ms": cand.params["BLOCK"] / 10}) if ok else \
            Evaluation(status="incorrect", reason="mismatch: bad tile")
        tuner.tell("s", number, ev)
        if len(seen) > 10:
            break
    # 128*8 = 1024 breaks the constraint: pruned before any evaluation; the rest each once.
    assert sorted(seen) == [(32, 4), (32, 8), (64, 4), (64, 8), (128, 4)]
    study = optuna.load_study(study_name="s", storage=make_storage("", tmp_path))
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) >= 1
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 2 and all(t.user_attrs["reason"] == "mismatch: bad tile" for t in failed)
    assert study.best_params == {"BLOCK": 64, "WARPS": 4} or study.best_params["BLOCK"] == 64


def test_stale_running_trials_are_failed_on_resume_and_asked_again_once(tmp_path):
    # A run stopped with a trial in flight: on resume the trial is failed as stale, not counted as
    # asked, and its configuration is queued again; lost a second time, it is not queued a third.
    space = {"BLOCK": [32, 64, 128, 256]}
    tuner = Tuner(make_storage("", tmp_path), "tpe", seed=0)
    cand, _ = tuner.ask("p1:s", Candidate(source=SRC), space)
    fresh = Tuner(make_storage("", tmp_path), "tpe", seed=0)
    assert fresh.fail_stale("p1:") == 1 and fresh.asked("p1:s", space) == 0
    study = optuna.load_study(study_name="p1:s", storage=make_storage("", tmp_path))
    first = study.trials[0]
    assert first.state == optuna.trial.TrialState.FAIL and first.user_attrs["stale"]
    again, _ = fresh.ask("p1:s", Candidate(source=SRC), space)
    assert again.params == cand.params and fresh.asked("p1:s", space) == 1
    third = Tuner(make_storage("", tmp_path), "tpe", seed=0)
    assert third.fail_stale("p1:") == 1 and third.asked("p1:s", space) == 1
    states = [t.state for t in optuna.load_study(study_name="p1:s", storage=make_storage("", tmp_path)).trials]
    assert states == [optuna.trial.TrialState.FAIL] * 2  # nothing queued a third time


def test_a_resuming_problem_leaves_other_problems_trials_in_flight(tmp_path):
    # A suite: one tuner per problem on one storage. Problem 2 resumes (its reference measured) while
    # problem 1's trials are being evaluated: only problem 2's leftovers are stale, and problem 1's
    # results are told as usual. (Seen on a resumed suite run: problem 1's tell raised optuna's
    # "already finished" error and stopped the run.)
    storage = make_storage("", tmp_path)
    space = {"BLOCK": [32, 64, 128]}
    dead = Tuner(storage, "tpe", seed=0)
    dead.ask("p2:s", Candidate(source=SRC), space)  # a killed run's trial of problem 2
    one, two = Tuner(storage, "tpe", seed=0), Tuner(storage, "tpe", seed=0)
    _, number = one.ask("p1:s", Candidate(source=SRC), space)
    assert one.fail_stale("p1:") == 0  # its own trial in flight is not stale
    assert two.fail_stale("p2:") == 1
    one.tell("p1:s", number, Evaluation(status="ok", timing={"median_ms": 1.5}))
    states = {name: [t.state for t in optuna.load_study(study_name=name, storage=storage).trials]
              for name in ("p1:s", "p2:s")}
    assert states == {"p1:s": [optuna.trial.TrialState.COMPLETE],
                      "p2:s": [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]}  # queued again


def test_a_trial_finished_elsewhere_is_not_told_again(tmp_path, caplog):
    storage = make_storage("", tmp_path)
    tuner = Tuner(storage, "tpe", seed=0)
    _, a = tuner.ask("p:s", Candidate(source=SRC), {"BLOCK": [32, 64]})
    _, b = tuner.ask("p:s", Candidate(source=SRC), {"BLOCK": [32, 64]})
    other = optuna.load_study(study_name="p:s", storage=storage)
    for n in (a, b):
        other.tell(n, state=optuna.trial.TrialState.FAIL)
    tuner.tell("p:s", a, Evaluation(status="ok", timing={"median_ms": 1.0}))  # no error: logged
    tuner.tell_screened("p:s", b, {"ms": 2.0})
    assert "already FAIL" in caplog.text
    assert [t.state for t in optuna.load_study(study_name="p:s", storage=storage).trials] == \
        [optuna.trial.TrialState.FAIL] * 2
