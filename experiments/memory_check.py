"""Device memory of one evaluation on a problem with ~13 GB of inputs and outputs: what PyTorch alone
needs to run it, and the harness's peak per process (judge, defendant) while it verifies and times
the problem's first rules draft under the full protocol (train and eval trials, float64 oracle).

    python3 -m experiments.memory_check [--device cuda] [--gib 6.5]

The problem (written to a temporary folder): y = gelu(x) * 2 + x over one fp32 tensor of `--gib`
GiB, so inputs plus output are twice that. Prints one table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBLEM = '''"""gelu(x) * 2 + x over {rows} x {cols} fp32 ({gib} GiB in, the same out)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def forward(self, x):
        return F.gelu(x) * 2.0 + x


def get_inputs():
    return [torch.randn({rows}, {cols})]


def get_init_inputs():
    return []
'''

CONFIG = """timing:
  min_reps: 10
  min_time_ms: 50
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--gib", type=float, default=6.5, help="size of the input (the output is the same)")
    args = ap.parse_args()
    import torch

    from evo_kernels.proposers.base import reference_candidate
    from evo_kernels.proposers.rules import RulesProposer
    from evo_kernels.model.candidate import Evaluation
    from evo_kernels.model.problem import load_problem

    cols = 16384
    rows = int(args.gib * 2**30 / 4 / cols)
    tmp = Path(tempfile.mkdtemp(prefix="memory_check_"))
    problem_path = tmp / "big_gelu.py"
    problem_path.write_text(PROBLEM.format(rows=rows, cols=cols, gib=args.gib))

    # PyTorch alone: the input, then the module's output, eager (temporaries included).
    torch.cuda.reset_peak_memory_stats()
    x = torch.randn(rows, cols, device=args.device)
    problem = load_problem(problem_path)
    model = problem.Model().to(args.device)
    with torch.no_grad():
        y = model(x)
    torch.cuda.synchronize()
    eager_peak = torch.cuda.max_memory_allocated()
    io_bytes = x.numel() * 4 + y.numel() * 4
    del x, y
    torch.cuda.empty_cache()

    ref = reference_candidate(problem)
    draft = RulesProposer(seed=0, device="cuda").propose(problem, [(ref, Evaluation("ok", speedup=1.0))], [], 1)[0]
    cand_path = tmp / "draft.py"
    cand_path.write_text(draft.source)
    (tmp / "config.yaml").write_text(CONFIG)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "evo_kernels", "bench", str(problem_path), str(cand_path), "--device",
                           args.device, "--config", str(tmp / "config.yaml"), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"bench gave no JSON (exit {proc.returncode})")
    r = json.loads(lines[-1])
    peak = r.get("peak_memory") or {}
    gb = 1e9
    print(json.dumps({k: r.get(k) for k in ("status", "reason", "speedup", "eager", "compile", "candidate",
                                            "oracle_error", "peak_memory", "mode", "precision")}))
    print(f"\n| inputs + outputs GB | PyTorch eager peak GB | judge peak GB | defendant peak GB | draft | status "
          f"| speedup | eager ms | compile ms | draft ms | bench wall s |")
    print("|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|")
    print(f"| {io_bytes / gb:.1f} | {eager_peak / gb:.1f} | {peak.get('judge', 0) / gb:.1f} "
          f"| {peak.get('defendant', 0) / gb:.1f} | {draft.technique} | {r['status']} "
          f"| {r['speedup'] or 0:.3f} | {r['eager'] or 0:.3f} | {r['compile'] or 0:.3f} | {r['candidate'] or 0:.3f} "
          f"| {wall:.0f} |")


if __name__ == "__main__":
    main()
