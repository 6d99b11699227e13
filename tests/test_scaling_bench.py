"""experiments/scaling.py's pieces that need no GPU: nvidia-smi parsing and sampling, the tables, the
run config, and the `gpu` field of WorkerInfo (set from CUDA_VISIBLE_DEVICES in a GPU actor only)."""
import argparse
import os
import stat
import time

import pytest

from evo_kernels.cluster import EvaluatorActor, LocalPool, RayPool, WorkerInfo
from experiments import scaling

from conftest import CONFIGS

UUIDS = "0, GPU-aaaa\n1, GPU-bbbb\n2, GPU-cccc\n"
UTIL = "0, 87\n1, 93\n2, 0\n"
APPS = "4101, GPU-aaaa\n4102, GPU-bbbb\n4103, GPU-bbbb\n999, GPU-unknown\n"


def test_parse_smi():
    usage, pids = scaling.parse_smi(UTIL, APPS, UUIDS)
    assert usage == {0: 87.0, 1: 93.0, 2: 0.0}
    assert pids == {0: {4101}, 1: {4102, 4103}, 2: set()}


def test_parse_smi_odd_output():
    usage, pids = scaling.parse_smi("0, [N/A]\n\n1, 5\n", "", "")  # no processes, a GPU without a reading
    assert usage == {1: 5.0} and pids == {1: set()}
    assert scaling.parse_smi("", "", "") == ({}, {})  # nvidia-smi failed


def test_sampler_without_nvidia_smi(monkeypatch):
    monkeypatch.setattr(scaling.shutil, "which", lambda name: None)
    with scaling.GpuSampler(every_s=0.01) as smi:
        pass
    assert smi.summary() == {"util": None, "processes": None}


def test_sampler_with_fake_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\ncase \"$1\" in\n"
                    f"  --query-gpu=index,uuid) printf '{UUIDS}' ;;\n"
                    f"  --query-gpu=index,utilization.gpu) printf '{UTIL}' ;;\n"
                    f"  --query-compute-apps=pid,gpu_uuid) printf '{APPS}' ;;\nesac\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with scaling.GpuSampler(every_s=0.05) as smi:
        deadline = time.monotonic() + 20
        while len(smi.util.get(0, [])) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert smi.summary() == {"util": {0: 87.0, 1: 93.0, 2: 0.0}, "processes": {0: 1, 1: 2, 2: 0}}


def _row(n, per_min, util=None):
    actors = [{"name": f"H100-{i}", "gpu": str(i), "jobs": 10, "idle": 0.02, "busy": 0.95} for i in range(n)]
    return {"n": n, "problems": 6, "evaluations": 30, "wall": 60.0, "per_min": per_min, "actors": actors,
            "efficiency": per_min / n / 30.0, "util": util, "processes": None,
            "best": {"01_Gemm_BiasAdd_ReLU": {"best_speedup": 1.5, "best_technique": "triton_fused", "error": None},
                     "05_Gemm_SiLU_Clamp": {"error": "the reference failed"}}}


def test_gpu_tables():
    text = scaling.gpu_tables([_row(1, 30.0), _row(2, 57.0, util={0: 80.0, 1: 75.5})])
    lines = text.splitlines()
    assert lines[0].startswith("| GPUs | problems | evaluations |")
    assert lines[2].startswith("| 1 | 6 | 30 | 60.0 | 30.0 | 100% |") and "| n/a |" in lines[2]
    assert lines[3].startswith("| 2 | 6 | 30 | 60.0 | 57.0 | 95% |")
    assert "H100-0 → 0 (10), H100-1 → 1 (10)" in lines[3] and "0: 80%, 1: 76%" in lines[3]
    assert "| 01_Gemm_BiasAdd_ReLU | 1.50x (triton_fused) | 1.50x (triton_fused) |" in lines
    assert "| 05_Gemm_SiLU_Clamp | failed: the reference failed | failed: the reference failed |" in lines


def test_default_problems_and_config():
    problems = scaling.default_problems()
    assert [p.stem for p in problems] == list(scaling.DEFAULT_PROBLEMS) and all(p.is_file() for p in problems)
    args = argparse.Namespace(config=None, budget=5, seed=0, exclude="compile, compile_tuned")
    cfg = scaling.search_config(args)
    assert (cfg.device, cfg.budget, cfg.search.seed) == ("cuda", 5, 0)
    assert cfg.search.exclude == ["compile", "compile_tuned"]
    assert (cfg.cluster.backend, cfg.cluster.actors_per_gpu) == ("ray", 1)


class _FakeEvaluator:
    def __init__(self, device, cfg, cache_dir):
        pass

    def start(self):
        return self

    def describe(self):
        return {"hardware": "fake"}


@pytest.mark.parametrize("device, gpu", [("cuda", "3"), ("cpu", "")])
def test_actor_reports_its_gpu(monkeypatch, fast_config, device, gpu):
    """A GPU actor's gpu is the CUDA_VISIBLE_DEVICES Ray gave it; a CPU actor's is empty."""
    import ray

    import evo_kernels.harness.evaluator
    monkeypatch.setattr(evo_kernels.harness.evaluator, "Evaluator", _FakeEvaluator)
    monkeypatch.setattr(ray, "get_runtime_context", lambda: argparse.Namespace(get_node_id=lambda: "node"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    info = EvaluatorActor(fast_config, device, "a-0").info()
    assert (info["device"], info["gpu"], info["node"]) == (device, gpu, "node")


def test_local_pool_cpu_has_no_gpu(fast_config):
    with LocalPool(fast_config) as pool:
        assert pool.workers[0].gpu == ""
        assert pool.stats()["actors"][0]["gpu"] == ""


def test_ray_pool_cpu_has_no_gpu(cluster):
    from evo_kernels import config
    cfg = config.load(CONFIGS / "fast.yaml")
    with RayPool(cfg, address=cluster.address) as pool:
        assert len(pool.workers) == 2
        assert [w.gpu for w in pool.workers] == ["", ""]
        assert {a["gpu"] for a in pool.stats()["actors"]} == {""}
