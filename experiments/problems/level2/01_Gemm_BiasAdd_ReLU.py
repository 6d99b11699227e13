"""Linear (no bias) -> add a bias vector -> ReLU: (16384, 1024) -> (16384, 4096)."""
import torch
import torch.nn as nn

batch_size = 16384
in_features = 1024
out_features = 4096

# GEMM ~2*16384*1024*4096 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# bias add + ReLU on a 268 MB output: 2 x (r + w) = 1.07 GB -> ~0.4 ms; total ~3.5 ms
# measured: 3.25 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)

    def forward(self, x):
        x = self.linear(x)
        x = x + self.bias
        return torch.relu(x)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
