"""Linear -> SiLU -> clamp to [clamp_min, clamp_max]: (16384, 2048) -> (16384, 2048)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 16384
in_features = 2048
out_features = 2048
clamp_min = -0.2
clamp_max = 0.4

# GEMM ~2*16384*2048*2048 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# SiLU + clamp on a 134 MB output: 2 x (r + w) = 0.54 GB -> ~0.2 ms; total ~3.3 ms
# measured: 3.04 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_features, out_features, clamp_min, clamp_max):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.clamp_min = clamp_min
        self.clamp_max = clamp_max

    def forward(self, x):
        x = self.linear(x)
        x = F.silu(x)
        return torch.clamp(x, min=self.clamp_min, max=self.clamp_max)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, clamp_min, clamp_max]
