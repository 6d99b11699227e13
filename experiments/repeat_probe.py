"""Run a template draft on many draws of its inputs, several times each, under the accuracy contract:
is a rare accuracy failure a property of the values (the same on every repeat) or a race (it comes
and goes on the same inputs), and which elements does it hit?

    python3 experiments/repeat_probe.py --only level2/17_ --rules conv_transpose reduce \
        --config '{"CONVT_PRECISION": "tf32rn"}' [--seeds 24] [--repeats 4]

Per draw: the contract's verdict for each repeat, how many elements differ bitwise between repeats,
and for a failing repeat the worst elements (image, channel, row, column), with the candidate's,
eager's and the float64 oracle's values there.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evo_kernels.config import Config  # noqa: E402
from evo_kernels.harness import contract, precision, trials  # noqa: E402
from evo_kernels.model.problem import import_file, load_problem  # noqa: E402
from evo_kernels.proposers.fusion import emit as fusion  # noqa: E402

RULE_OF = {"gemm": "triton_gemm", "conv": "triton_conv", "chains": "fuse_chains", "reduce": "triton_reduce",
           "depthwise": "triton_depthwise", "conv_transpose": "triton_conv_transpose"}


def worst_elements(got: torch.Tensor, ref: torch.Tensor, oracle: torch.Tensor, n: int = 6) -> list[str]:
    """The n elements of largest scaled error (the contract's: |x - o| / (|o| + rms(o)))."""
    o = oracle.double()
    scaled = (got.double() - o).abs() / (o.abs() + o.pow(2).mean().sqrt())
    top = torch.topk(scaled.flatten(), n)
    rows = []
    for value, flat in zip(top.values.tolist(), top.indices.tolist()):
        where = torch.unravel_index(torch.tensor(flat), got.shape)
        at = tuple(int(i) for i in where)
        rows.append(f"{at}: scaled {value:.3g}, candidate {float(got[at]):.6g}, eager {float(ref[at]):.6g}, "
                    f"oracle {float(o[at]):.6g}")
    return rows


def region(diff: torch.Tensor) -> str:
    """Where a boolean mask of differing elements lies: each dimension's range of indices."""
    at = torch.nonzero(diff)
    return "indices " + ", ".join(f"{int(at[:, d].min())}-{int(at[:, d].max())}" for d in range(at.shape[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="a problem name under experiments/problems, e.g. level2/17_")
    ap.add_argument("--file", help="instead: a problem file anywhere")
    ap.add_argument("--rules", nargs="+", required=True, choices=sorted(RULE_OF))
    ap.add_argument("--config", default="{}", help="tunables to set on the draft, JSON")
    ap.add_argument("--seeds", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--train", action="store_true", help="the model in training mode (default eval)")
    ap.add_argument("--fresh-weights", action="store_true",
                    help="new weights for every draw, drawn as the verification trials draw them")
    ap.add_argument("--autograd", action="store_true", help="calls with autograd on (the trials' other half)")
    ap.add_argument("--race", type=int, default=0,
                    help="instead: N calls on one draw, each compared bit for bit with the first (a deterministic "
                         "kernel never differs; a race does, now and then)")
    ap.add_argument("--out", default="repeat_out")
    args = ap.parse_args()
    precision.apply(precision.run_flags("as_run", Config().baseline_flags))
    v = Config().verify
    if (args.only is None) == (args.file is None):
        raise SystemExit("name the problem by --only or by --file")
    matches = [Path(args.file)] if args.file else sorted((ROOT / "experiments" / "problems").glob(f"{args.only}*.py"))
    if len(matches) != 1:
        raise SystemExit(f"--only {args.only!r} matches {len(matches)} problems")
    prob = load_problem(matches[0])
    built = fusion.build(prob, [RULE_OF[r] for r in args.rules])
    if built is None:
        raise SystemExit(f"{matches[0].name}: the rules {args.rules} build no candidate")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{matches[0].stem}.py"
    path.write_text(built[0])
    module = import_file(path, "repeat_probe")
    for k, val in json.loads(args.config).items():
        setattr(module, k, val)
    ref = prob.make_model(prob.Model, 0, "cuda").train(args.train)
    cand = prob.make_model(module.ModelNew, 0, "cuda").train(args.train)
    cand.load_state_dict(ref.state_dict(), strict=False)
    floor = contract.floor_for(torch.float32, v.floors)
    if args.race:
        inputs = prob.make_inputs(0, "cuda")
        with torch.no_grad():
            first = cand(*inputs).clone()
            differing = []
            for i in range(args.race):
                got = cand(*inputs)
                diff = got != first
                if bool(diff.any()):
                    differing.append(f"call {i}: {int(diff.sum())} elements; {region(diff)}; largest difference "
                                     f"{float((got - first).abs().max()):.3g}")
        print(f"{matches[0].stem}, config {args.config}: {len(differing)} of {args.race} calls differ from the first",
              flush=True)
        for line in differing[:8]:
            print(f"  {line}", flush=True)
        return
    failing = 0
    print(f"{matches[0].stem}, rules {args.rules}, config {args.config}, {'train' if args.train else 'eval'}",
          flush=True)
    for seed in range(args.seeds):
        if args.fresh_weights:
            trials.fresh_weights(ref, 1000 + seed)
            cand.load_state_dict(ref.state_dict(), strict=False)
        ref64 = copy.deepcopy(ref).double()
        inputs = prob.make_inputs(seed, "cuda")
        with torch.set_grad_enabled(args.autograd):
            want = ref(*inputs)
            oracle = ref64(*[x.double() if x.is_floating_point() else x for x in inputs])
            runs = [cand(*inputs).detach().clone() for _ in range(args.repeats)]
            want, oracle = want.detach(), oracle.detach()
        torch.cuda.synchronize()
        differ = max(int((r != runs[0]).sum()) for r in runs)
        verdicts = [contract.verdict(contract.compare(r, want, oracle, seed), floor, v.accuracy_factor) for r in runs]
        bad = [i for i, why in enumerate(verdicts) if why]
        failing += bool(bad)
        errs = [contract.measure(r, oracle, None, None) for r in runs[:1]] + [contract.measure(want, oracle, None, None)]
        print(f"seed {seed}: {len(bad)}/{len(runs)} repeats fail, {differ} elements differ between repeats; "
              f"max scaled error candidate {errs[0].max:.3g}, eager {errs[1].max:.3g}", flush=True)
        for i in bad[:2]:
            print(f"  repeat {i}: {verdicts[i]}", flush=True)
            for row in worst_elements(runs[i], want, oracle):
                print(f"    {row}", flush=True)
    print(f"{failing}/{args.seeds} draws with a failing repeat", flush=True)


if __name__ == "__main__":
    main()
