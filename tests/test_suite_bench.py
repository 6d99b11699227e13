"""experiments/suite_bench.py's pieces that need no GPU: how far a suite run in slices is."""
from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.store import SQLiteStore
from experiments import suite_bench


def test_progress_line_counts_evaluations_and_prices_the_rest(tmp_path):
    path = tmp_path / "store.sqlite"
    assert suite_bench.progress_line(path, 3, 10) == "0 of 30 evaluations"
    with SQLiteStore(path) as store:
        store.add_problem("p", "p.py", "p", "level1", "")
        store.add_evaluation("p", Candidate(source="# ref"), Evaluation(status="ok", duration_s=5.0),
                             meta={"reference": True})
    # references only: their median, a lower bound (29 x 5 s = 0.04 h)
    assert suite_bench.progress_line(path, 3, 10) == ("1 of 30 evaluations (3%), no draft yet; a reference's 5.0 s "
                                                      "(median): at least 0.0 h of evaluator time left at that rate")
    with SQLiteStore(path) as store:
        for i, seconds in enumerate((100.0, 200.0, 300.0, 400.0)):
            store.add_evaluation("p", Candidate(source=f"# {i}"), Evaluation(status="ok", duration_s=seconds))
    # 5 of 30 done; the drafts' median 250 s (the reference's 5 s left out): 25 x 250 s = 1.74 h
    assert suite_bench.progress_line(path, 3, 10) == \
        "5 of 30 evaluations (17%), a draft's 250.0 s (median): at most 1.7 h of evaluator time left at that rate"


def test_the_benchmark_configs_load_and_differ_only_in_the_pool():
    from conftest import ROOT
    from evo_kernels import config
    one = config.load(ROOT / "experiments" / "suite_bench.yaml")
    many = config.load(ROOT / "experiments" / "suite_bench_gpus.yaml")
    assert (one.cluster.backend, many.cluster.backend, many.cluster.actors_per_gpu) == ("local", "ray", 1)
    assert one.search.exclude == many.search.exclude == ["compile"]
    one.cluster = many.cluster
    assert one.to_dict() == many.to_dict()
