"""C = A^T @ B with a very long reduction dimension: A and B are (262144 x 512), C is (512 x 512)."""
import math

import torch
import torch.nn as nn

K = 262144
M = 512
N = 512

# ~2*262144*512*512 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32 (only 512x512 outputs: needs split-K to fill the GPU)
# measured: 2.73 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A.T, B)


def get_inputs():
    # scaled so the sum over K = 262144 products is O(1): fp32 rounding stays below atol=1e-4
    A = torch.randn(K, M) / math.sqrt(math.sqrt(K))
    B = torch.randn(K, N) / math.sqrt(math.sqrt(K))
    return [A, B]


def get_init_inputs():
    return []
