import json
import sqlite3

from evo_kernels.candidate import Candidate, Evaluation
from evo_kernels.store import Store


def test_round_trip_and_lineage(tmp_path):
    s = Store(tmp_path / "run.sqlite")
    run = s.start_run("optimize", {"seed": 1})
    s.add_problem("p1", "/x/p.py", "p", "level1", "src")
    parent = Candidate(source="a", technique="reference")
    child = Candidate(source="b", params={"BLOCK": 64}, parents=(parent.id,), proposer="rules", technique="compile")
    s.add_evaluation("p1", parent, Evaluation(status="ok", speedup=1.0, timing={"median_ms": 2.0}))
    s.add_evaluation("p1", child, Evaluation(status="incorrect", reason="mismatch: x"))
    s.save_state(run, {"generation": 3})
    s.close()

    s = Store(tmp_path / "run.sqlite")
    rows = list(s.evaluations("p1"))
    assert [(c.id, e.status) for c, e in rows] == [(parent.id, "ok"), (child.id, "incorrect")]
    assert rows[1][0].params == {"BLOCK": 64} and rows[1][0].parents == (parent.id,)
    assert rows[1][1].reason == "mismatch: x"
    assert s.evaluated_ids("p1") == {parent.id, child.id}
    assert json.loads(s.latest_run()["state"]) == {"generation": 3}


def test_a_failed_transaction_leaves_no_half_row(tmp_path):
    s = Store(tmp_path / "run.sqlite")
    c = Candidate(source="x")
    bad = Evaluation(status="ok")
    bad.notes = [object()]  # not JSON-serialisable: fails after the candidate row is written
    try:
        s.add_evaluation("p1", c, bad)
    except TypeError:
        pass
    assert s.count_evaluations() == 0
    assert s.candidate("p1", c.id) is None  # the candidate row was rolled back with it
    s.close()
    db = sqlite3.connect(tmp_path / "run.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
