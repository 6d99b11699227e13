"""The offline proposers' drafts over the project's suite, against digests recorded earlier: a change
that alters any generated source (a template's text, a rule's output, the order of drafts) shows here,
problem by problem. When a change means to alter drafts, record them again:
`python tests/test_drafts_golden.py --record`."""
import hashlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "experiments" / "problems"
GOLDEN = Path(__file__).resolve().parent / "data" / "draft_digests.json"


def drafts_of(path: Path) -> list[list]:
    """First-generation drafts from the reference (GPU and CPU facts), mutations of the first three,
    and a crossover of the first and last: (device, generation, technique, source digest)."""
    from evo_kernels.model.candidate import Evaluation
    from evo_kernels.model.problem import load_problem
    from evo_kernels.proposers.base import reference_candidate
    from evo_kernels.proposers.rules import RulesProposer
    ok = Evaluation("ok", speedup=1.0)
    problem = load_problem(path)

    def row(device, gen, c):
        return [device, gen, c.technique, hashlib.sha256(c.source.encode()).hexdigest()[:16]]
    rows = []
    for device in ("cuda", "cpu"):
        proposer = RulesProposer(seed=0, device=device)
        first = proposer.propose(problem, [(reference_candidate(problem), ok)], [], 20)
        rows += [row(device, 1, d) for d in first]
        for d in first[:3]:
            rows += [row(device, 2, c) for c in proposer.propose(problem, [(d, ok)], [], 4)]
        if len(first) >= 2:
            rows += [row(device, 3, c) for c in proposer.propose(problem, [(first[0], ok), (first[-1], ok)], [], 2)]
    return rows


PROBLEMS = sorted(SUITE.rglob("*.py"))


@pytest.mark.parametrize("path", PROBLEMS, ids=[f"{p.parent.name}/{p.stem}" for p in PROBLEMS])
def test_drafts_are_the_recorded_ones(path):
    golden = json.loads(GOLDEN.read_text())
    key = f"{path.parent.name}/{path.stem}"
    assert drafts_of(path) == golden[key], f"{key}: the drafts changed; if meant, record them again"


if __name__ == "__main__" and "--record" in sys.argv:
    sys.path.insert(0, str(ROOT))
    GOLDEN.write_text(json.dumps({f"{p.parent.name}/{p.stem}": drafts_of(p) for p in PROBLEMS}, indent=0,
                                 sort_keys=True) + "\n")
    print(f"recorded {GOLDEN}")
