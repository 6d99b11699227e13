"""The red-team suite: every cheating candidate in cheats/ is rejected with a reason that names its
exploit, every honest candidate in honest/ is accepted, all through `evo-kernels bench ... --json`
(the full verify-then-time pipeline: the judge and the defendant), one CLI run per problem and config
with every candidate of that group, judged in turn by one evaluator.

Each candidate file says what it is through module-level constants, read here without importing it
(importing a cheat would patch this process): PROBLEM (a file in problems/), EXPECT (cheats: the tag
the reason starts with, or a tuple of tags where more than one check may fire first),
CONTAINS (optional: text the reason, or an honest candidate's notes, must contain) and CONFIG
(optional: a file in configs/, default fast.yaml). A cheat's docstring starts with "Exploit N".
"""
import ast
import json
import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import ROOT, run_cli  # noqa: E402

HERE = Path(__file__).resolve().parent
CHEATS = sorted((HERE / "cheats").glob("*.py"))
HONEST = sorted((HERE / "honest").glob("*.py"))


def constants(path: Path) -> dict:
    tree = ast.parse(path.read_text())
    out = {"doc": ast.get_docstring(tree) or ""}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("PROBLEM", "EXPECT", "CONTAINS", "CONFIG"):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def bench(candidate: Path, meta: dict, env: dict | None = None) -> tuple[int, dict, str]:
    code, out, err = run_cli("bench", str(HERE / "problems" / meta["PROBLEM"]), str(candidate), "--json",
                             "--device", "cpu", "--config", str(HERE / "configs" / meta.get("CONFIG", "fast.yaml")),
                             env=env, timeout=300)
    assert out is not None, f"no JSON from the CLI (exit {code}): {err[-2000:]}"
    return code, out, err


# Checks that read timings (the audit's speed of light and ceiling, wall time against the timer):
# the cheats caught by them are judged alone, the others two runs at a time (each holds one torch
# thread).
TIMED_CHECKS = ("audit", "hidden_work")


def _judge_group(problem: str, config: str, paths: list[Path]) -> dict[Path, dict]:
    """One `bench --json` run (one evaluator) over a group's candidates: each one's JSON object."""
    proc = subprocess.run([sys.executable, "-m", "evo_kernels", "bench", str(HERE / "problems" / problem),
                           *map(str, paths), "--json", "--device", "cpu", "--config", str(HERE / "configs" / config)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(paths), f"{problem}/{config}: {len(lines)} results for {len(paths)}: {proc.stderr[-2000:]}"
    for path, line in zip(paths, lines):
        assert line["candidate_file"] == str(path)
    return dict(zip(paths, lines))


@pytest.fixture(scope="module")
def verdicts() -> dict[Path, dict]:
    """Every cheat and honest candidate judged through `bench --json`, one CLI run (one evaluator) per
    problem, config and whether a timed check is to catch it: its JSON object, by path."""
    groups: dict[tuple[bool, str, str], list[Path]] = {}
    for path in CHEATS + HONEST:
        meta = constants(path)
        expect = meta.get("EXPECT", ())
        timed = any(tag in TIMED_CHECKS for tag in (expect if isinstance(expect, tuple) else (expect,)))
        groups.setdefault((timed, meta["PROBLEM"], meta.get("CONFIG", "fast.yaml")), []).append(path)
    out: dict[Path, dict] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        shared = sorted(key for key in groups if not key[0])
        for judged in pool.map(lambda key: _judge_group(key[1], key[2], groups[key]), shared):
            out.update(judged)
    for key in sorted(key for key in groups if key[0]):
        out.update(_judge_group(key[1], key[2], groups[key]))
    return out


@pytest.mark.parametrize("path", CHEATS, ids=[p.stem for p in CHEATS])
def test_cheat_is_rejected_naming_its_exploit(path: Path, verdicts):
    meta = constants(path)
    expect = meta["EXPECT"] if isinstance(meta["EXPECT"], tuple) else (meta["EXPECT"],)
    out = verdicts[path]
    assert out["status"] in ("incorrect", "rejected"), f"{path.name}: status {out['status']}: {out['reason']}"
    assert out["speedup"] is None
    assert out["reason"].startswith(expect), f"{path.name}: expected {expect}, got: {out['reason']}"
    assert meta.get("CONTAINS", "") in out["reason"], out["reason"]


@pytest.mark.parametrize("path", HONEST, ids=[p.stem for p in HONEST])
def test_honest_candidate_is_accepted(path: Path, verdicts):
    meta = constants(path)
    out = verdicts[path]
    assert out["status"] == "ok", f"{path.name}: {out['status']}: {out['reason']}"
    assert out["speedup"] is not None and out["speedup"] > 0
    assert meta.get("CONTAINS", "") in " ".join(out["notes"]), out["notes"]


def test_suite_covers_every_exploit():
    """Every exploit class 1-17 has cheats (threat_model.md names them), at least 15 of them caught at
    run time (past the static policy, or with it off), and at least 8 honest candidates."""
    exploits = set()
    runtime = 0
    for path in CHEATS:
        meta = constants(path)
        found = re.match(r"Exploit (\d+)", meta["doc"])
        assert found, f"{path.name}: the docstring must start with 'Exploit N'"
        exploits.add(int(found.group(1)))
        tags = meta["EXPECT"] if isinstance(meta["EXPECT"], tuple) else (meta["EXPECT"],)
        runtime += not any(t.startswith("policy:") for t in tags)
    assert exploits == set(range(1, 18))
    assert len(CHEATS) >= 15 and runtime >= 15 and len(HONEST) >= 8


def test_reduced_precision_when_allowed_is_accepted_and_marked():
    """The same switch that onednn_bf16.py is rejected for, in a run that allows reduced precision:
    accepted, and the report says so."""
    path = HERE / "cheats" / "onednn_bf16.py"
    code, out, err = bench(path, {"PROBLEM": "matmul.py", "CONFIG": "reduced_precision.yaml"})
    assert code == 0 and out["status"] == "ok", out["reason"]
    notes = " ".join(out["notes"])
    assert "reduced_precision_allowed" in notes and "reduced_precision: " in notes and "mkldnn" in notes


def test_worker_sees_no_secrets_and_no_network():
    """With the static policy off, a probe reads the environment and connects to a port this test
    listens on; it answers wrongly (zeros) if either works, so `ok` means neither did."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    source = (HERE / "probes" / "secrets_and_network.py").read_text().replace("PORT = 0", f"PORT = {port}")
    probe = HERE / "probes" / f"_probe_{os.getpid()}.py"
    probe.write_text(source)
    env = dict(os.environ, OPENAI_API_KEY="sk-redteam", EVO_REDTEAM_TOKEN="s3cr3t", HF_TOKEN="hf-redteam")
    try:
        code, out, err = bench(probe, {"PROBLEM": "row_sum.py", "CONFIG": "no_policy.yaml"}, env=env)
    finally:
        probe.unlink()
        listener.close()
    assert code == 0 and out["status"] == "ok", out["reason"]
