"""The self-contained HTML report: an overview with a sortable table, then one section per problem
with every evaluation plotted, the lineage as a tree, the result's code against the reference, its
top kernels against the reference's, its accuracy against the float64 oracle, its confirmation
rounds and its share of the speed-of-light bound. No server and no network: plots are embedded, the
table sorts with a few lines of inline script."""
from __future__ import annotations

import difflib
import html
from typing import Any

from . import HEADER, ProblemRecord, table_rows
from . import plots
from ..model.devices import units_words

esc = html.escape

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}th{background:#f3f3f3;cursor:pointer}
th.sorted:after{content:" \\25BE"}img{max-width:100%}.win{color:#176117;font-weight:bold}
pre.diff{background:#fafafa;border:1px solid #ddd;padding:.5em;font-size:12px;max-height:480px;overflow:auto}
.add{background:#e6ffe6}.del{background:#ffe6e6}.hunk{color:#666}ul.tree{font-size:13px;margin:.2em 0 .2em 1em;
padding-left:1em;border-left:1px dotted #bbb}li.path>span{font-weight:bold;color:#176117}
section{border-top:2px solid #ddd;margin-top:2em}.facts{font-size:14px}"""

SORT = """<script>
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), rows = Array.from(table.querySelectorAll("tr")).slice(1);
    var asc = th.dataset.dir !== "asc"; th.dataset.dir = asc ? "asc" : "desc";
    var num = function (s) { var v = parseFloat(s.replace(/[^0-9.eE+-]/g, "")); return isNaN(v) ? null : v; };
    rows.sort(function (a, b) {
      var x = a.children[col].textContent, y = b.children[col].textContent, nx = num(x), ny = num(y);
      var c = (nx !== null && ny !== null) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c; });
    rows.forEach(function (r) { table.appendChild(r); });
    table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted"); });
    th.classList.add("sorted"); });
});
</script>"""


def _table(header: list[str], rows: list[list[str]], sortable: bool = False, links: bool = False) -> str:
    cls = ' class="sortable"' if sortable else ""
    out = f"<table{cls}><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    for row in rows:
        cells = [esc(c) for c in row]
        if links:
            cells[1] = f'<a href="#p-{esc(row[1])}">{cells[1]}</a>'
        out += "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
    return out + "</table>"


def _tree(rec: ProblemRecord) -> str:
    """Every evaluated candidate under its first parent, from the reference; the result's ancestry in bold."""
    kids = rec.children()
    s = rec.summary or {}
    path = {r["candidate_id"] for r in rec.lineage(s["best_candidate"])} if s.get("best_candidate") else set()

    def node(r: dict[str, Any], depth: int) -> str:
        speed = f"{r['speedup']:.3f}x" if r["status"] == "ok" and r["speedup"] else r["status"]
        label = f"{r['technique']} ({r['proposer']}): {speed}" + (" = a baseline" if r.get("same_as") else "")
        inner = "".join(node(c, depth + 1) for c in kids.get(r["candidate_id"], [])) if depth < 40 else ""
        cls = ' class="path"' if r["candidate_id"] in path else ""
        return f"<li{cls}><span>{esc(label)}</span>" + (f'<ul class="tree">{inner}</ul>' if inner else "") + "</li>"
    roots = kids.get("", [])
    return f'<ul class="tree">{"".join(node(r, 0) for r in roots)}</ul>' if roots else "<p>no evaluations</p>"


def _diff(rec: ProblemRecord) -> str:
    s = rec.summary or {}
    cid = s.get("best_candidate")
    if not cid or cid not in rec.sources:
        return "<p>The result is the faster baseline itself (no candidate's code).</p>"
    ref = rec.sources[rec.reference["candidate_id"]] if rec.reference else rec.source
    lines = difflib.unified_diff(ref.splitlines(), rec.sources[cid].splitlines(), "reference", "result", lineterm="", n=2)
    out = []
    for line in lines:
        cls = "add" if line.startswith("+") else "del" if line.startswith("-") else "hunk" if line.startswith("@@") else ""
        out.append(f'<span class="{cls}">{esc(line)}</span>' if cls else esc(line))
    return '<pre class="diff">' + "\n".join(out) + "</pre>"


def _kernels(rec: ProblemRecord) -> str:
    s = rec.summary or {}
    winner = next((r for r in rec.rows if r["candidate_id"] == s.get("best_candidate") and r.get("profile")), None)
    ref = rec.reference if rec.reference and rec.reference.get("profile") else None
    if winner is None and ref is None:
        return "<p>No profile recorded (timing.profile_top_kernels is 0).</p>"
    cols = []
    for title, r in (("result", winner), ("reference (eager)", ref)):
        rows = [[k["name"], f"{k['ms_per_call']:.4f}", f"{k['calls_per_call']:.1f}"] for k in (r or {}).get("profile") or []]
        cols.append(f"<div style='display:inline-block;vertical-align:top;margin-right:2em'><b>{esc(title)}</b>"
                    + _table(["kernel", "ms per call", "launches per call"], rows) + "</div>")
    return "".join(cols)


def _confirmation(rec: ProblemRecord) -> str:
    conf = (rec.summary or {}).get("confirmation") or []
    if not conf:
        return "<p>No confirmation (nothing measured faster than the faster baseline, or confirmation off).</p>"
    rows = []
    for c in conf:
        ci = c.get("interval")
        rows.append([c["technique"], c["status"], f"{c['speedup']:.3f}x" if c.get("speedup") else "-",
                     f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-", "yes" if c.get("significant") else "no",
                     str(len(c.get("rounds") or []))])
    return _table(["candidate", "status", "confirmed speedup", "95% interval", "significant", "rounds"], rows)


def _section(rec: ProblemRecord) -> str:
    s = rec.summary or {}
    err = s.get("oracle_error") or {}
    cand, base = (err.get("candidate") or {}), (err.get("baseline") or {})
    accuracy = (f"error against the float64 oracle: result {cand.get('norm', 0):.2e} (relative norm), "
                f"max {cand.get('max', 0):.2e}; eager {base.get('norm', 0):.2e}, max {base.get('max', 0):.2e}"
                if cand and base else "error against the float64 oracle: not recorded")
    sol = (f"roofline {s['bound_ms']:.4f} ms (bytes in and out at the measured bandwidth, or the products at the "
           f"measured rate of the fastest unit the precision admits: {units_words(s.get('bound_units') or {})}): "
           f"the result reaches {100 * s['bound_share_result']:.0f}% of it, the faster baseline "
           f"{100 * s['bound_share_baseline']:.0f}%" if s.get("bound_ms") and s.get("bound_share_result")
           and s.get("bound_share_baseline") else "roofline: not recorded")
    stopped = f"stopped: {s.get('stopped')} ({s.get('stopped_because', '')})" if s.get("stopped") else "still running"
    facts = [f"result: <span class='{'win' if s.get('result') == 'win' else ''}'>{esc(rec.result)}</span>",
             esc(accuracy), esc(sol), esc(f"noise floor (eager timed twice): {100 * (s.get('noise_floor') or 0):.2f}%"),
             esc(stopped), esc(f"precision policy: {s.get('precision', '-')}")]
    return (f'<section id="p-{esc(rec.name)}"><h2>{esc(rec.level)} / {esc(rec.name)}</h2>'
            f'<p class="facts">{"<br>".join(facts)}</p>'
            f'<h3>Every evaluation</h3><img alt="evaluations of {esc(rec.name)}" src="{plots.evaluations(rec)}">'
            f"<h3>Confirmation</h3>{_confirmation(rec)}"
            f"<h3>Lineage</h3>{_tree(rec)}"
            f"<h3>The result's code against the reference</h3>{_diff(rec)}"
            f"<h3>Top kernels</h3>{_kernels(rec)}</section>")


def page(records: list[ProblemRecord]) -> str:
    figs = plots.overview(records)
    imgs = "".join(f'<figure><img alt="{k}" src="{v}"></figure>' for k, v in figs.items())
    n_evals = sum(len(r.rows) for r in records)
    wins = sum((r.summary or {}).get("result") == "win" for r in records)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>evo_kernels report</title>'
            f"<style>{STYLE}</style></head><body><h1>evo_kernels report</h1>"
            f"<p>{len(records)} problems, {n_evals} evaluations, {wins} confirmed wins. A win is a speedup over "
            "the faster of eager and torch.compile whose 95% interval (rounds interleaved with the baselines) "
            "is above 1. Click a column to sort.</p>"
            f"{_table(HEADER, table_rows(records), sortable=True, links=True)}{imgs}"
            + "".join(_section(r) for r in records) + SORT + "</body></html>")
