"""Device memory: the harness keeps a small constant number of copies of a problem's tensors alive.
Measured on the GPU with experiments/memory_check.py; here, on the CPU, the orderings that keep it
so: the judge lets go of a trial's inputs and outputs before it makes the next trial's, timing
releases an output before the next inputs (also with the checks that run after each call: a frame
cycle there once kept every repetition's output alive), keeps fewer timed outputs when they are
large, and the poisoned blocks for a large output are one, not four."""
import random
import weakref

import pytest
import torch

from evo_kernels.config import TimingConfig, from_dict
from evo_kernels.harness import checks, integrity, judge as judge_mod, timing, trials
from evo_kernels.harness.backends import get_backend
from evo_kernels.model.problem import load_problem

from conftest import PROBLEMS

LINEAR = str(PROBLEMS / "tiny_linear_relu.py")


def test_the_judge_frees_a_trials_tensors_before_making_the_next(monkeypatch):
    backend = get_backend("cpu")
    j = judge_mod.Judge("cpu", backend)
    j.begin({"problem": LINEAR, "config": from_dict({}).to_dict(), "init_seed": 1, "plan_seed": 2, "idx_seed": 3})
    case = j.case
    old = [torch.randn(8, 16)]
    case.inputs, case.ref_out, case.oracle_out = old, torch.randn(8, 16), torch.randn(8, 16, dtype=torch.float64)
    alive = [weakref.ref(t) for t in (old[0], case.ref_out, case.oracle_out)]
    del old
    seen = []
    make = trials.make_inputs

    def watching(problem, trial, device):
        seen.append([r() is None for r in alive])
        return make(problem, trial, device)
    monkeypatch.setattr(trials, "make_inputs", watching)
    trial = case.trials[0]
    j.run_reference({"trial": trial.to_dict()})
    assert seen and all(all(freed) for freed in seen), seen
    assert isinstance(case.ref_out, torch.Tensor) and case.oracle_out.dtype == torch.float64
    j.end()


def test_timing_releases_the_output_before_fresh_inputs_and_keeps_fewer_large_outputs(monkeypatch):
    problem = load_problem(LINEAR)
    model = problem.make_model(problem.Model, 0, "cpu")
    outputs: list[weakref.ref] = []
    forward = model.forward

    def recording(*a):
        out = forward(*a)
        outputs.append(weakref.ref(out))
        return out
    model.forward = recording
    make = problem.make_inputs
    live_at_refresh = []
    seeds = set()

    def make_inputs(seed, device):
        if seed not in seeds:  # a repetition's fresh inputs (a seed seen again: the kept one's check)
            seeds.add(seed)
            live_at_refresh.append(sum(r() is not None for r in outputs))
        return make(seed, device)
    monkeypatch.setattr(problem, "make_inputs", make_inputs)
    cfg = TimingConfig(warmup_calls=1, warmup_ms=0, min_reps=12, min_time_ms=0, flush_cache=False)
    out_bytes = 8 * 16 * 4
    monkeypatch.setattr(timing, "KEPT_BYTES", 2 * out_bytes + 1)
    # After each call, the defendant's checks (threads still running candidate code) run as well.
    _, kept = timing.time_model(model, problem, cfg, random.Random(0), get_backend("cpu"), keep=3,
                                after_call=integrity.candidate_threads)
    assert len(kept) == 2  # three asked for, two fit
    # Kept outputs are copies: when a repetition's inputs are made, no output of the model is alive.
    assert max(live_at_refresh) == 0, live_at_refresh
    monkeypatch.setattr(timing, "KEPT_BYTES", 1)
    _, kept = timing.time_model(model, problem, cfg, random.Random(0), get_backend("cpu"), keep=3)
    assert len(kept) == 1  # always at least one


def test_one_poisoned_block_for_a_large_output(monkeypatch):
    made = []
    empty = torch.empty

    def counting(*a, **k):
        made.append(a[0])
        return empty(*a, **k)
    monkeypatch.setattr(checks.torch, "empty", counting)
    monkeypatch.setattr(checks, "POISON_COPIES_UP_TO", 1000)
    checks.poison_sizes([800, 4000], "cpu")
    assert made == [800, 800, 800, 800, 4000]


def test_workers_trace_their_memory_per_request_when_asked(tmp_path):
    import json
    import os

    from conftest import CANDIDATES, CONFIGS, run_cli
    trace = tmp_path / "memory.jsonl"
    env = dict(os.environ, EVO_KERNELS_MEMORY_TRACE=str(trace))
    code, out, err = run_cli("bench", LINEAR, str(CANDIDATES / "linear_relu_addmm.py"), "--json", "--device", "cpu",
                             "--config", str(CONFIGS / "fast.yaml"), env=env)
    assert code == 0 and out["status"] == "ok", err[-1500:]
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    ops = {(r["role"], r["op"]) for r in lines}
    assert {("judge", "baselines"), ("judge", "compare"), ("defendant", "trial"), ("defendant", "time")} <= ops, ops


def test_the_strict_comparison_reads_in_chunks_with_the_same_verdicts(monkeypatch):
    torch.manual_seed(0)
    ref = torch.randn(5000)
    ref[[7, 4000]] = float("nan")
    ref[[11, 2500]] = float("inf")
    close = ref + 1e-6
    far = close.clone()
    far[4999] += 1.0
    whole = checks.compare_tensor(ref, close, 1e-4, 1e-4, "x")
    monkeypatch.setattr(checks, "_CHUNK", 64)  # 79 chunks
    assert checks.compare_tensor(ref, close, 1e-4, 1e-4, "x") == pytest.approx(whole, rel=1e-9)
    with pytest.raises(checks.Reject, match="1 of 4996 elements outside"):
        checks.compare_tensor(ref, far, 1e-4, 1e-4, "x")
    moved = close.clone()
    moved[2500], moved[2501] = moved[2501], float("inf")
    with pytest.raises(checks.Reject, match="infinities differ"):
        checks.compare_tensor(ref, moved, 1e-4, 1e-4, "x")
