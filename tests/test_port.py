"""Port a finished run from one hardware label to another on a simulated two-node Ray cluster, and
export its best kernels in KernelBench's layout."""
import json

import pytest

from conftest import CONFIGS, PROBLEMS, run_cli

ray = pytest.importorskip("ray")

PROBLEM = str(PROBLEMS / "tiny_linear_relu.py")


def test_port_from_cpu_a_to_cpu_b_and_export(cluster, tmp_path):
    cfg = tmp_path / "ray.yaml"
    cfg.write_text((CONFIGS / "search_local.yaml").read_text().replace("backend: local", "backend: ray")
)
    source = tmp_path / "source"
    code, summary, err = run_cli("optimize", PROBLEM, "--config", str(cfg), "--device", "cpu", "--address",
                                 cluster.address, "--run-dir", str(source), "--budget", "8", "--json")
    assert code == 0, err
    assert summary["hardware"] == "cpu-a"  # the first label: the search ran on node a

    code, rows, err = run_cli("port", str(source), "--config", str(cfg), "--device", "cpu", "--address",
                              cluster.address, "--hw", "cpu-b", "--budget-per-problem", "5", "--json")
    assert code == 0, err
    (row,) = rows
    assert row["source_hardware"] == "cpu-a" and row["target_hardware"] == "cpu-b"
    assert row["as_is_status"] == "ok"
    assert row["verdict"].startswith("carried over")
    assert row["final_speedup"] > 0 and row["final_technique"]  # the search went on from the ported candidate
    port_dir = source / "port-cpu-b"
    assert json.loads((port_dir / "port.json").read_text()) == rows
    assert "| tiny_linear_relu | " in (port_dir / "port.md").read_text()

    code, _, err = run_cli("export", str(source))
    assert code == 0, err
    exported = source / "export" / "problems" / "tiny_linear_relu.py"
    assert exported.exists() and "class ModelNew" in exported.read_text()


def test_a_run_moved_to_another_machine_ports_from_its_stored_problem_source(tmp_path):
    from evo_kernels.model.candidate import Candidate
    from evo_kernels.run.port import Ported
    here = tmp_path / "problem.py"
    here.write_text("# on this machine\n")
    assert Ported(str(here), "p", Candidate("x = 1"), "hw", 1.5, "# stored\n").problem_file(tmp_path / "port") == str(here)
    gone = Ported("/elsewhere/level2/05_Gemm.py", "p", Candidate("x = 1"), "hw", 1.5, "# stored\n")
    path = gone.problem_file(tmp_path / "port")
    assert path == str(tmp_path / "port" / "sources" / "level2" / "05_Gemm.py") and open(path).read() == "# stored\n"
