"""The LLM proposer against a real chat-completions server on loopback (tests/chat_server.py).

End to end (`evo-kernels optimize --llm`): scripted answers (correct, broken, cheating, a
SEARCH/REPLACE edit, garbage, a 429, a timeout) each end with the right status; the key never
leaves the driver; a second run replays the first from its cache without a request. The rest are
unit tests of parsing, the endpoint's retries, the bandit, prompts, config and state.
"""
import json
import os
import sqlite3

import pytest
import yaml

from chat_server import ChatServer
from conftest import CONFIGS, PROBLEMS, ROOT, run_cli
from evo_kernels import config
from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.model.problem import load_problem
from evo_kernels.proposers import Ask, Context, make_proposers, reference_candidate
from evo_kernels.proposers.llm.proposer import LLMProposer
from evo_kernels.proposers.llm.bandit import Bandit
from evo_kernels.proposers.llm.endpoint import Cache, Endpoint
from evo_kernels.proposers.llm.parse import Unusable, extract_source
from evo_kernels.proposers.llm import prompts as llm_prompts

PROBLEM = str(PROBLEMS / "tiny_linear_relu.py")
SECRET = "sk-evo-test-0123456789abcdefSECRET"

MODULE = '''{note}
```python
import torch
from torch import nn


class ModelNew(nn.Module):  # scenario: {name}
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return {expr}
```
'''
CORRECT = MODULE.format(note="Bias folded into addmm.", name="correct",
                        expr="torch.relu(torch.addmm(self.linear.bias, x, self.linear.weight.t()))")
AFTER_429 = MODULE.format(note="Matmul then bias.", name="after-429",
                          expr="torch.relu(x @ self.linear.weight.t() + self.linear.bias)")
BROKEN = MODULE.format(note="A faster matmul.", name="broken", expr="torch.relu(torch.mm(x, self.linear.weight[:3]))")
CHEATING = MODULE.format(note="Reads its configuration.", name="cheating",
                         expr='torch.relu(self.linear(x)) + 0 * len(os.environ.get("OPENAI_API_KEY", ""))'
                         ).replace("import torch\n", "import os\nimport torch\n", 1)
EDIT = '''Call the functional forms directly.
<<<<<<< SEARCH
class ModelNew(Model):
    pass
=======
class ModelNew(Model):  # scenario: edit
    def forward(self, x):
        return torch.nn.functional.relu(torch.nn.functional.linear(x, self.linear.weight, self.linear.bias))
>>>>>>> REPLACE
'''
GARBAGE = "I would rather not write code today. (scenario: garbage)"


@pytest.fixture
def server():
    with ChatServer() as s:
        yield s


def _env(server):
    env = dict(os.environ, OPENAI_BASE_URL=server.url, OPENAI_API_KEY=SECRET)
    env.pop("OPENAI_ORG_ID", None)
    return env


def _llm_rows(run_dir):
    db = sqlite3.connect(run_dir / "store.sqlite")
    rows = db.execute("SELECT c.id, c.source, e.status, e.reason FROM evaluations e JOIN candidates c "
                      "ON c.id = e.candidate_id WHERE c.proposer = 'llm' ORDER BY e.seq").fetchall()
    db.close()
    return rows


