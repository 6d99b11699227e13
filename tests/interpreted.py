"""Template numerics under Triton's interpreter, shared by the template tests: each (problem file,
candidate file) pair is run in one subprocess (Triton imported once) with TRITON_INTERPRET=1, the
candidate against the problem's reference on the same inputs, and, where asked, against a float64
oracle: no less accurate than the reference's fp32 by more than a factor."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import json, sys, torch
from pathlib import Path
from evo_kernels.model.problem import import_file, load_problem
opts = json.loads(sys.argv[1])
pairs = sys.argv[2:]
for i in range(0, len(pairs), 2):
    problem = load_problem(pairs[i])
    module = import_file(Path(pairs[i + 1]), f"interpreted_{i}")
    ref = problem.make_model(problem.Model, 0, "cpu")
    new = problem.make_model(module.ModelNew, 1, "cpu")
    with torch.no_grad():
        if opts["random_params"]:  # parameters away from their initial ones (a norm's 1 and 0)
            for p in ref.parameters():
                p.copy_(torch.randn_like(p))
        new.load_state_dict(ref.state_dict())
    for seed in opts["seeds"]:
        x = problem.make_inputs(seed, "cpu")
        with torch.no_grad():
            want, got = ref(*[t.clone() for t in x]), new(*[t.clone() for t in x])
        assert got.shape == want.shape and got.dtype == want.dtype, (pairs[i + 1], got.shape, want.shape, got.dtype)
        torch.testing.assert_close(got, want, atol=opts["tol"], rtol=opts["tol"], equal_nan=opts["equal_nan"],
                                   msg=lambda m: pairs[i + 1] + ": " + m)
        if opts["oracle_factor"]:
            with torch.no_grad():
                exact = ref.double()(*[t.double() if t.is_floating_point() else t for t in x])
            ref.float()
            err = lambda y: float((y.double() - exact).norm() / exact.norm())
            assert err(got) <= max(opts["oracle_factor"] * err(want), opts["oracle_floor"]), \\
                (pairs[i + 1], err(got), err(want))
    print("ok", Path(pairs[i]).stem)
"""


def check_pairs(pairs: list[str], *, tol: float = 1e-5, seeds: tuple[int, ...] = (7,), equal_nan: bool = False,
                random_params: bool = False, oracle_factor: float = 0.0, oracle_floor: float = 0.0,
                timeout: float = 900) -> str:
    """Run every (problem, candidate) pair; assert each passed; return the subprocess's output."""
    opts = dict(tol=tol, seeds=list(seeds), equal_nan=equal_nan, random_params=random_params,
                oracle_factor=oracle_factor, oracle_floor=oracle_floor)
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(opts), *pairs], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("ok ") == len(pairs) // 2, proc.stdout
    return proc.stdout


LAUNCHES = """
import json, sys, torch
from collections import Counter
from pathlib import Path
from evo_kernels.model.problem import import_file, load_problem
problem = load_problem(sys.argv[1])
module = import_file(Path(sys.argv[2]), "counted")
names, modes = json.loads(sys.argv[3]), json.loads(sys.argv[4])
counts, programs = Counter(), Counter()
class Counted:
    def __init__(self, name):
        self.name, self.kernel = name, getattr(module, name)
    def __getitem__(self, grid):
        counts[self.name] += 1
        if isinstance(grid, tuple):  # the programs it launches (a grid function's are not counted)
            n = 1
            for g in grid:
                n *= g
            programs[self.name] += n
        return self.kernel[grid]
for name in names:
    setattr(module, name, Counted(name))
model = problem.make_model(module.ModelNew, 1, "cpu")
x = problem.make_inputs(1, "cpu")
out, grids = {}, {}
with torch.no_grad():
    for mode in modes:
        model.train(mode == "train")
        counts.clear()
        programs.clear()
        model(*x)
        out[mode] = {name: counts[name] for name in names}
        grids[mode] = {name: programs[name] for name in names}
print("launches", json.dumps(out))
print("programs", json.dumps(grids))
"""


def launches(problem: str, candidate: str, names: list[str], modes: tuple[str, ...] = ("train",),
             timeout: float = 600) -> dict[str, dict[str, int]]:
    """How many times each of the candidate's kernels `names` is launched by one call, in each mode
    in turn (interpreted)."""
    return launches_and_programs(problem, candidate, names, modes, timeout)[0]


def launches_and_programs(problem: str, candidate: str, names: list[str], modes: tuple[str, ...] = ("train",),
                          timeout: float = 600) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """`launches`, and how many programs those launches ran in all."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", LAUNCHES, problem, candidate, json.dumps(names), json.dumps(modes)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and "launches " in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    found = {l.split(" ", 1)[0]: json.loads(l.split(" ", 1)[1]) for l in proc.stdout.splitlines()
             if l.startswith(("launches ", "programs "))}
    return found["launches"], found["programs"]


BATCHNORM_SCRIPT = """
import sys, torch
from pathlib import Path
from evo_kernels.model.problem import import_file, load_problem
problem = load_problem(sys.argv[1])
module = import_file(Path(sys.argv[2]), "cand")
ref = problem.make_model(problem.Model, 0, "cpu")
new = problem.make_model(module.ModelNew, 1, "cpu")
with torch.no_grad():
    for p in ref.buffers():
        if p.is_floating_point():
            p.copy_(torch.rand_like(p) + 0.5)  # running statistics away from 0 and 1
    new.load_state_dict(ref.state_dict())
    x = problem.make_inputs(4, "cpu")
    for training in (True, False):  # batch statistics (running ones updated), then the running ones
        ref.train(training)
        new.train(training)
        torch.testing.assert_close(new(*x), ref(*x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(new.bn.running_mean, ref.bn.running_mean)
        torch.testing.assert_close(new.bn.running_var, ref.bn.running_var)
print("train and eval ok")
"""


def check_batchnorm_train_and_eval(problem: str, candidate: str, timeout: float = 600) -> None:
    """The candidate of a problem whose model has a BatchNorm `bn`, under the interpreter: the same
    output as the reference in training (batch statistics, the running ones updated alike) and then in
    eval (the running ones), with running statistics away from 0 and 1."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", BATCHNORM_SCRIPT, problem, candidate], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and "train and eval ok" in proc.stdout, proc.stderr[-3000:]
