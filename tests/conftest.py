import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PROBLEMS = TESTS / "problems"
CANDIDATES = TESTS / "candidates"
CONFIGS = TESTS / "configs"


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> tuple[int, dict | None, str]:
    """Run `python -m evo_kernels ARGS`; return (exit code, the last stdout line as JSON or None, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "evo_kernels", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    payload = None
    if lines:
        try:
            payload = json.loads(lines[-1])
        except json.JSONDecodeError:
            payload = None
    return proc.returncode, payload, proc.stderr


@pytest.fixture
def fast_config():
    from evo_kernels import config
    return config.load(CONFIGS / "fast.yaml")


@pytest.fixture(scope="module")
def cluster():
    """A two-node Ray cluster on this machine: nodes labelled hw:cpu-a and hw:cpu-b, one CPU each."""
    from ray.cluster_utils import Cluster
    node = {"num_cpus": 1, "object_store_memory": 80 << 20}
    c = Cluster(initialize_head=True, head_node_args={**node, "resources": {"hw:cpu-a": 1}})
    c.add_node(**node, resources={"hw:cpu-b": 1})
    c.wait_for_nodes()
    yield c
    c.shutdown()
