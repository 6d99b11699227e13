"""`evo-kernels optimize` end to end on the CPU (local pool, the cheap test proposer), and resume."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time


from conftest import CONFIGS, PROBLEMS, ROOT, run_cli

PROBLEM = str(PROBLEMS / "tiny_linear_relu.py")
CFG = ["--config", str(CONFIGS / "search_local.yaml"), "--device", "cpu"]


def _evaluated_ids(run_dir):
    db = sqlite3.connect(run_dir / "store.sqlite")
    return [r[0] for r in db.execute("SELECT candidate_id FROM evaluations ORDER BY seq")]


def test_optimize_writes_summary_store_and_a_drop_in_best(tmp_path):
    run_dir = tmp_path / "run"
    code, summary, err = run_cli("optimize", PROBLEM, *CFG, "--run-dir", str(run_dir), "--json", "--budget", "10")
    assert code == 0, err
    assert summary == json.loads((run_dir / "summary.json").read_text())
    for key in ("problem", "device", "best_speedup", "evaluations", "by_status", "by_proposer"):
        assert key in summary
    assert summary["evaluations"] == 10 == len(_evaluated_ids(run_dir))
    assert summary["by_proposer"]["reference"] == 1 and summary["by_proposer"]["cheap"] == 9
    assert sum(summary["by_status"].values()) == 10
    assert summary["best_speedup"] >= 1.0  # never worse than the faster baseline
    assert (run_dir / "optuna.sqlite").exists()

    # best.py runs without evo_kernels: a clean interpreter, no PYTHONPATH, another directory.
    check = f"""
import importlib.util, torch
def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m
best = load({str(run_dir / 'best.py')!r}, 'best')
prob = load({PROBLEM!r}, 'prob')
ref = prob.Model(*prob.get_init_inputs())
new = best.ModelNew(*prob.get_init_inputs())
new.load_state_dict(ref.state_dict(), strict=False)
x = torch.randn(8, 16)
assert torch.allclose(new(x), ref(x), atol=1e-5), 'best.py differs from the reference'
import sys; assert 'evo_kernels' not in sys.modules
print('standalone ok')
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "standalone ok" in out.stdout, out.stderr


