"""Post-LN residual: LayerNorm(x + Linear(x)) on (16384, 2048)."""
import torch
import torch.nn as nn

batch_size = 16384
features = 2048

# GEMM ~2*16384*2048*2048 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# add (2 r + w) + LayerNorm (r + w) on 134 MB tensors = 0.67 GB -> ~0.3 ms; total ~3.4 ms
# measured: 3.08 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.ln = nn.LayerNorm(features)

    def forward(self, x):
        return self.ln(x + self.linear(x))


def get_inputs():
    return [torch.randn(batch_size, features)]


def get_init_inputs():
    return [features]
