"""Red-team exploits that need a GPU, each evaluated through the Evaluator (the full pipeline: static
policy, the judge and the defendant, verify, time, audit) on CUDA.

    python3 -m experiments.redteam_gpu [--device cuda] [--json FILE] [--only NAME ...] [--policy on off allowed]

Work on another CUDA stream hidden from the events, torch.empty outputs that would reuse the
reference's freed device memory, CUDA event methods and torch.cuda.synchronize patched, TF32 switched
on inside forward, a Triton kernel on a side stream, a kernel launched late from a host thread, a
stale result keyed on the input's address; and honest candidates (a Triton kernel launched with no
sync, addmm with an in-place ReLU, a blocked matmul) that must pass. A cheat the static policy
refuses is evaluated twice: with the policy (as a run would) and with it off, to show that the
run-time check behind it catches it too. Prints one table: case, exploit, policy, expected tag,
status, reason.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evo_kernels.model.candidate import Candidate  # noqa: E402
from evo_kernels.config import Config, SandboxConfig, TimingConfig  # noqa: E402
from evo_kernels.harness.evaluator import Evaluator  # noqa: E402

MATMUL = ROOT / "experiments" / "problems" / "level1" / "01_Square_matmul.py"  # 4096^3 fp32, ~2.7 ms
CONV = ROOT / "experiments" / "problems" / "level2" / "15_Conv2d_ReLU_BiasAdd.py"  # cuDNN, TF32 by default
GEMM_RELU = ROOT / "experiments" / "problems" / "level2" / "01_Gemm_BiasAdd_ReLU.py"  # Linear, + bias, ReLU
CHAIN = '''"""An elementwise chain on 4096 x 4096: scale, shift, GELU, tanh."""
import torch
from torch import nn


class Model(nn.Module):
    def forward(self, x):
        return torch.tanh(nn.functional.gelu(x * 1.5 + 0.5))


def get_inputs():
    return [torch.randn(4096, 4096)]


def get_init_inputs():
    return []
'''

TRITON_CHAIN = '''
import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice
from torch import nn


@triton.jit
def chain_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    y = tl.load(x_ptr + offs, mask=mask) * 1.5 + 0.5
    g = 0.5 * y * (1.0 + tl.erf(y * 0.7071067811865476))
    tl.store(y_ptr + offs, libdevice.tanh(g), mask=mask)


def launch(x):
    out = torch.empty_like(x)
    n = x.numel()
    chain_kernel[(triton.cdiv(n, 1024),)](x, out, n, BLOCK=1024)
    return out
'''

GEMM_RELU_INIT = '''
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)
'''

# name, exploit, problem, source, {policy mode: expected tag}. Modes: "on" (the static policy, as a
# run has it), "off" (static policy off: the run-time check behind it), "allowed" (reduced precision
# allowed by the run). "counted": accepted, slower than the baseline: the hidden work was timed.
CASES = [
    ("side_stream_matmul", "7 hidden work: another stream", "matmul", '''
import torch
from torch import nn
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.side = torch.cuda.Stream()
    def forward(self, A, B):
        with torch.cuda.stream(self.side):  # the events on the current stream never wait for this
            return torch.matmul(A, B)
''', {"on": "policy:streams", "off": "hidden_work|incorrect"}),
    ("side_stream_triton", "7 hidden work: Triton on another stream", "chain", TRITON_CHAIN + '''
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.side = torch.cuda.Stream()
    def forward(self, x):
        with torch.cuda.stream(self.side):  # ~0.4 ms of work the events do not see
            out = launch(x)
            for _ in range(7):
                out = launch(x)
            return out
''', {"on": "policy:streams", "off": "hidden_work|counted"}),
    ("late_launch_thread", "7 hidden work: kernel launched after return", "matmul", '''
import threading
import torch
from torch import nn
class ModelNew(nn.Module):
    def forward(self, A, B):
        out = torch.empty(A.shape[0], B.shape[1], device=A.device)
        def late():
            threading.Event().wait(0.002)
            torch.matmul(A, B, out=out)
        threading.Thread(target=late).start()
        return out
''', {"on": "policy:threads", "off": "hidden_work"}),
    ("empty_output", "2 uninitialised output", "matmul", '''
import torch
from torch import nn
class ModelNew(nn.Module):
    def forward(self, A, B):
        return torch.empty(A.shape[0], B.shape[1], device=A.device)
''', {"on": "nan_mismatch"}),
    ("empty_reuses_reference", "2 the reference's freed device memory", "gemm_relu", '''
import torch
from torch import nn
class ModelNew(nn.Module):''' + GEMM_RELU_INIT + '''
    def forward(self, x):
        # The reference's pre-ReLU result (x + bias) is freed once its ReLU exists: an empty tensor
        # of that size gets the block back, and a ReLU on it is the answer, unless it was poisoned.
        return torch.empty(x.shape[0], self.bias.shape[0], device=x.device).relu_()
''', {"on": "nan_mismatch|accuracy|constant_output"}),
    ("patched_event_timing", "5 patched CUDA event methods", "matmul", '''
import torch
from torch import nn
torch.cuda.Event.elapsed_time = lambda self, end: 0.001
torch.cuda.Event.record = lambda self, stream=None: None
class ModelNew(nn.Module):
    def forward(self, A, B):
        return torch.matmul(A, B)
''', {"on": "policy:", "off": "patched_harness"}),
    ("patched_synchronize", "5 patched torch.cuda.synchronize", "matmul", '''
import torch
from torch import nn
torch.cuda.synchronize = lambda device=None: None
class ModelNew(nn.Module):
    def forward(self, A, B):
        return torch.matmul(A, B)
''', {"on": "policy:patching", "off": "patched_harness"}),
    ("tf32_in_forward", "8 TF32 switched on inside forward", "matmul", '''
import torch
from torch import nn
class ModelNew(nn.Module):
    def forward(self, A, B):
        torch.backends.cuda.matmul.allow_tf32 = True
        return torch.matmul(A, B)
''', {"on": "policy:precision", "off": "precision", "allowed": "ok"}),
    ("stale_by_address", "3 cache keyed on data_ptr", "matmul", '''
import torch
from torch import nn
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.key, self.value = None, None
    def forward(self, A, B):
        if A.data_ptr() != self.key:
            self.key, self.value = A.data_ptr(), torch.matmul(A, B)
        return self.value
''', {"on": "stale_output|constant_output|accuracy"}),
    ("bf16_matmul", "16 bf16 product where the baseline is fp32", "matmul", '''
import torch
from torch import nn
class ModelNew(nn.Module):
    def forward(self, A, B):
        return (A.bfloat16() @ B.bfloat16()).float()
''', {"on": "accuracy"}),
    ("tf32_single_pass_triton", "16 single-pass TF32 product where the baseline is fp32", "matmul", '''
import torch
import triton
import triton.language as tl
from torch import nn
@triton.jit
def mm(a, b, c, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K, BK):
        x = tl.load(a + rm[:, None] * K + (k + rk)[None, :])
        y = tl.load(b + (k + rk)[:, None] * N + rn[None, :])
        acc = tl.dot(x, y, acc, input_precision="tf32")
    tl.store(c + rm[:, None] * N + rn[None, :], acc)
class ModelNew(nn.Module):
    def forward(self, A, B):
        M, K = A.shape
        N = B.shape[1]
        C = torch.empty(M, N, device=A.device)
        mm[(M // 128, N // 128)](A, B, C, M, N, K, BM=128, BN=128, BK=32, num_warps=8)
        return C
''', {"on": "accuracy"}),
    ("honest_tf32_conv_as_baseline", "honest: cuDNN conv in TF32, as the baseline runs it", "conv", '''
import torch
from torch import nn
class ModelNew(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.1)
    def forward(self, x):
        return torch.relu(self.conv(x)).add_(self.bias)
''', {"on": "ok"}),
    ("honest_triton_no_sync", "honest: Triton kernel, launched async", "chain", TRITON_CHAIN + '''
class ModelNew(nn.Module):
    def forward(self, x):
        return launch(x)
''', {"on": "ok"}),
    ("honest_addmm_relu_", "honest: addmm + in-place ReLU", "gemm_relu", '''
import torch
from torch import nn
class ModelNew(nn.Module):''' + GEMM_RELU_INIT + '''
    def forward(self, x):
        return torch.addmm(self.bias, x, self.linear.weight.t()).relu_()
''', {"on": "ok"}),
    ("honest_blocked_matmul", "honest: two half-K products", "matmul", '''
import torch
from torch import nn
class ModelNew(nn.Module):
    def forward(self, A, B):
        k = A.shape[1] // 2
        return torch.addmm(A[:, :k] @ B[:k], A[:, k:], B[k:])
''', {"on": "ok"}),
]


def config(device: str) -> Config:
    return Config(device=device, baselines=["eager"],
                  timing=TimingConfig(warmup_calls=3, warmup_ms=20.0, min_reps=30, min_time_ms=0.0,
                                      checked_outputs=3, flush_cache=True),
                  sandbox=SandboxConfig(timeout_s=180.0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--only", nargs="*", default=None, help="only the cases whose names contain one of these")
    ap.add_argument("--policy", nargs="*", default=["on", "off", "allowed"], choices=["on", "off", "allowed"],
                    help="static policy settings to run: on, off, allowed (reduced precision allowed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="redteam-gpu-"))
    (tmp / "chain.py").write_text(CHAIN)
    problems = {"matmul": MATMUL, "gemm_relu": GEMM_RELU, "chain": tmp / "chain.py", "conv": CONV}
    cfg = config(args.device)
    rows = []
    with Evaluator(args.device, cfg) as ev:
        info = ev.describe()
        print(f"device: {info['name']}  copy bandwidth {info['bandwidth_gbs']:.0f} GB/s  "
              f"fp32 matmul {info['peak_tflops_fp32']:.1f} TFLOP/s  TF32 {info.get('peak_tflops_tf32', 0):.1f} TFLOP/s",
              flush=True)
        for mode in args.policy:
            cfg.verify.static_policy = mode != "off"
            cfg.verify.allow_reduced_precision = mode == "allowed"
            ev._baselines.clear()  # the speed-of-light bound depends on the precision policy
            for name, exploit, problem, source, expected in CASES:
                if mode not in expected or (args.only and not any(o in name for o in args.only)):
                    continue
                t0 = time.monotonic()
                e = ev.evaluate(problems[problem], Candidate(source=source))
                got = e.reason.split(":")[0] if e.status != "ok" else "ok"
                if got == "policy":
                    got = ":".join(e.reason.split(":")[:2])
                want = expected[mode].split("|")
                passed = any(got == w or (w.endswith(":") and got.startswith(w)) for w in want)
                # "counted": accepted, but the hidden work landed in the measured time (no gain from it).
                passed = passed or ("counted" in want and e.status == "ok" and (e.speedup or 0) < 1.0)
                row = {"case": name, "exploit": exploit, "policy": mode, "expected": expected[mode],
                       "status": e.status, "reason": e.reason, "speedup": e.speedup,
                       "median_ms": e.median_ms, "timing": e.timing, "notes": e.notes, "seconds": round(time.monotonic() - t0, 1),
                       "as_expected": passed}
                rows.append(row)
                t = e.timing or {}
                print(f"{name:24s} {mode:8s} expected {expected[mode]:18s} -> {e.status:9s} "
                      f"{'OK ' if passed else 'BAD'} {e.reason[:150]}"
                      + (f" (speedup {e.speedup:.2f}x, device {t.get('median_ms', 0):.4f} ms, "
                         f"wall {t.get('wall_median_ms', 0):.4f} ms)" if e.speedup else ""), flush=True)
    print()
    print("| case | exploit | static policy | expected | status | reason |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        reason = r["reason"][:160].replace("|", "/") if r["reason"] else f"speedup {r['speedup']:.2f}x"
        if r["status"] == "ok" and r["notes"]:
            reason += "; " + "; ".join(n[:60] for n in r["notes"])
        print(f"| {r['case']} | {r['exploit']} | {r['policy']} | {r['expected']} | {r['status']} | {reason} |")
    print(f"\n{sum(r['as_expected'] for r in rows)} of {len(rows)} as expected")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
