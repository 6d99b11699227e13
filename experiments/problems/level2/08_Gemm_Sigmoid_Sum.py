"""Linear -> sigmoid -> sum over features: (16384, 1024) -> (16384, 1)."""
import torch
import torch.nn as nn

batch_size = 16384
in_features = 1024
out_features = 4096

# GEMM ~2*16384*1024*4096 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# sigmoid (r + w) + sum (r) on a 268 MB intermediate = 0.8 GB -> ~0.3 ms; total ~3.4 ms
# measured: 3.17 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        x = self.linear(x)
        x = torch.sigmoid(x)
        return torch.sum(x, dim=1, keepdim=True)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
