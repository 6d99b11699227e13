"""Suites: many problems searched on one shared pool, and the fast_p tables that summarise them.

A suite is a directory of KernelBench files (levels as subdirectories) or a YAML file:

    budget_per_problem: 40          # optional default
    problems:
      - path: level1/01_Square_matmul.py   # relative to the YAML file
        budget: 60                  # optional, per problem

fast_p (KernelBench's measure) is the share of problems for which the search found a correct
candidate faster than the baseline by more than p; fast_0 is the share with any correct candidate
of the search's own (the reference does not count). Geomeans are of the deployable result: the best
candidate, or the baseline itself (1.0x) when nothing beat it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

P_VALUES = (0.0, 1.0, 1.2, 1.5, 2.0)


class SuiteError(ValueError):
    pass


@dataclass
class Entry:
    path: Path
    budget: int | None = None
    hints: tuple[str, ...] = ()

    @property
    def level(self) -> str:
        return self.path.parent.name if self.path.parent.name.startswith("level") else "-"


def discover(suite: str | Path) -> list[Entry]:
    """The problems of a suite directory or YAML file, in a stable order."""
    s = Path(suite)
    if s.is_dir():
        files = sorted(p for p in s.rglob("*.py") if not p.name.startswith("_"))
        if not files:
            raise SuiteError(f"{s}: no problem files (*.py) in this directory")
        return [Entry(p) for p in files]
    if not s.is_file():
        raise SuiteError(f"{s}: suite not found (a directory of problems or a YAML file)")
    try:
        data = yaml.safe_load(s.read_text()) or {}
    except yaml.YAMLError as e:
        raise SuiteError(f"{s}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("problems"), list):
        raise SuiteError(f"{s}: expected a mapping with a list under 'problems'")
    unknown = set(data) - {"problems", "budget_per_problem"}
    if unknown:
        raise SuiteError(f"{s}: unknown key(s) {sorted(unknown)}; known: budget_per_problem, problems")
    default = data.get("budget_per_problem")
    entries = []
    for i, item in enumerate(data["problems"]):
        item = {"path": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or "path" not in item or set(item) - {"path", "budget", "hints"}:
            raise SuiteError(f"{s}: problems[{i}]: expected a path or {{path, budget, hints}}, got {item!r}")
        hints = item.get("hints", [])
        if not isinstance(hints, list) or not all(isinstance(h, str) for h in hints):
            raise SuiteError(f"{s}: problems[{i}].hints: expected a list of strings, got {hints!r}")
        path = (s.parent / item["path"]).resolve()
        if not path.is_file():
            raise SuiteError(f"{s}: problems[{i}]: {path} not found")
        budget = item.get("budget", default)
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise SuiteError(f"{s}: problems[{i}].budget: expected a positive integer, got {budget!r}")
        entries.append(Entry(path, budget, tuple(hints)))
    return entries


def fast_p(found: list[float | None], p: float) -> float:
    """Share of problems whose search found a correct candidate with speedup > p (p = 0: any)."""
    if not found:
        return 0.0
    return sum(1 for s in found if s is not None and s > p) / len(found)


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def table(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (level, hardware): fast_p against the faster baseline and against eager, geomeans."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in summaries:
        groups.setdefault((s.get("level") or "-", s.get("hardware", "")), []).append(s)
    rows = []
    for (level, hw), items in sorted(groups.items()):
        found = [s.get("found_speedup") for s in items]
        found_eager = [s.get("found_speedup_vs_eager") for s in items]
        row: dict[str, Any] = {"level": level, "hardware": hw, "problems": len(items)}
        for p in P_VALUES:
            row[f"fast_{p:g}"] = fast_p(found, p)
        row["geomean"] = geomean([s["best_speedup"] for s in items if s.get("best_speedup")])
        for p in P_VALUES[1:]:
            row[f"eager_fast_{p:g}"] = fast_p(found_eager, p)
        row["eager_geomean"] = geomean([s["best_speedup_vs_eager"] for s in items if s.get("best_speedup_vs_eager")])
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ["level", "hardware", "problems"] + [f"fast_{p:g}" for p in P_VALUES] + ["geomean"] + \
        [f"eager fast_{p:g}" for p in P_VALUES[1:]] + ["eager geomean"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["level"], r["hardware"], str(r["problems"])] + [f"{100 * r[f'fast_{p:g}']:.0f}%" for p in P_VALUES]
        cells += [f"{r['geomean']:.3f}x"] + [f"{100 * r[f'eager_fast_{p:g}']:.0f}%" for p in P_VALUES[1:]]
        cells += [f"{r['eager_geomean']:.3f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_suite_summary(run_dir: Path, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    rows = table(summaries)
    out = {"problems": summaries, "table": rows}
    (run_dir / "suite.json").write_text(json.dumps(out, indent=2) + "\n")
    (run_dir / "suite.md").write_text(markdown(rows) + "\n")
    return out
