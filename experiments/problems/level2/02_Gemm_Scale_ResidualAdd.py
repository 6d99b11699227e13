"""Linear -> multiply by a scalar -> add the input back (residual): (16384, 2048) -> (16384, 2048)."""
import torch
import torch.nn as nn

batch_size = 16384
features = 2048
scale = 0.5

# GEMM ~2*16384*2048*2048 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# scale (r + w) + residual add (2 r + w) on 134 MB tensors = 0.67 GB -> ~0.3 ms; total ~3.4 ms
# measured: 3.04 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, features, scale):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.scale = scale

    def forward(self, x):
        y = self.linear(x)
        y = y * self.scale
        return y + x


def get_inputs():
    return [torch.randn(batch_size, features)]


def get_init_inputs():
    return [features, scale]
