"""torch.matmul with a weight matrix -> softmax over the last dim: (8192, 1024) @ (1024, 8192)."""
import math

import torch
import torch.nn as nn

batch_size = 8192
in_features = 1024
out_features = 8192

# matmul ~2*8192*1024*8192 FLOP = 137 GFLOP -> ~3.1 ms on H100 fp32;
# softmax on a 268 MB output: r + w = 0.54 GB -> ~0.2 ms; total ~3.3 ms
# measured: 3.12 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) / math.sqrt(in_features))

    def forward(self, x):
        x = torch.matmul(x, self.weight)
        return torch.softmax(x, dim=-1)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
