"""What a user meets: a search that spends its budget on distinct drafts or says why it stopped, a
clean stop on SIGTERM that --resume continues, and messages that name what is wrong."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import CONFIGS, PROBLEMS, ROOT, run_cli

LINEAR = str(PROBLEMS / "tiny_linear_relu.py")
CFG = ["--config", str(CONFIGS / "search_local.yaml"), "--device", "cpu"]


def _ids(run_dir):
    db = sqlite3.connect(run_dir / "store.sqlite")
    return [r[0] for r in db.execute("SELECT candidate_id FROM evaluations WHERE status != 'proposal_error' ORDER BY seq")]


def test_a_budget_the_proposers_can_fill_is_spent_on_distinct_candidates(tmp_path):
    run_dir = tmp_path / "run"
    code, summary, err = run_cli("optimize", LINEAR, *CFG, "--budget", "10", "--run-dir", str(run_dir), "--json")
    assert code == 0, err[-2000:]
    ids = _ids(run_dir)
    assert len(ids) == 10 and len(set(ids)) == 10  # no candidate evaluated twice
    assert summary["stopped"] == "budget" and "budget of 10" in summary["stopped_because"]


def test_a_budget_the_proposers_cannot_fill_ends_with_no_new_drafts_and_says_so(tmp_path):
    # The offline rules without compile have nothing for a Linear -> ReLU on the CPU.
    cfg = tmp_path / "rules.yaml"
    cfg.write_text((CONFIGS / "search_local.yaml").read_text().replace(
        'proposers: ["tests.cheap_proposer:CheapProposer"]', "proposers: [rules]"))
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "evo_kernels", "optimize", LINEAR, "--config", str(cfg), "--device",
                           "cpu", "--budget", "40", "--exclude", "compile", "--run-dir", str(run_dir)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == "no_new_drafts" and summary["evaluations"] < 40
    assert "had no new draft" in summary["stopped_because"]
    assert proc.stdout.strip().splitlines()[-1].startswith("stopped: no_new_drafts")


def test_sigterm_checkpoints_exits_143_and_resume_continues(tmp_path):
    run_dir = tmp_path / "run"
    cfg = tmp_path / "ray.yaml"  # through Ray, whose own SIGTERM handler dumps native stacks
    cfg.write_text((CONFIGS / "search_local.yaml").read_text().replace("backend: local", "backend: ray"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "evo_kernels", "optimize", LINEAR, "--config", str(cfg), "--device",
                             "cpu", "--budget", "40", "--run-dir", str(run_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if (run_dir / "store.sqlite").exists() and len(_ids(run_dir)) >= 3:
                break
        except sqlite3.OperationalError:  # the file made, its tables not yet
            pass
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in err and "--resume" in err and "logging.cc" not in err, err[-3000:]
    done = _ids(run_dir)
    code, summary, err = run_cli("optimize", LINEAR, *CFG, "--budget", str(len(done) + 3), "--run-dir", str(run_dir),
                                 "--resume", "--json")
    assert code == 0, err[-2000:]
    again = _ids(run_dir)
    assert again[:len(done)] == done and len(again) == len(done) + 3 and len(set(again)) == len(again)


def test_a_reference_that_raises_is_named_before_any_evaluator_starts(tmp_path):
    boom = tmp_path / "boom.py"
    boom.write_text("import torch\nfrom torch import nn\n\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
                    "        raise ValueError('boom from forward')\n\n\ndef get_inputs():\n    return [torch.randn(4, 4)]\n\n\n"
                    "def get_init_inputs():\n    return []\n")
    code, _, err = run_cli("optimize", str(boom), *CFG, "--run-dir", str(tmp_path / "run"))
    assert code == 2
    assert "the reference Model raised ValueError: boom from forward (line 7" in err and "deterministic" not in err
    assert "Ray" not in err  # no evaluator was started


def test_a_directory_points_to_suite_and_help_says_what_the_tool_does(tmp_path):
    code, _, err = run_cli("optimize", str(PROBLEMS / "suite"), *CFG)
    assert code == 2 and "is a directory" in err and "evo-kernels suite" in err
    proc = subprocess.run([sys.executable, "-m", "evo_kernels", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.split("\n\n")[1].startswith("evo_kernels searches for a faster drop-in ModelNew")


FULL_AFTER = """
import sqlite3, sys
from evo_kernels import store
from evo_kernels.cli import main
real, calls = store.SQLiteStore.add_evaluation, []
def add_evaluation(self, *a, **k):  # the disk fills up after three evaluations
    calls.append(1)
    if len(calls) > 3:
        raise sqlite3.OperationalError("database or disk is full")
    return real(self, *a, **k)