def test_resume_after_kill_loses_nothing_and_repeats_nothing(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "evo_kernels", "optimize", PROBLEM, *CFG, "--run-dir", str(run_dir),
           "--budget", "16"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        if (run_dir / "store.sqlite").exists():
            try:
                if len(_evaluated_ids(run_dir)) >= 6:
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # like kill -9 of the driver
    proc.wait()
    before = _evaluated_ids(run_dir)
    assert 6 <= len(before) < 16

    code, summary, err = run_cli("optimize", PROBLEM, *CFG, "--run-dir", str(run_dir), "--resume",
                                 "--budget", "16", "--json")
    assert code == 0, err
    after = _evaluated_ids(run_dir)
    assert after[: len(before)] == before  # nothing recorded was lost
    assert len(after) == len(set(after)) == 16  # nothing evaluated twice; the budget is the run's total
    assert summary["evaluations"] == 16


def test_run_dir_guards(tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("optimize", PROBLEM, *CFG, "--run-dir", str(run_dir), "--resume")
    assert code == 2 and "nothing to resume" in err
    code, _, err = run_cli("optimize", PROBLEM, *CFG, "--run-dir", str(run_dir), "--budget", "2")
    assert code == 0, err
    code, _, err = run_cli("optimize", PROBLEM, *CFG, "--run-dir", str(run_dir), "--budget", "2")
    assert code == 2 and "already holds a run" in err


def test_optimize_through_a_local_ray_instance(tmp_path):
    """The default path: no --config backend override, a local Ray instance started and stopped."""
    cfg = tmp_path / "ray.yaml"
    cfg.write_text((CONFIGS / "search_local.yaml").read_text().replace("backend: local", "backend: ray"))
    run_dir = tmp_path / "run"
    code, summary, err = run_cli("optimize", PROBLEM, "--config", str(cfg), "--device", "cpu",
                                 "--run-dir", str(run_dir), "--budget", "5", "--json")
    assert code == 0, err
    assert summary["evaluations"] == 5 and summary["hardware"].startswith("cpu")


def test_start_from_given_implementations_and_technique_filters(tmp_path):
    from conftest import CANDIDATES
    run_dir = tmp_path / "run"
    code, summary, err = run_cli("optimize", PROBLEM, *CFG, "--run-dir", str(run_dir), "--budget", "8", "--json",
                                 "--start", str(CANDIDATES / "linear_relu_addmm.py"),
                                 "--start", str(CANDIDATES / "linear_relu_wrong.py"), "--exclude", "wrong")
    assert code == 0, err
    seeds = {s["technique"]: s for s in summary["seeds"]}
    assert seeds["start:linear_relu_addmm"]["status"] == "ok"
    assert seeds["start:linear_relu_wrong"]["status"] == "incorrect"  # reported, not dropped
    assert seeds["start:linear_relu_wrong"]["reason"].startswith("accuracy")
    db = sqlite3.connect(run_dir / "store.sqlite")
    techniques = {r[0] for r in db.execute("SELECT technique FROM candidates")}
    assert "wrong" not in techniques  # the excluded technique was never proposed for evaluation
    assert {"start:linear_relu_addmm", "start:linear_relu_wrong"} <= techniques


def test_technique_filter_rules():
    from evo_kernels.search.loop import technique_allowed
    assert technique_allowed("channels_last+compile_tuned", [], [])
    assert not technique_allowed("channels_last+compile_tuned", [], ["compile"])
    assert technique_allowed("compile_tuned", ["compile"], [])
    assert not technique_allowed("channels_last+compile", ["compile"], [])


class _LabelPool:
    """Enough of a pool for an Optimizer to be built: one hardware label, no evaluators."""

    def hardware(self):
        return ["cpu-test"]


def test_time_limit_charges_a_problem_for_its_own_running_evaluations_and_planning(tmp_path):
    from evo_kernels import config
    from evo_kernels.model.candidate import Candidate, Evaluation
    from evo_kernels.run.optimize import Optimizer
    cfg = config.load(str(CONFIGS / "search_local.yaml"), {"device": "cpu", "time_limit_s": 10.0})
    opt = Optimizer(PROBLEM, cfg, tmp_path, _LabelPool())
    # Two evaluations overlapping by 2 s (two evaluators) and one after a gap: 4 + 4 - 2 + 3 = 9 s.
    opt.spans = [(100.0, 104.0), (102.0, 106.0), (200.0, 203.0)]
    assert abs(opt.spent_s() - 9.0) < 1e-9 and not opt._out_of_time()
    opt.planning_s = 1.5  # planning generations is charged too
    assert abs(opt.spent_s() - 10.5) < 1e-9 and opt._out_of_time()
    # A recorded evaluation adds its own span (ending now), taken from the store on resume.
    opt.spans, opt.planning_s = [], 0.0
    opt._record_local(Candidate("x = 1", proposer="t", technique="t"), Evaluation("ok", duration_s=2.5), {"island": 0})
    assert abs(opt.spent_s() - 2.5) < 0.01
    opt.close()
    again = Optimizer(PROBLEM, cfg, tmp_path, _LabelPool(), resume=True)
    assert [round(e - s, 3) for s, e in again.store.evaluation_spans(again.pid)] == [2.5]
    again.close()


class _RecordingPool(_LabelPool):
    """Takes jobs and never answers: the run is killed with them queued or in flight."""

    def __init__(self):
        self.jobs = []
        self.workers = []

    def submit(self, job):
        self.jobs.append(job)


def test_a_killed_run_resumes_the_drafts_it_had_planned_but_not_evaluated(tmp_path):
    from evo_kernels import config
    from evo_kernels.model.candidate import Evaluation
    from evo_kernels.cluster import Result, WorkerInfo
    from evo_kernels.run.optimize import Optimizer
    cfg = config.load(str(CONFIGS / "search_local.yaml"), {"device": "cpu"})
    pool = _RecordingPool()
    first = Optimizer(PROBLEM, cfg, tmp_path, pool)
    first.start()
    ref_job = pool.jobs.pop()
    ref_ev = Evaluation("ok", timing={"median_ms": 1.0}, speedup=1.0,
                        baseline={"eager_ms": 1.0, "compile_ms": None, "best_ms": 1.0})
    first.handle(Result(ref_job, ref_ev, WorkerInfo("w", "cpu-test", "cpu")))
    assert first.feed(1) == 1  # a generation planned (and checkpointed), one draft sent...
    sent = pool.jobs[0]
    planned = {item[0].id if isinstance(item, tuple) else item.base.id for item in first.loop.ready}
    if "study" not in sent.meta:  # a tuning trial in flight is optuna's: failed as stale, its task goes on
        planned.add(sent.candidate.id)
    assert len(planned) >= 2
    first.store.close()  # ...and the driver killed: no close(), no checkpoint after the one of planning

    again = Optimizer(PROBLEM, cfg, tmp_path, _RecordingPool(), resume=True)
    again.start()  # the reference is in the store: the search state comes back with its pending work
    pending = {item[0].id if isinstance(item, tuple) else item.base.id for item in again.loop.ready}
    assert pending == planned  # the draft in flight and those still queued: none lost
    assert again.feed(10) >= len(planned) and again.pool.jobs
    assert {j.candidate.id for j in again.pool.jobs if "study" not in j.meta} <= planned
    again.close()
