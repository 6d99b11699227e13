"""`evo-kernels tune`: sweeps of a user's kernel with grid and TPE; failed configurations are failed
trials; constraints prune before any evaluation."""
import optuna

from conftest import CANDIDATES, CONFIGS, PROBLEMS, run_cli

PROBLEM = str(PROBLEMS / "tiny_linear_relu.py")
CFG = ["--config", str(CONFIGS / "search_local.yaml"), "--device", "cpu"]


def test_grid_sweep_with_a_failing_configuration_and_a_constraint(tmp_path):
    src = (CANDIDATES / "linear_relu_tunable.py").read_text()
    # A named space with a constraint: REPEAT + WRONG <= 3 prunes (3, 1) before it runs.
    spaces = tmp_path / "cand.py"
    spaces.write_text(src.replace('TUNABLE = {"REPEAT": [1, 2, 3], "WRONG": [0, 1]}', 'TUNABLE = "relu_repeat_test"'))
    from evo_kernels.model import tunables
    space_dir = tunables.SPACES_DIR
    space_dir.mkdir(exist_ok=True)
    target = space_dir / "relu_repeat_test.yaml"
    target.write_text("params:\n  REPEAT: [1, 2, 3]\n  WRONG: [0, 1]\nconstraints:\n  - REPEAT + WRONG <= 3\n")
    try:
        run_dir = tmp_path / "grid"
        code, rows, err = run_cli("tune", PROBLEM, str(spaces), *CFG, "--sampler", "grid", "--trials", "10",
                                  "--run-dir", str(run_dir), "--json")
    finally:
        target.unlink()
    assert code == 0, err
    configs = sorted((r["params"]["REPEAT"], r["params"]["WRONG"]) for r in rows)
    assert configs == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0)]  # (3, 1) pruned, the rest once each
    for r in rows:
        if r["params"]["WRONG"]:
            assert r["status"] == "incorrect" and r["reason"].startswith("accuracy")
        else:
            assert r["status"] == "ok" and r["median_ms"] > 0
    assert sum(r["best"] for r in rows) == 1 and next(r for r in rows if r["best"])["params"]["WRONG"] == 0
    hw = rows[0]["hardware"]
    assert "class ModelNew" in (run_dir / hw / "best_config.py").read_text()
    storage = f"sqlite:///{run_dir / hw / 'optuna.sqlite'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 2 and states.count(optuna.trial.TrialState.PRUNED) >= 1


def test_tpe_sweep_and_a_candidate_without_a_space(tmp_path):
    code, rows, err = run_cli("tune", PROBLEM, str(CANDIDATES / "linear_relu_tunable.py"), *CFG, "--trials", "4",
                              "--run-dir", str(tmp_path / "tpe"), "--json")
    assert code == 0, err
    assert 1 <= len(rows) <= 4 and {r["status"] for r in rows} <= {"ok", "incorrect"}
    code, _, err = run_cli("tune", PROBLEM, str(CANDIDATES / "linear_relu_addmm.py"), *CFG,
                           "--run-dir", str(tmp_path / "none"))
    assert code == 2 and "declares no TUNABLE" in err
