"""The judge and the defendant through `evo-kernels bench --json` on the CPU: what the bench output
carries (the precision policy, errors against the float64 oracle, the mode), the oracle's fallback
where a model has no float64 path, the strict policy's baselines under PyTorch's defaults, and the
judge never reading a crafted payload as code."""
import base64
import pickle

import pytest

from conftest import CANDIDATES, CONFIGS, PROBLEMS, run_cli

LINEAR = str(PROBLEMS / "tiny_linear_relu.py")


def _bench(problem, candidate, *extra):
    code, out, err = run_cli("bench", problem, candidate, "--json", "--device", "cpu", "--config",
                             str(CONFIGS / "fast.yaml"), *extra)
    assert out is not None, err[-2000:]
    return code, out


def test_bench_json_carries_precision_oracle_errors_and_mode():
    code, out = _bench(LINEAR, str(CANDIDATES / "linear_relu_addmm.py"))
    assert code == 0 and out["status"] == "ok", out["reason"]
    assert out["precision"] == "as_run" and out["mode"] in ("train", "eval")
    cand, base = out["oracle_error"]["candidate"], out["oracle_error"]["baseline"]
    assert set(cand) == {"norm", "q999", "max", "mismatches"} and 0 < base["norm"] < 1e-5 and cand["norm"] < 1e-5
    assert len(out["trials"]) == 6 and any("eval" in t for t in out["trials"]) and any("autograd" in t for t in out["trials"])
    assert set(out["peak_memory"]) == {"judge", "defendant"}
    assert out["baseline_flags"]["cudnn.allow_tf32"] is True  # PyTorch's default, as users run it


def test_a_model_without_a_float64_path_falls_back_with_a_note():
    code, out = _bench(str(PROBLEMS / "float32_only.py"), str(CANDIDATES / "tanh_double.py"))
    assert code == 0 and out["status"] == "ok", out["reason"]
    assert any(n.startswith("oracle: float64 failed on the CPU") for n in out["notes"]), out["notes"]
    assert out["oracle_error"] == {}


def test_strict_policy_also_times_the_baselines_as_users_run_them(tmp_path):
    cfg = tmp_path / "strict.yaml"
    cfg.write_text((CONFIGS / "fast.yaml").read_text() + "precision: strict\n")
    code, out, err = run_cli("bench", LINEAR, str(CANDIDATES / "linear_relu_addmm.py"), "--json", "--device", "cpu",
                             "--config", str(cfg))
    assert code == 0 and out["precision"] == "strict" and out["default_eager"] > 0, (out, err[-1500:])
    assert out["baseline_flags"]["cudnn.allow_tf32"] is False


def test_the_judge_reads_no_code_from_a_payload():
    from evo_kernels.harness import transfer

    class Boom:
        def __reduce__(self):
            return (print, ("this would run in the judge",))
    crafted = base64.b64encode(pickle.dumps({"outputs": Boom()})).decode()
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        transfer.unpack(crafted)
