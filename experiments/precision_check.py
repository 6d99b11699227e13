"""The accuracy contract on the GPU: baselines as users run them, against a float64 oracle, and each
template candidate under both precision policies.

    python3 -m experiments.precision_check [--device cuda] [--only NAME ...] [--json FILE] [--budget-s S]

Per problem (convolutions, GEMMs, norms, attention, ...): eager and torch.compile timed under PyTorch's
default switches (`precision: as_run`) and under strict fp32 (`precision: strict`), by the harness's
own protocol (judge process; one policy's evaluator at a time); then the problem's first rules draft (every template rule that applies,
combined) evaluated under each policy through the Evaluator: its status, its error and eager's
against the float64 oracle (relative norm), and its speedup over the faster baseline of that policy.
Prints one table last.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evo_kernels import config as config_mod  # noqa: E402
from evo_kernels.harness.evaluator import Evaluator  # noqa: E402
from evo_kernels.model.candidate import Evaluation  # noqa: E402
from evo_kernels.model.problem import load_problem  # noqa: E402
from evo_kernels.proposers.base import reference_candidate  # noqa: E402
from evo_kernels.proposers.rules import RulesProposer  # noqa: E402

SUITE = ROOT / "experiments" / "problems"
PROBLEMS = [  # convolutions, GEMMs, norms, attention, pooling
    "level1/06_Conv2d_3x3", "level1/07_Conv2d_pointwise_1x1", "level2/11_Conv2d_BatchNorm_ReLU",
    "level2/15_Conv2d_ReLU_BiasAdd", "level1/01_Square_matmul", "level1/04_Batched_matmul",
    "level2/01_Gemm_BiasAdd_ReLU", "level2/03_Gemm_LayerNorm_GELU", "level1/13_LayerNorm", "level1/16_Softmax",
    "level3/02_MultiHeadSelfAttention", "level3/09_CausalSelfAttention", "level1/22_MaxPool2d",
    "level2/06_Gemm_BatchNorm_ReLU", "level1/28_Cumsum", "level1/33_CrossEntropy_large_vocab",
    "level1/34_MaxPool3d", "level1/35_AvgPool1d", "level3/12_LongSequenceAttention",
]


def cfg_for(precision: str, device: str) -> config_mod.Config:
    return config_mod.from_dict({
        "device": device, "precision": precision,
        "timing": {"warmup_calls": 3, "warmup_ms": 20.0, "min_reps": 30, "min_time_ms": 100.0, "checked_outputs": 2,
                   "profile_top_kernels": 0},
        "verify": {"trials": 4}, "sandbox": {"timeout_s": 300.0}})


def first_draft(problem_path: Path):
    problem = load_problem(problem_path)
    ref = reference_candidate(problem)
    drafts = RulesProposer(seed=0, device="cuda").propose(problem, [(ref, Evaluation("ok", speedup=1.0))], [], 1)
    return drafts[0] if drafts else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="stop starting problems after this long (half of it for the first policy)")
    args = ap.parse_args()
    names = [n for n in PROBLEMS if not args.only or any(o in n for o in args.only)]
    rows = {name: {"problem": name} for name in names}
    t0 = time.monotonic()
    # One policy's evaluator at a time: two judges and two defendants on one device would hold four
    # processes' memory, and a large problem would not fit beside the others.
    for policy in ("as_run", "strict"):
        ev = Evaluator(args.device, cfg_for(policy, args.device)).start()
        try:
            for name in names:
                if time.monotonic() - t0 > args.budget_s * (1 if policy == "strict" else 0.5):
                    print(f"time budget reached before {name} ({policy})", flush=True)
                    break
                path = SUITE / f"{name}.py"
                draft = first_draft(path)
                row = rows[name]
                row["technique"] = draft.technique if draft else "-"
                try:
                    base = ev.baselines(path)
                except Exception as e:  # noqa: BLE001 - a problem that fails here is reported and skipped
                    row[policy] = {"error": f"{type(e).__name__}: {e}"}
                    continue
                entry = {"eager_ms": base.eager_ms, "compile_ms": base.compile_ms, "best_ms": base.best_ms}
                if draft is not None:
                    e = ev.evaluate(path, draft)
                    entry.update(status=e.status, reason=e.reason[:160], speedup=e.speedup, cand_ms=e.median_ms,
                                 cand_err=(e.oracle_error.get("candidate") or {}).get("norm"),
                                 eager_err=(e.oracle_error.get("baseline") or {}).get("norm"),
                                 peak_gb={k: round(v / 1e9, 2) for k, v in e.peak_memory.items()})
                row[policy] = entry
                print(json.dumps({"problem": name, "technique": row["technique"], policy: entry}), flush=True)
        finally:
            ev.close()
    rows = [r for r in rows.values() if "as_run" in r or "strict" in r]

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)
    print("\n| problem | draft | eager ms (default) | compile ms (default) | eager ms (strict) | compile ms (strict) "
          "| eager err vs fp64 (default) | draft err (default) | draft status (default) | speedup (default) "
          "| eager err (strict) | draft err (strict) | speedup (strict) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        a, s = r.get("as_run", {}), r.get("strict", {})
        print(f"| {r['problem']} | {r['technique']} | {f(a.get('eager_ms'), '.3f')} | {f(a.get('compile_ms'), '.3f')} "
              f"| {f(s.get('eager_ms'), '.3f')} | {f(s.get('compile_ms'), '.3f')} | {f(a.get('eager_err'), '.2e')} "
              f"| {f(a.get('cand_err'), '.2e')} | {a.get('status', '-')} | {f(a.get('speedup'), '.3f')} "
              f"| {f(s.get('eager_err'), '.2e')} | {f(s.get('cand_err'), '.2e')} | {f(s.get('speedup'), '.3f')} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
