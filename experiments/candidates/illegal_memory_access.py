"""A Triton kernel that stores far outside any allocation: a CUDA illegal memory access.
Used by experiments/harness_check.py to check that the worker is replaced and the run goes on."""
import torch
import triton
import triton.language as tl
from torch import nn


@triton.jit
def _wild_store(out_ptr, stride):
    pid = tl.program_id(0)
    tl.store(out_ptr + (pid + 1) * stride, 1.0)  # stride = 2**40 elements: far past any allocation


class ModelNew(nn.Module):
    def __init__(self, *args):
        super().__init__()

    def forward(self, *inputs):
        out = torch.empty(1024, device=inputs[0].device)
        _wild_store[(64,)](out, 1 << 40)
        return out
