"""The sandbox worker: crashes, hangs and exceptions get their status, and the same evaluator goes on."""
import os

import pytest

from conftest import CANDIDATES, CONFIGS, PROBLEMS
from evo_kernels import config
from evo_kernels.model.candidate import Candidate
from evo_kernels.harness.evaluator import Evaluator
from evo_kernels.harness.sandbox import scrub_environment

PROBLEM = PROBLEMS / "tiny_linear_relu.py"


def cand(name: str) -> Candidate:
    return Candidate(source=(CANDIDATES / name).read_text())


@pytest.fixture(scope="module")
def evaluator():
    cfg = config.load(CONFIGS / "fast_no_policy.yaml")
    cfg.device = "cpu"
    cfg.sandbox.timeout_s = 8  # the hang waits this long: short, yet far above a real request here (~1 s)
    os.environ["EVO_TEST_TOKEN"] = "s3cr3t"  # must not reach the worker
    try:
        with Evaluator("cpu", cfg) as ev:
            yield ev
    finally:
        os.environ.pop("EVO_TEST_TOKEN", None)


def test_failures_then_a_correct_candidate_in_the_same_evaluator(evaluator):
    ok = evaluator.evaluate(PROBLEM, cand("linear_relu_addmm.py"))
    assert ok.status == "ok", ok.reason
    # timed under the full protocol: each of its timing.repeats parts at least its share of min_reps
    parts = evaluator.cfg.timing.repeats
    assert ok.speedup is not None and ok.speedup > 0 and len(ok.timing["attempts_ms"]) == parts
    assert ok.timing["reps"] >= max(5, evaluator.cfg.timing.min_reps // parts)
    # torch.profiler's top kernels come back with an accepted candidate (for proposers to read).
    assert ok.profile and any("addmm" in k["name"] for k in ok.profile)
    assert all(k["ms_per_call"] > 0 for k in ok.profile)

    pid = evaluator.defendant.proc.pid
    seg = evaluator.evaluate(PROBLEM, cand("segfault.py"))
    assert seg.status == "crash" and "SIGSEGV" in seg.reason
    assert evaluator.defendant.proc.pid != pid  # replaced

    pid = evaluator.defendant.proc.pid
    hang = evaluator.evaluate(PROBLEM, cand("hang.py"))
    assert hang.status == "timeout" and "8 s" in hang.reason
    assert evaluator.defendant.proc.pid != pid

    raised = evaluator.evaluate(PROBLEM, cand("raises.py"))
    assert raised.status == "runtime_error"
    assert "ValueError: shape mismatch in fast path" in raised.reason

    syntax = evaluator.evaluate(PROBLEM, cand("syntax_error.py"))
    assert syntax.status == "compile_error" and "line 2" in syntax.reason

    wrong = evaluator.evaluate(PROBLEM, cand("linear_relu_wrong.py"))
    assert wrong.status == "incorrect" and wrong.reason.startswith("accuracy:")

    again = evaluator.evaluate(PROBLEM, cand("linear_relu_addmm.py"))
    assert again.status == "ok", again.reason
    assert evaluator.defendant.restarts == 2


def test_worker_environment_holds_no_secrets(evaluator):
    ev = evaluator.evaluate(PROBLEM, cand("reads_secret.py"), timed=False)
    assert ev.status == "ok", ev.reason


def test_scrub_environment_keeps_runtime_and_drops_secrets():
    env = scrub_environment({"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0", "OPENAI_API_KEY": "k",
                             "AWS_SECRET_ACCESS_KEY": "s", "HF_TOKEN": "t", "TORCH_HOME": "/x",
                             "TORCH_AUTH_TOKEN": "t", "RANDOM_VAR": "v"})
    assert env == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0", "TORCH_HOME": "/x"}


def test_worker_runs_in_a_temporary_directory_with_limits(evaluator):
    src = '''
import os, resource
import torch
from torch import nn
class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        assert os.getcwd().split(os.sep)[-1].startswith("evo-defendant-"), os.getcwd()
        assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == 1024 << 20
        assert os.environ["HOME"] == os.getcwd()
    def forward(self, x):
        return torch.relu(self.linear(x))
'''
    ev = evaluator.evaluate(PROBLEM, Candidate(source=src), timed=False)
    assert ev.status == "ok", ev.reason
