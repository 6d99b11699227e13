"""A candidate for examples/gemm_bias_gelu.py with a Triton kernel of its own: the bias folded into
cuBLAS's addmm, then one Triton pass for GELU (tanh form) and the scale. Its block size and warp
count are tunable: `evo-kernels tune examples/gemm_bias_gelu.py examples/gemm_bias_gelu_triton.py`."""
import torch
import triton
import triton.language as tl
from torch import nn

BLOCK = 1024
NUM_WARPS = 4
TUNABLE = {"BLOCK": [256, 512, 1024, 2048, 4096], "NUM_WARPS": [1, 2, 4, 8]}


@triton.jit
def _gelu_scale(y_ptr, out_ptr, n, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    y = tl.load(y_ptr + offs, mask=mask)
    inner = 0.7978845608028654 * (y + 0.044715 * y * y * y)
    tanh = 1.0 - 2.0 / (tl.exp(2.0 * inner) + 1.0)  # saturates to +-1 for large |inner|
    tl.store(out_ptr + offs, 0.5 * y * (1.0 + tanh) * scale, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = scale

    def forward(self, x):
        y = torch.addmm(self.bias, x, self.linear.weight.t())
        out = torch.empty_like(y)
        n = y.numel()
        _gelu_scale[(triton.cdiv(n, BLOCK),)](y, out, n, self.scale, BLOCK=BLOCK, num_warps=NUM_WARPS)
        return out
