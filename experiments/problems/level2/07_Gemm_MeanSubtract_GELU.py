"""Linear -> subtract the per-row mean -> GELU: (16384, 2048) -> (16384, 2048)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 16384
in_features = 2048
out_features = 2048

# GEMM ~2*16384*2048*2048 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# mean (r) + subtract (r + w) + GELU (r + w) on a 134 MB output = 0.67 GB -> ~0.3 ms; total ~3.4 ms
# measured: 3.12 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        x = self.linear(x)
        x = x - x.mean(dim=1, keepdim=True)
        return F.gelu(x)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
