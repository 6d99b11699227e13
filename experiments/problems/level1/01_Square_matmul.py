"""Square matrix multiplication C = A @ B with M = K = N = 4096."""
import math

import torch
import torch.nn as nn

M = 4096
K = 4096
N = 4096

# ~2*4096*4096*4096 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32 (45 TFLOP/s); memory 3 x 64 MiB
# measured: 2.71 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


def get_inputs():
    # B is scaled by 1/sqrt(K) so outputs are O(1) and fp32 rounding stays well below atol=1e-4
    A = torch.randn(M, K)
    B = torch.randn(K, N) / math.sqrt(K)
    return [A, B]


def get_init_inputs():
    return []
