"""Suites end to end (tiny problems, local pool), resume of a suite, fast_p arithmetic, reports."""
import json
import shutil
import sqlite3
import subprocess

import pytest

from conftest import CONFIGS, PROBLEMS, run_cli
from evo_kernels.run.suite import SuiteError, discover, fast_p, geomean, table

SUITE = PROBLEMS / "suite"
CFG = ["--config", str(CONFIGS / "search_local.yaml"), "--device", "cpu"]


def _counts(run_dir):
    db = sqlite3.connect(run_dir / "store.sqlite")
    rows = db.execute("SELECT problem_id, candidate_id FROM evaluations").fetchall()
    per = {}
    for pid, cid in rows:
        per.setdefault(pid, []).append(cid)
    return per


def test_fast_p_and_geomean_by_hand():
    found = [None, 0.9, 1.1, 1.3, 2.5]
    assert fast_p(found, 0.0) == 4 / 5  # correct: every problem whose search found a correct candidate
    assert fast_p(found, 1.0) == 3 / 5
    assert fast_p(found, 1.2) == 2 / 5
    assert fast_p(found, 1.5) == 1 / 5
    assert fast_p(found, 2.0) == 1 / 5
    assert fast_p([], 1.0) == 0.0
    assert geomean([1.0, 4.0]) == pytest.approx(2.0)
    summaries = [
        {"level": "level1", "hardware": "H100", "found_speedup": 1.5, "found_speedup_vs_eager": 3.0,
         "best_speedup": 1.5, "best_speedup_vs_eager": 3.0},
        {"level": "level1", "hardware": "H100", "found_speedup": None, "found_speedup_vs_eager": None,
         "best_speedup": 1.0, "best_speedup_vs_eager": 1.2},
        {"level": "level2", "hardware": "H100", "found_speedup": 0.8, "found_speedup_vs_eager": 1.1,
         "best_speedup": 1.0, "best_speedup_vs_eager": 1.375},
    ]
    rows = {r["level"]: r for r in table(summaries)}
    assert rows["level1"]["problems"] == 2
    assert rows["level1"]["fast_0"] == 0.5 and rows["level1"]["fast_1.2"] == 0.5 and rows["level1"]["fast_2"] == 0.0
    assert rows["level1"]["geomean"] == pytest.approx(1.5 ** 0.5)
    assert rows["level1"]["eager_fast_2"] == 0.5
    assert rows["level2"]["fast_0"] == 1.0 and rows["level2"]["fast_1"] == 0.0
    assert rows["level2"]["eager_fast_1"] == 1.0


def test_discover_directory_and_yaml(tmp_path):
    assert [e.level for e in discover(SUITE)] == ["level1", "level2"]
    (tmp_path / "s.yaml").write_text(f"budget_per_problem: 3\nproblems:\n  - path: {SUITE}/level1/linear_relu_small.py\n"
                                     f"  - {{path: {SUITE}/level2/linear_relu_batch32.py, budget: 7}}\n")
    entries = discover(tmp_path / "s.yaml")
    assert [e.budget for e in entries] == [3, 7]
    (tmp_path / "bad.yaml").write_text("problems:\n  - path: nope.py\n")
    with pytest.raises(SuiteError, match="problems\\[0\\]: .*nope.py not found"):
        discover(tmp_path / "bad.yaml")
    with pytest.raises(SuiteError, match="unknown key"):
        (tmp_path / "k.yaml").write_text("problemz: []\nproblems: []\n")
        discover(tmp_path / "k.yaml")


