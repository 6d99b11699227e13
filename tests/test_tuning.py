import optuna
import pytest

from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.model.tunables import TunableError, parse_tunable, satisfies
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


def test_stale_running_trials_are_failed_on_resume(tmp_path):
    tuner = Tuner(make_storage("", tmp_path), "tpe", seed=0)
    tuner.ask("s", Candidate(source=SRC), {"BLOCK": [32, 64]})
    fresh = Tuner(make_storage("", tmp_path), "tpe", seed=0)
    assert fresh.fail_stale() == 1
    study = optuna.load_study(study_name="s", storage=make_storage("", tmp_path))
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
