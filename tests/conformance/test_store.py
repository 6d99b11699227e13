"""The Store contract (evo_kernels/store.py), held against every implementation: what a run writes is
what it reads back, in order, across a close and a reopen; a failed write leaves nothing behind."""
import json
import sqlite3

import pytest

from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.store import SQLiteStore, Store

# Every Store implementation, as a factory of a fresh store in a directory (reopening it with the
# same factory and directory must see what was written).
STORES = {"sqlite": lambda d: SQLiteStore(d / "run.sqlite")}


@pytest.fixture(params=sorted(STORES))
def make(request, tmp_path):
    return lambda: STORES[request.param](tmp_path)


def test_is_a_store(make):
    s = make()
    assert isinstance(s, Store)
    s.close()


def test_round_trip_and_lineage(make):
    s = make()
    run = s.start_run("optimize", {"seed": 1}, "p1")
    s.add_problem("p1", "/x/p.py", "p", "level1", "src")
    parent = Candidate(source="a", technique="reference")
    child = Candidate(source="b", params={"BLOCK": 64}, parents=(parent.id,), proposer="rules", technique="compile")
    s.add_evaluation("p1", parent, Evaluation(status="ok", speedup=1.0, timing={"median_ms": 2.0}, duration_s=1.5),
                     {"island": 0, "reference": True})
    s.add_evaluation("p1", child, Evaluation(status="incorrect", reason="mismatch: x"), {"island": 2})
    s.save_state(run, {"generation": 3})
    s.close()

    s = make()
    rows = list(s.evaluations("p1"))
    assert [(c.id, e.status) for c, e in rows] == [(parent.id, "ok"), (child.id, "incorrect")]
    assert rows[1][0].params == {"BLOCK": 64} and rows[1][0].parents == (parent.id,)
    assert rows[1][1].reason == "mismatch: x"
    assert s.evaluated_ids("p1") == {parent.id, child.id}
    assert json.loads(s.latest_run()["state"]) == {"generation": 3}
    assert s.run_for("p1")["id"] == run and s.run_for("nope") is None
    recs = s.records("p1")
    assert [r.meta for r in recs] == [{"island": 0, "reference": True}, {"island": 2}]
    assert recs[0].seq < recs[1].seq and recs[0].created <= recs[1].created
    assert [r.candidate.id for r in s.records("p1", after_seq=recs[0].seq)] == [child.id]
    assert s.last_seq("p1") == recs[1].seq and s.last_seq("other") == 0
    start, end = s.evaluation_spans("p1")[0]
    assert end - start == pytest.approx(1.5)
    assert s.count_evaluations() == 2 and s.count_evaluations("p1") == 2
    assert s.candidate("p1", child.id) == child
    s.close()


def test_problems_baselines_and_summaries(make):
    s = make()
    s.add_problem("b", "/x/b.py", "b", "level2", "src b")
    s.add_problem("a", "/x/a.py", "a", "level2", "src a")
    s.add_problem("c", "/x/c.py", "c", "level1", "src c")
    s.add_problem("a", "/elsewhere/a.py", "a", "level2", "other")  # the first record stands
    assert [p.id for p in s.problems()] == ["c", "a", "b"]
    assert s.problems()[1].path == "/x/a.py" and s.problems()[1].source == "src a"
    s.save_baselines("a", "H100", {"eager_ms": 1.0})
    s.save_baselines("a", "H100", {"eager_ms": 2.0})
    assert s.baselines("a", "H100") == {"eager_ms": 2.0} and s.baselines("a", "H200") is None
    assert s.summary("a") is None and s.confirmations("a") == {}
    c = Candidate(source="fast")
    s.save_confirmation("a", c, Evaluation(status="ok", speedup=1.2, confirmation={"interval": [1.1, 1.3]}))
    s.save_confirmation("a", c, Evaluation(status="ok", speedup=1.25, confirmation={"interval": [1.2, 1.3]}))
    s.save_summary("a", {"best_speedup": 1.5})
    s.save_summary("a", {"best_speedup": 1.7})
    s.close()
    s = make()
    assert s.summary("a") == {"best_speedup": 1.7}
    (only,) = s.confirmations("a").values()
    assert only.speedup == 1.25 and only.confirmation == {"interval": [1.2, 1.3]}
    s.close()


def test_a_failed_transaction_leaves_no_half_row(make, tmp_path):
    s = make()
    c = Candidate(source="x")
    bad = Evaluation(status="ok")
    bad.notes = [object()]  # not JSON-serialisable: fails after the candidate row is written
    with pytest.raises(TypeError):
        s.add_evaluation("p1", c, bad)
    assert s.count_evaluations() == 0
    assert s.candidate("p1", c.id) is None  # the candidate row was rolled back with it
    s.close()


def test_sqlite_file_stays_consistent(tmp_path):
    s = SQLiteStore(tmp_path / "run.sqlite")
    c = Candidate(source="x")
    bad = Evaluation(status="ok")
    bad.notes = [object()]
    with pytest.raises(TypeError):
        s.add_evaluation("p1", c, bad)
    s.close()
    db = sqlite3.connect(tmp_path / "run.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