store.SQLiteStore.add_evaluation = add_evaluation
sys.exit(main(sys.argv[1:]))
"""


def test_a_full_disk_stops_the_run_with_a_message_and_resume_continues(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", FULL_AFTER, "optimize", LINEAR, *CFG, "--budget", "8", "--run-dir",
                           str(run_dir), "--json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 75, proc.stderr[-3000:]
    assert "no space left on the disk" in proc.stderr and "--resume --run-dir" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["status"] == "error"
    done = _ids(run_dir)
    assert len(done) == 3  # what was recorded before the disk filled
    code, summary, err = run_cli("optimize", LINEAR, *CFG, "--budget", "8", "--run-dir", str(run_dir), "--resume",
                                 "--json")
    assert code == 0, err[-2000:]
    again = _ids(run_dir)
    assert again[:3] == done and len(again) == 8 and len(set(again)) == 8


def test_a_full_disk_is_told_apart_from_other_failures():
    import errno

    from evo_kernels.run.disk import disk_full_message, is_disk_full
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device", "/runs/x/best.py"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
    assert not is_disk_full(RuntimeError("No space left on device"))  # a candidate's words are not the disk
    msg = disk_full_message(OSError(errno.ENOSPC, "No space left on device", "/runs/x/best.py"), "/runs/x",
                            "evo-kernels optimize p.py")
    assert "writing /runs/x/best.py" in msg and "evo-kernels optimize p.py --resume --run-dir /runs/x" in msg


EVALUATOR_SHORT = """
import sys
from evo_kernels.harness.sandbox import SandboxWorker
from evo_kernels.cli import main
SandboxWorker.short_of_disk = lambda self: "/scratch has 3 MiB free"  # the evaluator's disk is full
sys.exit(main(sys.argv[1:]))
"""


def test_an_evaluators_full_disk_stops_the_run_without_charging_the_candidate(tmp_path):
    # A candidate that fails where the evaluator's disk is short of space may have failed for the
    # disk: the run stops, resumable, and its failure is not recorded against it.
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nclass ModelNew(torch.nn.Module):\n    def forward(self, x)\n        return x\n")
    run_dir = tmp_path / "run"
    args = ["optimize", LINEAR, *CFG, "--budget", "6", "--run-dir", str(run_dir), "--start", str(broken)]
    proc = subprocess.run([sys.executable, "-c", EVALUATOR_SHORT, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 75, proc.stderr[-3000:]
    assert "out of disk space: /scratch has 3 MiB free" in proc.stderr and "--resume" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    db = sqlite3.connect(run_dir / "store.sqlite")
    assert {r[0] for r in db.execute("SELECT status FROM evaluations")} == {"ok"}  # no failure recorded
    code, _, err = run_cli(*args[:-2], "--resume", "--json")
    assert code == 0, err[-2000:]
    db = sqlite3.connect(run_dir / "store.sqlite")
    assert "compile_error" in {r[0] for r in db.execute("SELECT status FROM evaluations")}  # the disk had room


def test_where_a_worker_writes_is_checked_for_space(tmp_path, monkeypatch):
    import errno
    import shutil
    from collections import namedtuple

    from evo_kernels.harness.sandbox import LOW_DISK_BYTES, SandboxWorker
    from evo_kernels.model.candidate import Evaluation
    from evo_kernels.run.disk import DiskFull, check_evaluation, is_disk_full
    usage = namedtuple("usage", "total used free")
    seen = []

    def disk_usage(path):
        seen.append(path)
        return usage(1 << 40, 0, LOW_DISK_BYTES - 1 if str(path).startswith(str(tmp_path)) else 1 << 40)
    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    assert SandboxWorker("cpu", cache_dir=tmp_path / "cache" / "not_yet").short_of_disk() == f"{tmp_path} has 63 MiB free"
    assert seen[-1] == tmp_path  # the cache directory not made yet: the nearest directory that is
    assert SandboxWorker("cpu").short_of_disk() is None
    ev = Evaluation(status="compile_error", reason="import failed")
    check_evaluation(ev, "hw:cpu")  # no note: nothing to say
    ev.notes.append("disk_full: /tmp has 3 MiB free")
    try:
        check_evaluation(ev, "hw:cpu")
        raise AssertionError("no DiskFull")
    except DiskFull as e:
        assert e.errno == errno.ENOSPC and is_disk_full(e) and "hw:cpu" in str(e) and "/tmp has 3 MiB" in str(e)