def test_suite_end_to_end_resume_and_reports(tmp_path):
    run_dir = tmp_path / "suite"
    code, out, err = run_cli("suite", str(SUITE), *CFG, "--run-dir", str(run_dir), "--budget-per-problem", "3", "--json")
    assert code == 0, err
    assert len(out["problems"]) == 2 and {r["level"] for r in out["table"]} == {"level1", "level2"}
    assert all(n == 3 for n in map(len, _counts(run_dir).values()))
    # Breadth first: no problem gets its third evaluation before every problem has had its second.
    order = [pid for (pid,) in sqlite3.connect(run_dir / "store.sqlite").execute(
        "SELECT problem_id FROM evaluations ORDER BY seq")]
    nth = {pid: [i for i, p in enumerate(order) if p == pid] for pid in set(order)}
    assert all(nth[a][2] > nth[b][1] for a in nth for b in nth), order
    for name in ("linear_relu_small", "linear_relu_batch32"):
        assert (run_dir / "problems" / name / "best.py").exists()

    # Resume with a larger budget: the budget is each problem's total; nothing is evaluated twice.
    code, out, err = run_cli("suite", str(SUITE), *CFG, "--run-dir", str(run_dir), "--budget-per-problem", "6",
                             "--resume", "--json")
    assert code == 0, err
    counts = _counts(run_dir)
    assert sorted(map(len, counts.values())) == [6, 6]
    assert all(len(ids) == len(set(ids)) for ids in counts.values())
    assert json.loads((run_dir / "suite.json").read_text())["table"] == out["table"]

    code, _, err = run_cli("show", str(run_dir))
    assert code == 0, err
    code, _, err = run_cli("report", str(run_dir), "--format", "md")
    assert code == 0, err
    md = (run_dir / "report.md").read_text()
    assert "linear_relu_small" in md and "| level |" in md
    code, _, err = run_cli("report", str(run_dir))
    assert code == 0, err
    page = (run_dir / "report.html").read_text()
    # Two overview plots and one per problem, all embedded; a sortable table; a section per problem
    # with its lineage tree and confirmation.
    assert page.count("data:image/png;base64,") == 4 and "src=\"http" not in page
    assert 'class="sortable"' in page and page.count("<section") == 2 and page.count('class="tree"') >= 2
    assert "<h3>Confirmation</h3>" in page and "<h3>Lineage</h3>" in page
    _screenshot_check(run_dir / "report.html", tmp_path)


def _screenshot_check(page, tmp_path):
    """Open the report in headless Chromium: a screenshot of the right size, with content, and
    every image decoded (no broken images)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome'}"]
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image
    img = Image.open(shot)
    assert img.size == (1200, 900)
    colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, table and plots, not a blank page
    # Every <img> decoded: the DOM, dumped after load, reports each image's natural width.
    probe = page.parent / "probe.html"
    probe.write_text(page.read_text().replace(
        "</body>", "<script>document.title = [...document.images].map(i => i.complete && i.naturalWidth > 0)"
                   ".join(',');</script></body>"))
    dom = subprocess.run([chromium, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    import re
    title = re.search(r"<title>([^<]*)</title>", dom).group(1).split(",")
    assert len(title) >= 4 and set(title) == {"true"}, dom[:300]  # the overview's plots, a plot per problem


def test_a_report_of_a_run_still_going_shows_the_baselines_measured_so_far(tmp_path):
    # A suite stopped after its references (a benchmark run in slices): no summary yet, but each
    # problem's eager and compile times are in its evaluations.
    from evo_kernels.model.candidate import Candidate, Evaluation
    from evo_kernels.report import collect, table_rows
    from evo_kernels.store import SQLiteStore
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        for pid, name, eager, compiled in (("p1", "first", 2.5, 1.25), ("p2", "second", 3.0, None)):
            store.add_problem(pid, f"/x/{name}.py", name, "level1", "")
            store.add_evaluation(pid, Candidate(source=f"# {name}", technique="reference"),
                                 Evaluation(status="ok", speedup=1.0, timing={"median_ms": eager},
                                            baseline={"eager_ms": eager, "compile_ms": compiled, "best_ms": eager}))
    rows = {r[1]: r for r in table_rows(collect(tmp_path))}
    assert rows["first"][3:5] == ["2.5000", "1.2500"] and rows["second"][3:5] == ["3.0000", "-"]
    assert rows["first"][7] == "-"  # no result while the problem is still searching
