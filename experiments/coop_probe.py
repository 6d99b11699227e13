"""Where a cooperative normalization's time goes (templates/reduce.py, `coop`): InstanceNorm's and
GroupNorm's rows at the suite's sizes, timed as the template builds them and as three variants of
its structure, each a program per chunk of CH elements:

- `template`: the reduce template's candidate (chunks held in registers across the group's wait);
- `reread`: partials published, the group waited for, the chunk read again (from L2, where it was
  read microseconds before) and normalized: no registers held across the wait;
- `nosync`: chunks held, each normalized by its own partials, no wait (wrong output: the structure's
  cost without the group);
- `copy`: each chunk loaded and stored (the chunking's own bound);
- `reread+gather`, `reread+scalar`: `reread` with the problem's affine weight and bias, gathered per
  element at w[(row % AMOD) * RMUL + r // RDIV] (the template's indexing), or as the one or two
  scalars a chunk spans.

    python3 experiments/coop_probe.py [--chunks 4096 2048]

do_bench medians (L2 flushed). `reread`, `nosync` and `copy` take no affine parameters.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import triton
import triton.language as tl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evo_kernels.model.problem import import_file, load_problem  # noqa: E402
from evo_kernels.model.tunables import bake  # noqa: E402
from evo_kernels.proposers import fusion  # noqa: E402

# rows, row length, and the affine weight's indexing (AMOD, RMUL, RDIV) as the template's launcher has it
PROBLEMS = {"level1/32_InstanceNorm2d": (8192, 36864, 128, 1, 36864), "level1/14_GroupNorm": (3072, 131072, 32, 8, 16384)}


@triton.jit
def _part(x, m, n):
    v1 = tl.sum(x, axis=0) / n
    d = tl.where(m, x - v1, 0.0)
    return v1, tl.sum(d * d, axis=0)


@triton.jit
def _variant(x_ptr, out_ptr, w_ptr, b_ptr, p1_ptr, p2_ptr, sync_ptr, R, SPLIT, eps, AMOD, RMUL, RDIV,
             CH: tl.constexpr, SPLIT_P2: tl.constexpr, MODE: tl.constexpr):
    # MODE 0: reread, 1: nosync, 2: copy, 3: reread+gather, 4: reread+scalar. Tickets as the template
    # takes them.
    t = tl.atomic_add(sync_ptr, 1)
    a = t // SPLIT
    s = t - a * SPLIT
    rr = s * CH + tl.arange(0, CH)
    m = rr < R
    offs = a.to(tl.int64) * R + rr
    x = tl.load(x_ptr + offs, mask=m, other=0.0)
    if MODE == 2:
        tl.store(out_ptr + offs, x, mask=m)
    else:
        n = tl.minimum(R - s * CH, CH)
        v1, v2 = _part(x, m, n)
        if MODE == 1:
            tl.store(out_ptr + offs, (x - v1) / tl.sqrt(v2 / n + eps), mask=m)
        else:
            tl.store(p1_ptr + t, v1)
            tl.store(p2_ptr + t, v2)
            tl.debug_barrier()
            tl.atomic_add(sync_ptr + 1 + a, 1, sem="release")
            while tl.atomic_add(sync_ptr + 1 + a, 0, sem="acquire") < SPLIT:
                pass
            sp = tl.arange(0, SPLIT_P2)
            sm = sp < SPLIT
            mean_s = tl.load(p1_ptr + a * SPLIT + sp, mask=sm, other=0.0, volatile=True)
            m2_s = tl.load(p2_ptr + a * SPLIT + sp, mask=sm, other=0.0, volatile=True)
            n_s = tl.minimum(tl.maximum(R - sp * CH, 0), CH).to(tl.float32)
            mean = tl.sum(n_s * mean_s, axis=0) / R
            d = mean_s - mean
            var = (tl.sum(m2_s, axis=0) + tl.sum(tl.where(sm, n_s * d * d, 0.0), axis=0)) / R
            y = (tl.load(x_ptr + offs, mask=m, other=0.0) - mean) / tl.sqrt(var + eps)
            if MODE == 3:
                widx = (a % AMOD) * RMUL + rr // RDIV
                y = y * tl.load(w_ptr + widx, mask=m, other=0.0) + tl.load(b_ptr + widx, mask=m, other=0.0)
            elif MODE == 4:
                c0 = (s * CH) // RDIV
                i0 = (a % AMOD) * RMUL + c0
                nxt = rr >= (c0 + 1) * RDIV
                more = (c0 + 1) * RDIV < tl.minimum(R, s * CH + CH)
                y = y * tl.where(nxt, tl.load(w_ptr + i0 + 1, mask=more, other=0.0), tl.load(w_ptr + i0)) + \
                    tl.where(nxt, tl.load(b_ptr + i0 + 1, mask=more, other=0.0), tl.load(b_ptr + i0))
            tl.store(out_ptr + offs, y, mask=m)


def run_variant(x, out, rows, r, ch, mode, w=None, b=None, amod=1, rmul=0, rdiv=1):
    split = triton.cdiv(r, ch)
    p1 = torch.empty(rows * split, device=x.device)
    p2 = torch.empty_like(p1)
    sync = torch.zeros(1 + rows, device=x.device, dtype=torch.int32)
    _variant[(rows * split,)](x, out, x if w is None else w, x if b is None else b, p1, p2, sync, r, split, 1e-5,
                              amod, rmul, rdiv, CH=ch, SPLIT_P2=triton.next_power_of_2(split), MODE=mode,
                              num_warps=max(1, min(16, ch // 1024)))
    return out


def main() -> None:
    from triton.testing import do_bench
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", nargs="*", type=int, default=[4096, 2048])
    args = ap.parse_args()
    src = torch.empty(1 << 28, device="cuda")
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / (do_bench(lambda: dst.copy_(src)) * 1e-3)
    del src, dst
    print(f"device: {torch.cuda.get_device_name()}, copy bandwidth {bandwidth / 1e12:.2f} TB/s")
    print("| problem | variant | chunk | ms | share of the 2-pass bound | max error vs torch |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (rows, r, amod, rmul, rdiv) in PROBLEMS.items():
        problem = load_problem(ROOT / "experiments" / "problems" / f"{name}.py")
        ref = problem.make_model(problem.Model, 0, "cuda")
        x = problem.make_inputs(1, "cuda")[0]
        bound = 2 * x.numel() * 4 / bandwidth * 1e3
        with torch.no_grad():
            want = ref(x)
            source, _ = fusion.build(problem, ["triton_reduce"])
            path = Path("/tmp") / f"coop_probe_{name.replace('/', '_')}.py"
            flat = x.reshape(rows, r)
            plain = torch.nn.functional.layer_norm(flat, (r,), eps=1e-5)
            out = torch.empty_like(flat)
            # The affine variants' weights, away from 1 and 0, and their expected output
            w, b = torch.randn(amod * rmul, device="cuda"), torch.randn(amod * rmul, device="cuda")
            row = torch.arange(rows, device="cuda")[:, None]
            widx = (row % amod) * rmul + torch.arange(r, device="cuda")[None, :] // rdiv
            affine = plain * w[widx] + b[widx]
            for ch in args.chunks:
                path.write_text(bake(source, {"RED_COOP_CHUNK": ch}))
                module = import_file(path, f"coop_probe_{ch}")
                cand = problem.make_model(module.ModelNew, 0, "cuda")
                cand.load_state_dict(ref.state_dict())
                ms = do_bench(lambda: cand(x), warmup=25, rep=100)
                err = float((cand(x) - want).abs().max())
                print(f"| {name} | template | {ch} | {ms:.4f} | {100 * bound / ms:.0f}% | {err:.2e} |", flush=True)
                for mode, label in ((0, "reread"), (1, "nosync"), (2, "copy"), (3, "reread+gather"), (4, "reread+scalar")):
                    ms = do_bench(lambda: run_variant(flat, out, rows, r, ch, mode, w, b, amod, rmul, rdiv),
                                  warmup=25, rep=100)
                    run_variant(flat, out, rows, r, ch, mode, w, b, amod, rmul, rdiv)
                    err = float((out - (flat if mode == 2 else affine if mode >= 3 else plain)).abs().max())
                    print(f"| {name} | {label} | {ch} | {ms:.4f} | {100 * bound / ms:.0f}% | {err:.2e} |", flush=True)


if __name__ == "__main__":
    main()
