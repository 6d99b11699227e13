"""The red-team suite: every cheating candidate in cheats/ is rejected with a reason that names its
exploit, every honest candidate in honest/ is accepted, all through `evo-kernels bench ... --json`
(the full verify-then-time pipeline, in the sandbox worker).

Each candidate file says what it is through module-level constants, read here without importing it
(importing a cheat would patch this process): PROBLEM (a file in problems/), EXPECT (cheats: the tag
the reason starts with, or a tuple of tags where the device decides which check fires first),
CONTAINS (optional: text the reason, or an honest candidate's notes, must contain) and CONFIG
(optional: a file in configs/, default fast.yaml). A cheat's docstring starts with "Exploit N".
"""
import ast
import os
import re
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import run_cli  # noqa: E402

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


@pytest.mark.parametrize("path", CHEATS, ids=[p.stem for p in CHEATS])
def test_cheat_is_rejected_naming_its_exploit(path: Path):
    meta = constants(path)
    expect = meta["EXPECT"] if isinstance(meta["EXPECT"], tuple) else (meta["EXPECT"],)
    code, out, err = bench(path, meta)
    assert code == 1, f"{path.name}: exit {code}, status {out['status']}: {out['reason']}"
    assert out["status"] in ("incorrect", "rejected"), out
    assert out["speedup"] is None
    assert out["reason"].startswith(expect), f"{path.name}: expected {expect}, got: {out['reason']}"
    assert meta.get("CONTAINS", "") in out["reason"], out["reason"]


@pytest.mark.parametrize("path", HONEST, ids=[p.stem for p in HONEST])
def test_honest_candidate_is_accepted(path: Path):
    meta = constants(path)
    code, out, err = bench(path, meta)
    assert code == 0 and out["status"] == "ok", f"{path.name}: {out['status']}: {out['reason']}\n{err[-1500:]}"
    assert out["speedup"] is not None and out["speedup"] > 0
    assert meta.get("CONTAINS", "") in " ".join(out["notes"]), out["notes"]


def test_suite_covers_every_exploit():
    """At least 15 cheats spanning exploits 1-10 (several past the static policy), 8 honest candidates."""
    exploits = set()
    runtime = 0
    for path in CHEATS:
        meta = constants(path)
        found = re.match(r"Exploit (\d+)", meta["doc"])
        assert found, f"{path.name}: the docstring must start with 'Exploit N'"
        exploits.add(int(found.group(1)))
        tags = meta["EXPECT"] if isinstance(meta["EXPECT"], tuple) else (meta["EXPECT"],)
        runtime += not any(t.startswith("policy:") for t in tags) and "CONFIG" not in meta
    assert exploits == set(range(1, 11))
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
