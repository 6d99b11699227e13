"""Time a softmax over a strided dim with its strips held at a lower column threshold than the
template's (64): does level1/31's strip of 512 channels by 16 columns pay on 4 warps?

    python3 experiments/held_strip_probe.py [--min-cols 16] [--configs JSON ...]

Each configuration's draft is timed as built (strips under 64 columns folded, then re-read) and with
the threshold lowered to --min-cols (held), next to eager and torch.compile; do_bench medians, L2
flushed; the output checked against eager each time.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from experiments.drafts import load_draft, start  # noqa: E402

THRESHOLD = "held_b >= min(64, _pow2(n_b))"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="level1/31_Softmax_over_channels")
    ap.add_argument("--min-cols", type=int, default=16)
    ap.add_argument("--configs", nargs="*", default=['{"RED_TILE": 8192}', '{"RED_TILE": 8192, "RED_WARPS": 4}',
                                                     '{"RED_TILE": 16384, "RED_WARPS": 4}'])
    ap.add_argument("--out", default="/tmp/held_strip_probe")
    args = ap.parse_args()
    import triton
    out = start(args.out)

    def bench(fn) -> float:
        return float(triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median"))

    print("| configuration | strips | ms | over the faster baseline |")
    print("|---|---|---:|---:|")
    base = None
    for i, text in enumerate(args.configs):
        config = json.loads(text)
        for held in (False, True):
            def edit(source: str) -> str:
                assert THRESHOLD in source, "the template's threshold moved: update this probe"
                return source.replace(THRESHOLD, f"held_b >= min({args.min_cols}, _pow2(n_b))") if held else source
            got = load_draft(args.problem, ["triton_reduce"], config, out / f"d{i}{int(held)}.py", f"held_{i}_{held}",
                             edit)
            if got is None:
                return
            prob, _, cand, x = got
            with torch.no_grad():
                if base is None:
                    ref = prob.make_model(prob.Model, 0, "cuda")
                    want = ref(*x)
                    comp = torch.compile(ref)
                    comp(*x)
                    base = min(bench(lambda: ref(*x)), bench(lambda: comp(*x)))
                    print(f"| faster baseline | - | {base:.4f} | 1.000x |", flush=True)
                y = cand(*x)
                if not torch.allclose(y, want, atol=1e-5, rtol=1e-4):
                    raise SystemExit(f"{text} held={held}: differs from eager")
                ms = bench(lambda: cand(*x))
            kind = f"held at >= {args.min_cols} columns" if held else "as built"
            print(f"| {text} | {kind} | {ms:.4f} | {base / ms:.3f}x |", flush=True)


if __name__ == "__main__":
    main()
