"""The Proposer contract (evo_kernels/proposers/base.py), held against every proposer: the offline
rules, the LLM proposer against a chat server on loopback, and a proposer of one's own named as
`package.module:Class`. Drafts are plain candidates that define ModelNew and name their parents and
proposer; the same seed and the same asks give the same drafts; the state survives a checkpoint;
crossover of two parents works; the report is JSON."""
import hashlib
import json
import sys
from pathlib import Path

import pytest

from chat_server import ChatServer
from evo_kernels import config
from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.model.problem import load_problem
from evo_kernels.proposers import Ask, Context, Proposer, make_proposers, reference_candidate

TESTS = Path(__file__).resolve().parent.parent
SUITE = TESTS.parent / "experiments" / "problems"
OK = Evaluation(status="ok", speedup=1.0, timing={"median_ms": 1.0, "iqr_ms": 0.01})

ANSWER = '''```python
import torch
from torch import nn


class ModelNew(Model):  # answer {n}
    def forward(self, x):
        return super().forward(x) * 1.0
```'''


def _llm(seed, tmp_path, server):
    cfg = config.load(None, {"search": {"seed": seed}, "llm": {
        "models": [{"name": "m"}], "timeout_s": 5.0, "max_retries": 0, "backoff_s": 0.0,
        "cache_dir": str(tmp_path / f"cache-{seed}-{len(server.requests)}")}})
    for m in cfg.llm.models:
        m.base_url = server.url
    cfg.search.proposers = ["llm"]
    return make_proposers(["llm"], seed, "cpu", cfg, tmp_path)[0]


# name -> (factory(seed, tmp_path, server), problem file)
PROPOSERS = {
    "rules": (lambda seed, tmp, server: make_proposers(["rules"], seed, "cuda")[0],
              SUITE / "level2" / "01_Gemm_BiasAdd_ReLU.py"),
    "llm": (_llm, TESTS / "problems" / "tiny_linear_relu.py"),
    "plugin": (lambda seed, tmp, server: make_proposers(["cheap_proposer:CheapProposer"], seed, "cpu")[0],
               TESTS / "problems" / "tiny_linear_relu.py"),
}


@pytest.fixture
def server():
    with ChatServer() as s:
        # Every answer is a function of the request alone (which holds the sample number of its cache
        # key), as a deterministic endpoint's would be.
        s.default = lambda body: ("answer", ANSWER.format(n=hashlib.sha256(json.dumps(body, sort_keys=True)
                                                                             .encode()).hexdigest()[:8]))
        yield s


@pytest.fixture(params=sorted(PROPOSERS))
def case(request, tmp_path, server):
    factory, problem = PROPOSERS[request.param]
    sys.path.insert(0, str(TESTS))  # the plugin's module
    return (lambda seed=0: factory(seed, tmp_path, server)), load_problem(problem)


def _parent(problem):
    return reference_candidate(problem), OK


def test_drafts_are_candidates_defining_model_new(case):
    make, problem = case
    p = make()
    assert isinstance(p, Proposer) and p.name
    ref = _parent(problem)
    p.observe(Context(generation=1, baselines={"eager_ms": 1.0, "best_ms": 1.0}, elites=[ref], results={}))
    drafts = p.propose(problem, [ref], [], 3)
    assert 1 <= len(drafts) <= 3
    for d in drafts:
        assert isinstance(d, Candidate) and "ModelNew" in d.source and d.technique
        assert d.proposer == p.name and set(d.parents) <= {ref[0].id} and d.generation >= 1
        compile(d.source, d.technique, "exec")


def test_same_seed_same_asks_same_drafts(case):
    make, problem = case
    ref = _parent(problem)
    a = [d.id for d in make(3).propose(problem, [ref], [], 3)]
    b = [d.id for d in make(3).propose(problem, [ref], [], 3)]
    assert a == b


def test_state_survives_a_checkpoint(case):
    make, problem = case
    ref = _parent(problem)
    straight = make(5)
    straight.propose(problem, [ref], [], 2)
    expected = [d.id for d in straight.propose(problem, [ref], [], 2)]
    first = make(5)
    first.propose(problem, [ref], [], 2)
    state = json.loads(json.dumps(first.state_dict()))  # what the checkpoint keeps
    resumed = make(5)
    resumed.load_state_dict(state)
    assert [d.id for d in resumed.propose(problem, [ref], [], 2)] == expected


def test_crossover_and_many_asks(case):
    make, problem = case
    p = make()
    ref = _parent(problem)
    child = p.propose(problem, [ref], [], 1)[0]
    asks = [Ask([ref], [], 1), Ask([(child, OK), ref], [], 1)]
    out = p.propose_many(problem, asks)
    assert len(out) == 2 and all(isinstance(d, Candidate) for drafts in out for d in drafts)
    assert isinstance(p.take_rejections(), dict)
    json.dumps(p.report())
