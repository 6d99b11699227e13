"""Linear -> GroupNorm over feature groups -> Swish (x * sigmoid(x)): (16384, 2048) -> (16384, 2048)."""
import torch
import torch.nn as nn

batch_size = 16384
in_features = 2048
out_features = 2048
num_groups = 32

# GEMM ~2*16384*2048*2048 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# GroupNorm (3 passes) + sigmoid (r + w) + mul (2 r + w) on 134 MB tensors = 1.1 GB -> ~0.45 ms; total ~3.5 ms
# measured: 3.52 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_features, out_features, num_groups):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.gn = nn.GroupNorm(num_groups, out_features)

    def forward(self, x):
        x = self.linear(x)
        x = self.gn(x)
        return x * torch.sigmoid(x)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, num_groups]
