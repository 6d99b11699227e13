"""Probe: convolutions as implicit GEMMs whose input tiles come by TMA from a channels-last copy of the
input (a 4-D tensor descriptor: a box of BH x BW pixels by BK channels per filter tap, the padding
filled with zeros by the copy engine), against cuDNN as PyTorch runs it (TF32) and the templates'
pointer-gathered NCHW kernels. Two geometries: a 3x3 convolution at stride 1 (level1/06) and a
transposed 3x3 at stride 2 run as one stride-1 GEMM per output phase (level1/36).

    python3 experiments/tma_conv_probe.py [--only conv convt] [--configs N]

The input's channels-last copy is rounded to TF32 (nearest) as it is made, so the kernel feeds the
tensor cores straight from shared memory (cuDNN's TF32 rounds to nearest too: the accuracy contract
admits it where cuDNN runs TF32). Timing: triton.testing.do_bench medians (L2 flushed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: E402


@triton.jit
def _tf32_rn(x):
    bits = x.to(tl.uint32, bitcast=True)
    rounded = ((bits + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)
    return tl.where((bits & 0x7F800000) == 0x7F800000, x, rounded)


@triton.jit
def _to_nhwc_tf32(x_ptr, y_ptr, C, HW, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    # (n, c, p) -> (n, p, c), rounded to TF32: a tile of BLOCK_C channels x BLOCK_P pixels per program.
    n = tl.program_id(2)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    ok = (c < C)[:, None] & (p < HW)[None, :]
    v = tl.load(x_ptr + n.to(tl.int64) * C * HW + c[:, None] * HW + p[None, :], mask=ok, other=0.0)
    tl.store(y_ptr + n.to(tl.int64) * C * HW + p[None, :] * C + c[:, None], _tf32_rn(v), mask=ok)


def to_nhwc_tf32(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    y = torch.empty((n, h, w, c), device=x.device, dtype=torch.float32)
    _to_nhwc_tf32[(triton.cdiv(h * w, 64), triton.cdiv(c, 32), n)](x, y, c, h * w, BLOCK_C=32, BLOCK_P=64,
                                                                   num_warps=4)
    return y


@triton.jit
def _conv_tma(x_desc, w_desc, c_ptr, bias_ptr, NB, C, CO, OH, OW, QH, QW,
              KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr,
              PW: tl.constexpr, TH: tl.constexpr, TW: tl.constexpr, TRANSPOSED: tl.constexpr,
              BH: tl.constexpr, BW: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
              HAS_BIAS: tl.constexpr):
    # A tile: BH x BW pixels of one output phase of one image (for an ordinary conv, SH = SW = 1 and
    # the one phase is the output), all of them reading the input box at the tap's offset.
    BLOCK_M: tl.constexpr = BH * BW
    phases: tl.constexpr = SH * SW
    pid = tl.program_id(0)
    phase = pid % phases
    pid = pid // phases
    tiles_w = tl.cdiv(QW, BW)
    tiles_h = tl.cdiv(QH, BH)
    pid_n = pid % tl.cdiv(CO, BLOCK_N)
    pid = pid // tl.cdiv(CO, BLOCK_N)
    tw_i = pid % tiles_w
    th_i = (pid // tiles_w) % tiles_h
    img = pid // (tiles_w * tiles_h)
    py = phase // SW
    px = phase % SW
    qh0 = th_i * BH
    qw0 = tw_i * BW
    if TRANSPOSED:  # taps kh = rh + SH * j read input row qh + (py + PH) // SH - j
        rh = (py + PH) % SH
        rw = (px + PW) % SW
        nth = (KH - rh + SH - 1) // SH
        ntw = (KW - rw + SW - 1) // SW
        h0 = qh0 + (py + PH) // SH
        w0 = qw0 + (px + PW) // SW
        wrow = (rh * SW + rw) * CO + pid_n * BLOCK_N
    else:  # tap (kh, kw) reads input row oh - PH + kh
        nth = KH
        ntw = KW
        h0 = qh0 - PH
        w0 = qw0 - PW
        wrow = pid_n * BLOCK_N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    steps = tl.cdiv(C, BLOCK_K)
    for it in range(nth * ntw * steps):
        tap = it // steps
        c0 = (it - tap * steps) * BLOCK_K
        jh = tap // ntw
        jw = tap - jh * ntw
        if TRANSPOSED:
            ih = h0 - jh
            iw = w0 - jw
        else:
            ih = h0 + jh
            iw = w0 + jw
        a = x_desc.load([img, ih, iw, c0]).reshape(BLOCK_M, BLOCK_K)
        b = w_desc.load([wrow, (jh * TW + jw) * C + c0])
        acc = tl.dot(a, b.T, acc, input_precision="tf32")
    rm = tl.arange(0, BLOCK_M)
    qh = qh0 + rm // BW
    qw = qw0 + rm % BW
    oh = qh * SH + py
    ow = qw * SW + px
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = (qh < QH) & (qw < QW) & (oh < OH) & (ow < OW)
    n_ok = rn < CO
    if HAS_BIAS:
        acc += tl.load(bias_ptr + rn, mask=n_ok, other=0.0)[None, :]
    offs = (img.to(tl.int64) * CO * OH * OW + oh * OW + ow)[:, None] + rn[None, :] * (OH * OW)
    tl.store(c_ptr + offs, acc, mask=m_ok[:, None] & n_ok[None, :])


def conv_tma(x: torch.Tensor, w: torch.Tensor, bias, stride: int, padding: int, output_padding: int,
             transposed: bool, cfg: dict, x_nhwc: torch.Tensor | None = None) -> torch.Tensor:
    nb, c, h, w_ = x.shape
    if transposed:
        ci, co, kh, kw = w.shape
        sh = sw = stride
        th, tw = -(-kh // sh), -(-kw // sw)
        oh = (h - 1) * sh - 2 * padding + kh + output_padding
        ow = (w_ - 1) * sw - 2 * padding + kw + output_padding
        wp = torch.nn.functional.pad(w, (0, tw * sw - kw, 0, th * sh - kh)).view(ci, co, th, sh, tw, sw)
        wk = wp.permute(3, 5, 1, 2, 4, 0).reshape(sh * sw * co, th * tw * ci)
    else:
        co, ci, kh, kw = w.shape
        sh = sw = 1
        th, tw = kh, kw
        oh, ow = h + 2 * padding - kh + 1, w_ + 2 * padding - kw + 1
        wk = w.permute(0, 2, 3, 1).reshape(co, kh * kw * ci)
    wk = wk.contiguous()
    wk = torch.where(torch.isfinite(wk), ((wk.view(torch.int32) + 0x1000) & -0x2000).view(torch.float32), wk)
    if x_nhwc is None:
        x_nhwc = to_nhwc_tf32(x)
    bh, bw, bn, bk = cfg["BH"], cfg["BW"], cfg["BLOCK_N"], cfg["BLOCK_K"]
    bn = min(bn, triton.next_power_of_2(co))
    x_desc = TensorDescriptor.from_tensor(x_nhwc, [1, bh, bw, bk])
    w_desc = TensorDescriptor.from_tensor(wk, [bn, bk])
    qh, qw = triton.cdiv(oh, sh), triton.cdiv(ow, sw)
    y = torch.empty((nb, co, oh, ow), device=x.device, dtype=torch.float32)
    grid = (sh * sw * triton.cdiv(co, bn) * triton.cdiv(qh, bh) * triton.cdiv(qw, bw) * nb,)
    _conv_tma[grid](x_desc, w_desc, y, bias if bias is not None else y, nb, c, co, oh, ow, qh, qw, KH=kh, KW=kw,
                    SH=sh, SW=sw, PH=padding, PW=padding, TH=th, TW=tw, TRANSPOSED=transposed, BH=bh, BW=bw,
                    BLOCK_N=bn, BLOCK_K=bk, HAS_BIAS=bias is not None, num_warps=cfg["WARPS"],
                    num_stages=cfg["STAGES"])
    return y


CONFIGS = [
    dict(BH=8, BW=16, BLOCK_N=128, BLOCK_K=32, WARPS=8, STAGES=3),
    dict(BH=8, BW=16, BLOCK_N=128, BLOCK_K=32, WARPS=4, STAGES=4),
    dict(BH=8, BW=16, BLOCK_N=64, BLOCK_K=32, WARPS=4, STAGES=4),
    dict(BH=16, BW=16, BLOCK_N=128, BLOCK_K=32, WARPS=8, STAGES=3),
    dict(BH=8, BW=16, BLOCK_N=128, BLOCK_K=64, WARPS=8, STAGES=2),
    dict(BH=4, BW=16, BLOCK_N=128, BLOCK_K=32, WARPS=4, STAGES=4),
    dict(BH=8, BW=8, BLOCK_N=128, BLOCK_K=32, WARPS=4, STAGES=4),
    dict(BH=8, BW=32, BLOCK_N=128, BLOCK_K=32, WARPS=8, STAGES=3),
]
CASES = {  # name -> (input shape, module, FLOPs)
    "conv": ((32, 128, 112, 112), lambda: torch.nn.Conv2d(128, 128, 3, padding=1), 2 * 32 * 112 * 112 * 128 * 128 * 9),
    "convt": ((64, 128, 64, 64), lambda: torch.nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1),
              2 * 64 * 128 * 64 * 64 * 64 * 9),
    "convt_k4": ((64, 128, 64, 64), lambda: torch.nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
                 2 * 64 * 128 * 64 * 64 * 64 * 16),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--configs", type=int, default=len(CONFIGS))
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    from triton.testing import do_bench
    dev = args.device
    if dev == "cuda":
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
        # PyTorch's defaults: cuDNN TF32 on, matmul TF32 off
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = False

        def bench(fn):
            return float(do_bench(fn, warmup=25, rep=100))
    else:  # a dry run under Triton's interpreter: shapes shrunk, one call
        def bench(fn):
            fn()
            return float("nan")
    for name, (shape, make, flops) in CASES.items():
        if args.only and name not in args.only:
            continue
        torch.manual_seed(0)
        mod = make().to(dev)
        if dev != "cuda":  # small enough for the interpreter
            shape = (2, shape[1], 6, 9)
            mod = make().to(dev)
        x = torch.randn(shape, device=dev)
        transposed = isinstance(mod, torch.nn.ConvTranspose2d)
        stride, padding = mod.stride[0], mod.padding[0]
        outpad = mod.output_padding[0] if transposed else 0
        with torch.no_grad():
            want = mod(x)
            exact = mod.double()(x.double())
            mod.float()
            err = lambda y: float((y.double() - exact).norm() / exact.norm())  # noqa: E731
            eager = bench(lambda: mod(x))
            comp = torch.compile(mod) if dev == "cuda" else mod
            comp(x)
            compiled = bench(lambda: comp(x))
            x_nhwc = to_nhwc_tf32(x)
            layout = bench(lambda: to_nhwc_tf32(x))
            print(f"{name} {tuple(shape)}: eager {eager:.4f} ms, compile {compiled:.4f} ms, layout pass {layout:.4f} ms "
                  f"({2 * x.numel() * 4 / (layout * 1e-3) / 1e12:.2f} TB/s); eager error vs float64 {err(want):.2e}",
                  flush=True)
            for cfg in CONFIGS[:args.configs]:
                try:
                    got = conv_tma(x, mod.weight, mod.bias, stride, padding, outpad, transposed, cfg, x_nhwc)
                    ms = bench(lambda: conv_tma(x, mod.weight, mod.bias, stride, padding, outpad, transposed, cfg,
                                                x_nhwc))
                    whole = bench(lambda: conv_tma(x, mod.weight, mod.bias, stride, padding, outpad, transposed, cfg))
                    print(f"  {cfg}: kernel {ms:.4f} ms ({flops / (ms * 1e-3) / 1e12:.0f} TFLOP/s), with the layout "
                          f"pass {whole:.4f} ms, x{min(eager, compiled) / whole:.3f} of the faster baseline; error "
                          f"vs float64 {err(got):.2e}", flush=True)
                except Exception as e:  # noqa: BLE001 - a probe reports and goes on
                    print(f"  {cfg}: error {type(e).__name__}: {str(e)[:400]}", flush=True)


if __name__ == "__main__":
    main()