def _config(tmp_path, name, **llm):
    """tests/configs/llm_local.yaml with the LLM alone (4 asks, one generation) and `llm` overrides."""
    data = yaml.safe_load((CONFIGS / "llm_local.yaml").read_text())
    data["search"].update(proposers=["llm"], drafts_per_generation=4)
    data["budget"] = 5
    data["llm"]["models"][0]["concurrency"] = 2
    data["llm"].update(llm)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_scripted_answers_end_with_the_right_status(tmp_path, server):
    server.script = [("answer", CORRECT), ("answer", BROKEN), ("answer", CHEATING), ("answer", EDIT),
                     ("answer", GARBAGE), ("status", 429), ("answer", AFTER_429), ("sleep", 3), ("sleep", 3)]
    run_dir = tmp_path / "run"
    code, summary, err = run_cli("optimize", PROBLEM, "--config", str(CONFIGS / "llm_local.yaml"), "--device", "cpu",
                                 "--llm", "test-model", "--run-dir", str(run_dir), "--json", env=_env(server))
    assert code == 0, err
    rows = _llm_rows(run_dir)
    by_scenario = {}
    for _, source, status, reason in rows:
        for name in ("correct", "broken", "cheating", "edit", "garbage", "after-429"):
            if f"scenario: {name}" in source:
                by_scenario[name] = (status, reason)
        if reason.startswith("endpoint: timeout"):
            by_scenario["timeout"] = (status, reason)
    assert by_scenario["correct"][0] == "ok"
    assert by_scenario["edit"][0] == "ok"  # the SEARCH/REPLACE edit applied to the reference
    assert by_scenario["after-429"][0] == "ok"  # the 429 was retried and the next answer used
    assert by_scenario["broken"][0] == "runtime_error"
    assert by_scenario["cheating"][0] == "rejected" and by_scenario["cheating"][1].startswith("policy:environment")
    assert by_scenario["garbage"] == ("proposal_error",
                                      "unusable answer: no ```python block and no SEARCH/REPLACE edit in the answer")
    assert by_scenario["timeout"][0] == "proposal_error" and "2 attempt(s)" in by_scenario["timeout"][1]

    # The summary counts the LLM's candidates, its requests, tokens and cost.
    assert summary["by_proposer"]["llm"] == len(rows) >= 7 and summary["by_proposer"]["cheap"] >= 1
    assert summary["by_status"]["proposal_error"] >= 2
    usage = summary["llm"]["models"]["test-model"]
    answered = len(server.requests) - 3  # the 429 and the two timed-out attempts got no answer
    assert usage["requests"] == answered and usage["cached"] == 0 and usage["failures"] == 1
    assert usage["failed_attempts"] == 3  # the 429 and two timeouts
    assert usage["prompt_tokens"] == 1000 * answered and usage["completion_tokens"] == 200 * answered
    assert usage["cost_usd"] == pytest.approx(answered * (1000 * 1.0 + 200 * 2.0) / 1e6)
    assert summary["evaluations"] == 15  # proposal errors are recorded but spend no budget

    # The key went to the endpoint in the Authorization header and nowhere else.
    assert set(server.auth) == {f"Bearer {SECRET}"}
    assert SECRET not in json.dumps(server.requests)  # the prompts
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    cached = list((run_dir / "llm-cache").glob("*.json"))
    assert len(cached) == answered
    assert all(json.loads(p.read_text())["request"]["messages"][1]["role"] == "user" for p in cached)


def test_a_second_run_replays_the_first_from_the_cache(tmp_path, server):
    server.default = lambda body: ("answer", MODULE.format(
        note="Variant.", name=f"seed {body['seed']}", expr="torch.relu(torch.addmm(self.linear.bias, x, self.linear.weight.t()))"))
    first = tmp_path / "first"
    cfg = _config(tmp_path, "first.yaml")
    code, s1, err = run_cli("optimize", PROBLEM, "--config", str(cfg), "--device", "cpu", "--run-dir", str(first),
                            "--json", env=_env(server))
    assert code == 0, err
    sent = len(server.requests)
    assert sent == 4 and len({r["seed"] for r in server.requests}) == 4  # one question asked 4 times: 4 keys

    second = tmp_path / "second"
    cfg = _config(tmp_path, "second.yaml", cache_dir=str(first / "llm-cache"))
    code, s2, err = run_cli("optimize", PROBLEM, "--config", str(cfg), "--device", "cpu", "--run-dir", str(second),
                            "--json", env=_env(server))
    assert code == 0, err
    assert len(server.requests) == sent  # no request: every answer came from the first run's cache
    assert [r[:3] for r in _llm_rows(second)] == [r[:3] for r in _llm_rows(first)]
    assert s2["llm"]["requests"] == 0 and s2["llm"]["cached"] == 4 and s2["llm"]["cost_usd"] == 0
    assert s1["llm"]["requests"] == 4 and s2["by_proposer"] == s1["by_proposer"]


# -- the proposer without the sandbox ---------------------------------------------------------------

def _proposer(tmp_path, server, **llm):
    cfg = config.load(None, {"llm": {"models": [{"name": "m", **llm.pop("model", {})}], "timeout_s": 1.0,
                                     "max_retries": 1, "backoff_s": 0.0, **llm}})
    for m in cfg.llm.models:
        m.base_url = server.url
    return LLMProposer(seed=0, llm=cfg.llm, run_dir=tmp_path)


