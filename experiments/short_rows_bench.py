"""The reduce template on short rows (a few dozen to a few hundred elements, many rows): a global
average pool, an argmax over a short dim, GroupNorm after a Linear, InstanceNorm on small maps, a
softmax over 32 channels of a map (strided rows, held as strips of R by 64 columns). Per
problem: eager, torch.compile, the template's draft (built from this tree) at its defaults and at
--configs, the bytes bound (in + out over the measured copy bandwidth); with --before DIR, drafts
written by another tree (`--write-drafts DIR` run under it) timed next to them.

    git archive REV evo_kernels | tar x -C /tmp/old && PYTHONPATH=/tmp/old python3 experiments/short_rows_bench.py --write-drafts old
    python3 experiments/short_rows_bench.py [--before old] [--configs '{"RED_WARPS": 4}' ...] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

HEADER = "import torch\nimport torch.nn as nn\n"
PROBLEMS = {  # name: (module line or None, forward body, input)
    "gap": (None, "return x.mean(dim=(2, 3))", "torch.randn(256, 2048, 7, 7)"),
    "argmax_short": (None, "return torch.argmax(x, dim=2)", "torch.randn(4096, 64, 100)"),
    "gn_features": ("nn.GroupNorm(32, 2048)", "return self.m(x)", "torch.randn(16384, 2048)"),
    "in_small": ("nn.InstanceNorm2d(256, affine=True)", "return self.m(x)", "torch.randn(128, 256, 14, 14)"),
    "softmax_channels": (None, "return torch.softmax(x, dim=1)", "torch.randn(64, 32, 128, 128)"),
}


def write_problems(root: Path) -> dict[str, Path]:
    paths = {}
    for name, (mod, body, inp) in PROBLEMS.items():
        init = f"    def __init__(self):\n        super().__init__()\n        self.m = {mod}\n" if mod else ""
        path = root / f"{name}.py"
        path.write_text(HEADER + f"class Model(nn.Module):\n{init}    def forward(self, x):\n        {body}\n"
                        f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
        paths[name] = path
    return paths


def write_drafts(problems: dict[str, Path], out: Path) -> None:
    from evo_kernels.model.problem import load_problem
    from evo_kernels.proposers import fusion
    out.mkdir(parents=True, exist_ok=True)
    for name, path in problems.items():
        built = fusion.build(load_problem(path), ["triton_reduce"])
        if built is None:
            raise SystemExit(f"{name}: the reduce template built no draft")
        (out / f"{name}.py").write_text(built[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-drafts", default=None, help="only write this tree's drafts into DIR")
    ap.add_argument("--before", default=None, help="a directory of drafts from another tree, timed too")
    ap.add_argument("--configs", nargs="*", default=[], help="JSON objects of tunables, each timed")
    ap.add_argument("--only", nargs="*", default=None, choices=sorted(PROBLEMS), help="these problems alone")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="short_rows_"))
    problems = {k: v for k, v in write_problems(root).items() if args.only is None or k in args.only}
    if args.write_drafts:
        write_drafts(problems, Path(args.write_drafts))
        return
    import triton

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from evo_kernels.model.problem import import_file, load_problem
    write_drafts(problems, root / "now")
    configs = [{}] + [json.loads(c) for c in args.configs]

    def bench(fn) -> float:
        return triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median")

    src = torch.empty(1 << 28, device="cuda")
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / (bench(lambda: dst.copy_(src)) * 1e-3)
    del src, dst
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}, "
          f"copy bandwidth {bandwidth / 1e12:.2f} TB/s")
    heads = (["before"] if args.before else []) + [json.dumps(c) if c else "defaults" for c in configs]
    print("| problem | eager ms | compile ms | " + " | ".join(f"{h} ms" for h in heads) +
          " | bound ms | defaults: share of bound | over the faster baseline |")
    print("|---|" + "---:|" * (len(heads) + 5))
    for name, path in problems.items():
        prob = load_problem(path)
        ref = prob.make_model(prob.Model, 0, "cuda")
        with torch.no_grad():
            for q in ref.parameters():  # away from a norm's 1 and 0
                q.copy_(torch.randn_like(q))
        x = prob.make_inputs(1, "cuda")
        times = []
        with torch.no_grad():
            want = ref(*x)
            eager = bench(lambda: ref(*x))
            comp = torch.compile(ref)
            comp(*x)
            compiled = bench(lambda: comp(*x))
            drafts = ([(Path(args.before) / f"{name}.py", {})] if args.before else []) + \
                [(root / "now" / f"{name}.py", c) for c in configs]
            for i, (draft, config) in enumerate(drafts):
                module = import_file(draft, f"short_rows_{name}_{i}")
                for k, v in config.items():
                    setattr(module, k, v)
                cand = prob.make_model(module.ModelNew, 0, "cuda")
                cand.load_state_dict(ref.state_dict(), strict=False)
                got = cand(*x)
                same = torch.equal(got, want) if want.dtype == torch.int64 else \
                    torch.allclose(got, want, atol=1e-4, rtol=1e-4)
                if not same:
                    raise SystemExit(f"{name} {draft} {config}: differs from eager")
                times.append(bench(lambda: cand(*x)))
        bound = (sum(t.numel() * t.element_size() for t in x) + want.numel() * want.element_size()) / bandwidth * 1e3
        now = times[1 if args.before else 0]
        print(f"| {name} {tuple(x[0].shape)} | {eager:.4f} | {compiled:.4f} | " +
              " | ".join(f"{t:.4f}" for t in times) +
              f" | {bound:.4f} | {100 * bound / now:.0f}% | {min(eager, compiled) / now:.3f}x |", flush=True)


if __name__ == "__main__":
    main()
