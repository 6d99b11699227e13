"""`evo-kernels verify` and `bench`: exit codes and the JSON line that outside checks read."""
from conftest import CANDIDATES, CONFIGS, PROBLEMS, run_cli

FAST = ["--config", str(CONFIGS / "fast.yaml"), "--device", "cpu"]


def test_bench_correct_candidate_json():
    code, out, err = run_cli("bench", str(PROBLEMS / "tiny_linear_relu.py"),
                             str(CANDIDATES / "linear_relu_addmm.py"), "--json", *FAST)
    assert code == 0, err
    assert out["status"] == "ok" and out["reason"] == ""
    assert out["eager"] > 0 and out["candidate"] > 0 and out["compile"] is None
    assert out["speedup"] == out["eager"] / out["candidate"]


def test_bench_incorrect_candidate_exit_1():
    code, out, _ = run_cli("bench", str(PROBLEMS / "tiny_linear_relu.py"),
                           str(CANDIDATES / "linear_relu_wrong.py"), "--json", *FAST)
    assert code == 1
    assert out["status"] == "incorrect" and out["speedup"] is None and out["candidate"] is None


def test_verify_only_and_readable_table():
    code, out, _ = run_cli("verify", str(PROBLEMS / "tiny_linear_relu.py"),
                           str(CANDIDATES / "linear_relu_addmm.py"), "--json", *FAST)
    assert code == 0 and out["status"] == "ok" and out["eager"] is None
    code, out, _ = run_cli("verify", str(PROBLEMS / "tiny_linear_relu.py"),
                           str(CANDIDATES / "linear_relu_wrong.py"), *FAST)
    assert code == 1 and out is None


def test_bad_problem_file_exit_2_names_the_file():
    bad = PROBLEMS / "broken" / "missing_get_inputs.py"
    code, out, err = run_cli("bench", str(bad), "--json", *FAST)
    assert code == 2
    assert str(bad) in err and "missing get_inputs" in err
    assert out["status"] == "error"


def test_bad_usage_exit_2():
    code, _, err = run_cli("bench")
    assert code == 2 and "usage" in err
    code, _, err = run_cli("verify", str(PROBLEMS / "tiny_linear_relu.py"), "no_such_candidate.py", *FAST)
    assert code == 2 and "no_such_candidate.py: candidate file not found" in err


def test_bench_baselines_with_compile():
    code, out, err = run_cli("bench", str(PROBLEMS / "tiny_linear_relu.py"), "--json", "--device", "cpu",
                             "--config", str(CONFIGS / "fast_compile.yaml"))
    assert code == 0, err
    assert out["eager"] > 0 and out["compile"] > 0
    assert out["best_baseline_ms"] == min(out["eager"], out["compile"])


def test_verify_a_triton_candidate_under_the_interpreter():
    """The Triton example's numerics on the CPU, through Triton's interpreter (the worker keeps
    TRITON_* variables); on a GPU it is compiled (tests/test_gpu.py, `evo-kernels tune`)."""
    import os
    env = dict(os.environ, TRITON_INTERPRET="1")
    code, out, err = run_cli("verify", "examples/gemm_bias_gelu.py", "examples/gemm_bias_gelu_triton.py",
                             "--device", "cpu", "--json", "--config", str(CONFIGS / "three_trials.yaml"), env=env)
    assert code == 0, err
    assert out["status"] == "ok" and out["max_rel_error"] < 1e-6
