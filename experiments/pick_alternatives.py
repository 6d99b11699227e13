"""Which configurations a template's drafts should screen first (`TritonTemplate.alternatives`), from
a sweep of its space across the problems where it is the main kernel (`template_probe.py --sweep`).

A draft's first screen holds its defaults, their first neighbours (search/loop.py) and the template's
alternatives. Greedily, this adds the configuration that most lowers the geomean over the problems of
(the screen's fastest / the sweep's fastest), while that gains at least --min-gain, up to --most; and
prints a table per template: each problem's defaults, screen without and with the alternatives, and
the fastest configuration swept (only configurations within the accuracy contract count).

    python3 experiments/pick_alternatives.py PROBE_JSON [PROBE_JSON ...] [--most 3] [--min-gain 0.01]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evo_kernels.config import Config  # noqa: E402
from evo_kernels.model.tunables import first_screen  # noqa: E402
from evo_kernels.proposers.templates import TEMPLATES  # noqa: E402


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def screened_by_default(template) -> list[dict]:
    """The configurations (changes from the defaults) a draft's first screen tries without
    alternatives: the defaults and what the search queues after them (tunables.first_screen)."""
    defaults = {k: v[0] for k, v in template.params.items()}
    near = first_screen([], defaults, template.params, template.constraints, Config().tuning.screen)
    return [{}] + [{k: v for k, v in c.items() if v != defaults[k]} for c in near]


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def pick(times: dict[str, dict[str, float]], covered: list[str], most: int, min_gain: float) -> list[str]:
    """Greedy: the configurations (keys) that, added to `covered`, most lower the geomean over the
    problems of (the fastest screened / the fastest of all); `times` is problem -> key -> ms."""
    best = {p: min(t.values()) for p, t in times.items()}

    def loss(keys: list[str]) -> float:
        return geomean([min((t[k] for k in keys if k in t), default=max(t.values())) / best[p]
                        for p, t in times.items()])

    chosen: list[str] = []
    candidates = sorted({k for t in times.values() for k in t} - set(covered))
    while len(chosen) < most:
        now = loss(covered + chosen)
        scored = sorted((loss(covered + chosen + [k]), k) for k in candidates if k not in chosen)
        gain = now / scored[0][0] - 1 if scored else 0.0
        if gain <= 0 or gain < min_gain:  # no configuration left that makes the screen faster enough
            break
        chosen.append(scored[0][1])
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("probe", nargs="+", help="probe.json files of template_probe.py --sweep")
    ap.add_argument("--most", type=int, default=3, help="alternatives per template, at most")
    ap.add_argument("--min-gain", type=float, default=0.01, help="the least geomean gain an alternative must add")
    args = ap.parse_args()
    from experiments.template_probe import SWEEPS  # the problems each template was swept on
    rows = [r for path in args.probe for r in json.loads(Path(path).read_text())]
    for t in TEMPLATES:
        if t.name not in SWEEPS:
            continue
        times: dict[str, dict[str, float]] = {}
        for r in rows:
            if r["problem"] in SWEEPS[t.name][0] and r.get("ok") and "ms" in r:
                times.setdefault(r["problem"], {})[_key(r["config"])] = r["ms"]
        if not times:
            continue
        covered = [_key(c) for c in screened_by_default(t)]
        chosen = pick(times, covered, args.most, args.min_gain)
        print(f"\n### {t.name}: alternatives {', '.join(chosen) or 'none'}\n")
        print("| problem | defaults ms | screen ms | with alternatives ms | fastest swept ms | its configuration |")
        print("|---|---:|---:|---:|---:|---|")
        ratios = {"screen": [], "alts": []}
        for p, tm in sorted(times.items()):
            fastest = min(tm, key=tm.get)
            scr = min((tm[k] for k in covered if k in tm), default=float("nan"))
            alt = min((tm[k] for k in covered + chosen if k in tm), default=float("nan"))
            ratios["screen"].append(scr / tm[fastest])
            ratios["alts"].append(alt / tm[fastest])
            print(f"| {p} | {tm.get(_key({}), float('nan')):.4f} | {scr:.4f} | {alt:.4f} | {tm[fastest]:.4f} | "
                  f"{fastest} |")
        print(f"\ngeomean over the fastest swept: screen {geomean(ratios['screen']):.3f}, "
              f"with alternatives {geomean(ratios['alts']):.3f}")


if __name__ == "__main__":
    main()
