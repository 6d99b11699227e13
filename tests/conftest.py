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