def _ref():
    problem = load_problem(PROBLEM)
    ref = reference_candidate(problem)
    return problem, (ref, Evaluation(status="ok", speedup=1.0, timing={"median_ms": 0.01, "iqr_ms": 0.001}))


def test_concurrent_asks_come_back_in_the_order_asked(tmp_path, server):
    import time as _time

    def answer(body):  # the earlier asks answer last
        _time.sleep(0.02 * (body["seed"] % 5))
        return "answer", MODULE.format(note="", name=f"seed {body['seed']}", expr="torch.relu(self.linear(x))")

    server.default = answer
    problem, ref = _ref()
    asks = [Ask([ref], [], 1) for _ in range(6)]
    together = _proposer(tmp_path / "a", server, model={"concurrency": 4}).propose_many(problem, asks)
    one_by_one = _proposer(tmp_path / "b", server, model={"concurrency": 1}).propose_many(problem, asks)
    assert [[c.source for c in out] for out in together] == [[c.source for c in out] for out in one_by_one]
    assert len({out[0].id for out in together}) == 6


def test_offline_mode_sends_nothing_and_a_miss_is_a_proposal_error(tmp_path, server):
    problem, ref = _ref()
    p = _proposer(tmp_path, server, offline=True)
    (draft,), = p.propose_many(problem, [Ask([ref], [], 1)])
    assert p.take_rejections()[draft.id].startswith("endpoint: offline") and server.requests == []


def test_truncated_and_unusable_answers_are_rejected_with_the_reason(tmp_path, server):
    server.script = [("truncated", "Here:\n```python\nclass ModelNew(nn.Module):\n    def __init__"),
                     ("answer", "```python\nprint('no model here')\n```")]
    problem, ref = _ref()
    p = _proposer(tmp_path, server, model={"concurrency": 1})
    out = p.propose_many(problem, [Ask([ref], [], 1), Ask([ref], [], 1)])
    rejected = p.take_rejections()
    assert "cut off (max_tokens)" in rejected[out[0][0].id]
    assert "does not define `class ModelNew`" in rejected[out[1][0].id]
    assert p.report()["models"]["m"]["unusable"] == 2


def test_endpoint_retries_what_can_succeed_and_gives_up_on_what_cannot(tmp_path, server):
    cfg = config.load(None, {"llm": {"models": [{"name": "m", "base_url": server.url}], "max_retries": 2,
                                     "backoff_s": 0.0, "timeout_s": 2.0}})
    slept = []
    ep = Endpoint(cfg.llm.models[0], cfg.llm, Cache(tmp_path / "c"), sleep=slept.append)
    body = ep.request([{"role": "user", "content": "hi"}], seed=1)
    server.script = [("status", 503), ("raw", "<html>bad gateway</html>"), ("answer", "fine")]
    a = ep.ask("k1", body)
    assert a.text == "fine" and a.failed_attempts == ["http_503", "malformed"] and len(slept) == 2
    assert ep.ask("k1", body).cached  # answers are cached by key
    server.script = [("status", 400)]
    a = ep.ask("k2", body)
    assert a.error.startswith("http_400 after 1 attempt(s)") and len(server.requests) == 4  # not retried
    assert Cache(tmp_path / "c").get("k2") is None  # failures are not cached
    os.environ["EVO_TEST_LLM_KEY"] = SECRET
    try:
        ep.model.api_key_env = "EVO_TEST_LLM_KEY"
        assert SECRET not in ep._scrub(f"Incorrect API key provided: {SECRET}; sk-abc123****wxyz")
    finally:
        del os.environ["EVO_TEST_LLM_KEY"]


# -- pure parts --------------------------------------------------------------------------------------

PARENT = "import torch\n\n\nclass Model:\n    def f(self):\n        return 1\n\n\nclass ModelNew(Model):\n    pass\n"


