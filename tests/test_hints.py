"""Human guidance: --hint reaches every LLM prompt and is recorded with the run; a hint added to a
running search (`evo-kernels hint RUN_DIR TEXT`) reaches the prompts of its next generation."""
import json

import yaml

from evo_kernels.run.hints import add_hint

from conftest import CONFIGS, ROOT, run_cli
from test_llm import CORRECT, PROBLEM, _env, server  # noqa: F401 - server is a fixture


def _config(tmp_path, drafts, budget):
    data = yaml.safe_load((CONFIGS / "llm_local.yaml").read_text())
    data["search"].update(proposers=["llm"], drafts_per_generation=drafts)
    data["budget"] = budget
    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _prompt(body):
    return "\n".join(m["content"] for m in body["messages"])


def test_hint_flag_reaches_every_prompt_and_the_summary(tmp_path, server):
    server.default = lambda body: ("answer", CORRECT)
    run_dir = tmp_path / "run"
    code, summary, err = run_cli("optimize", PROBLEM, "--config", str(_config(tmp_path, 2, 3)), "--device", "cpu",
                                 "--run-dir", str(run_dir), "--json", "--hint", "fold the bias into addmm",
                                 "--hint", "keep fp32", env=_env(server))
    assert code == 0, err
    assert server.requests and all("- fold the bias into addmm\n- keep fp32" in _prompt(b) for b in server.requests)
    assert summary["hints"] == ["fold the bias into addmm", "keep fp32"]


def test_a_hint_added_while_running_reaches_the_next_generation(tmp_path, server):
    run_dir = tmp_path / "run"
    seen = []

    def answer(body):
        seen.append(_prompt(body))
        if len(seen) == 1:  # the search is running: a person adds guidance (what `evo-kernels hint` does;
            add_hint(run_dir, "try torch.addmm with the bias")  # in-process: the client's timeout is 1 s)
        return ("answer", CORRECT.replace("# scenario: correct", f"# answer {len(seen)}"))

    server.default = answer
    code, summary, err = run_cli("optimize", PROBLEM, "--config", str(_config(tmp_path, 1, 4)), "--device", "cpu",
                                 "--run-dir", str(run_dir), "--json", env=_env(server))
    assert code == 0, err
    assert len(seen) >= 2
    assert "try torch.addmm" not in seen[0]  # asked before the hint was added
    assert all("- try torch.addmm with the bias" in p for p in seen[1:])  # every later generation
    assert summary["hints"] == ["try torch.addmm with the bias"]
    assert (run_dir / "hints.txt").read_text() == "try torch.addmm with the bias\n"


def test_hint_command(tmp_path):
    code, _, err = run_cli("hint", str(tmp_path), "anything")
    assert code == 2 and "no run here" in err
    (tmp_path / "store.sqlite").write_bytes(b"")
    code, _, err = run_cli("hint", str(tmp_path), "  use   channels_last  ")
    assert code == 0, err
    code, _, err = run_cli("hint", str(tmp_path), "prefer fused epilogues")
    assert (tmp_path / "hints.txt").read_text() == "use channels_last\nprefer fused epilogues\n"