@pytest.mark.parametrize("answer, expected", [
    ("Faster:\n```python\nclass ModelNew:\n    a = 1\n```\nDone.", "class ModelNew:\n    a = 1\n"),
    ("```\nclass ModelNew:\n    b = 2\n```", "class ModelNew:\n    b = 2\n"),  # no language tag
    ("```python\nclass ModelNew:\n    c = 3\n", "class ModelNew:\n    c = 3\n"),  # closing fence missing
    ("<think>```python\nclass ModelNew: draft\n```</think>```python\nclass ModelNew:\n    d = 4\n```",
     "class ModelNew:\n    d = 4\n"),
    ("```python\nclass Helper: pass\n```\n```python\nclass ModelNew:\n    e = 5\n```", "class ModelNew:\n    e = 5\n"),
    ("<<<<<<< SEARCH\nclass ModelNew(Model):\n    pass\n=======\nclass ModelNew(Model):\n    g = 7\n>>>>>>> REPLACE",
     PARENT.replace("    pass\n", "    g = 7\n")),
    # trailing spaces and a shifted indent in SEARCH still match; the shift applies to REPLACE
    ("```\n<<<<<<< SEARCH\n  def f(self):   \n      return 1\n=======\n  def f(self):\n      return 2\n>>>>>>> REPLACE\n```",
     PARENT.replace("return 1", "return 2")),
])
def test_answers_parse(answer, expected):
    assert extract_source(answer, PARENT)[0] == expected


@pytest.mark.parametrize("answer, reason", [
    ("", "empty"),
    ("Sorry, no.", "no ```python block"),
    ("```python\nprint(1)\n```", "does not define `class ModelNew`"),
    ("<<<<<<< SEARCH\nnot in the parent\n=======\nx\n>>>>>>> REPLACE", "edit 1 of 1: its SEARCH text is not in the parent"),
    ("<<<<<<< SEARCH\n    pass\n=======\n    pass\n>>>>>>> REPLACE", "unchanged"),
])
def test_unusable_answers_say_why(answer, reason):
    with pytest.raises(Unusable) as err:
        extract_source(answer, PARENT)
    assert reason in str(err.value)


def test_bandit_prefers_improvement_per_cost_and_explores():
    b = Bandit({"cheap": 1.0, "dear": 1.0}, exploration=0.5)
    picks = []
    for _ in range(40):
        name = b.choose()
        picks.append(name)
        b.paid(name, 0.001 if name == "cheap" else 0.01, 1000)
        b.rewarded(name, 0.1)  # the same improvement per answer, at ten times the price for "dear"
    assert picks[:2] == ["cheap", "dear"]  # each is tried first
    assert picks.count("cheap") > 2 * picks.count("dear") > 0
    again = Bandit({"cheap": 1.0, "dear": 1.0}, exploration=0.5)
    again.load_state_dict(json.loads(json.dumps(b.state_dict())))
    assert again.choose() == b.choose()


def test_prompts_show_hardware_parents_failures_and_inspirations(tmp_path):
    problem, ref = _ref()
    other = (Candidate(source="class ModelNew:  # parent B\n    pass\n", technique="llm"),
             Evaluation(status="ok", speedup=1.5, timing={"median_ms": 0.008, "iqr_ms": 0.001}))
    elite = (Candidate(source="class ModelNew:  # an elite\n    pass\n", technique="compile"),
             Evaluation(status="ok", speedup=1.2, timing={"median_ms": 0.009, "iqr_ms": 0.001}))
    failed = [(Candidate(source="x", technique="llm"), Evaluation(status="incorrect", reason="mismatch: " + "e" * 5000)),
              (Candidate(source="y", technique="llm"), Evaluation(status="proposal_error", reason="endpoint: timeout"))]
    ctx = Context(generation=2, baselines={"eager_ms": 0.01, "compile_ms": 0.02, "best_ms": 0.01, "floor_ms": 0.001,
                                           "device_info": {"name": "NVIDIA H100 80GB HBM3", "kind": "cuda", "sm_count": 132,
                                                           "l2_bytes": 50 * 2**20, "bandwidth_gbs": 3000.0,
                                                           "peak_tflops_fp32": 51.0, "peak_tflops_tf32": 378.0},
                                           "bound_ms": 0.004, "bound_units": {"matmul": "tf32x3"}},
                  elites=[other, elite, ref], results={})
    cfg = config.LLMConfig()
    ask = Ask([ref, other], failed, 1)
    shown = llm_prompts.failures_shown(failed, cfg.failures)
    system, user = llm_prompts.messages(problem, ask, ctx, llm_prompts.inspirations(ask, ctx, 2), shown, cfg)
    text = user["content"]
    assert "H100" in text and "132 SMs" in text and "3000 GB/s" in text
    assert "fp32 51 TFLOP/s, TF32 tensor cores 378 TFLOP/s" in text and "admits: tf32x3 matmul): 0.004 ms" in text
    assert "Parent A" in text and "Parent B" in text and "# parent B" in text and "# an elite" in text
    assert "mismatch: eee" in text and "characters cut" in text and "endpoint: timeout" not in text
    profiled = (ref[0], Evaluation(status="ok", speedup=1.0, timing={"median_ms": 0.01, "iqr_ms": 0.001},
                                   profile=[{"name": "aten::addmm", "ms_per_call": 0.004, "calls_per_call": 1}]))
    _, mut = llm_prompts.messages(problem, Ask([profiled], [], 1), ctx, [], [], cfg)
    assert "top kernels (torch.profiler, device time per call): aten::addmm 0.004 ms" in mut["content"]
    assert "SEARCH" in system["content"] and "torch" in system["content"]
    assert set(llm_prompts.TEMPLATES) <= {p.stem for p in llm_prompts.PROMPTS.glob("*.md")}
    assert '"proposers/llm/prompts/*.md"' in (ROOT / "pyproject.toml").read_text()  # the templates ship with the package


def test_state_survives_a_checkpoint(tmp_path, server):
    server.default = lambda body: ("answer", CORRECT)
    problem, ref = _ref()
    p = _proposer(tmp_path, server)
    (draft,), = p.propose_many(problem, [Ask([ref], [], 1)])
    state = json.loads(json.dumps(p.state_dict()))
    q = _proposer(tmp_path, server)
    q.load_state_dict(state)
    assert q.report() == p.report() and q.pending == {draft.id: ["m", 1.0]}
    ok = Evaluation(status="ok", speedup=1.25)
    q.observe(Context(generation=2, baselines={}, elites=[], results={draft.id: ok}))
    assert q.pending == {} and q.report()["models"]["m"]["improved"] == 1
    assert q.bandit.arms["m"]["gain"] == pytest.approx(0.25)


def test_config_llm_section_and_the_llm_flag(tmp_path):
    cfg = config.load(ROOT / "configs" / "llm.yaml")
    assert cfg.search.proposers == ["rules", "llm"] and cfg.llm.models[0].name == "gpt-4o-mini"
    assert config.load(None).llm.models == [] and "llm" not in config.load(None).search.proposers  # offline default
    cfg = config.add_llm_models(config.load(None), ["a", "b", "a"])
    assert [m.name for m in cfg.llm.models] == ["a", "b"] and cfg.search.proposers == ["rules", "llm"]
    for text, message in [("search:\n  proposers: [llm]\n", "no model is named"),
                          ("llm:\n  models:\n    - name: m\n      temprature: 0.1\n", "unknown key(s) ['temprature']"),
                          ("llm:\n  models:\n    - name: m\n      concurrency: 0\n", "concurrency >= 1"),
                          ("llm:\n  timeout_s: fast\n", "llm.timeout_s: expected float")]:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(config.ConfigError) as err:
            config.load(path)
        assert message in str(err.value)
    with pytest.raises(ValueError, match="needs at least one model"):
        make_proposers(["llm"], 0, "cpu", config.load(None), tmp_path)


def test_the_proposer_defaults_leave_offline_proposers_as_they_were():
    from cheap_proposer import CheapProposer
    problem, ref = _ref()
    asks = [Ask([ref], [], 1) for _ in range(5)]
    a, b = CheapProposer(seed=3), CheapProposer(seed=3)
    many = a.propose_many(problem, asks)
    assert [[c.id for c in out] for out in many] == [[c.id for c in b.propose(problem, [ref], [], 1)] for _ in asks]
    assert a.take_rejections() == {} and a.report() == {}
    c = CheapProposer(seed=99)
    c.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert [d.id for d in c.propose(problem, [ref], [], 3)] == [d.id for d in a.propose(problem, [ref], [], 3)]
