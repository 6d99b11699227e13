"""Inclusive prefix sum (torch.cumsum) along dim 1 of a (32768, 16384) tensor."""
import math

import torch
import torch.nn as nn

batch_size = 32768
dim = 16384
scan_dim = 1

# 537M elements = 2.1 GB: read + write = 4.3 GB -> ~1.7 ms at 2.5 TB/s
# measured: 2.37 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.cumsum(x, dim=self.dim)


def get_inputs():
    # scaled by 1/sqrt(dim) so the partial sums (a random walk) stay O(1) and a scan in another
    # order agrees with the reference to well within atol=1e-4
    return [torch.randn(batch_size, dim) / math.sqrt(dim)]


def get_init_inputs():
    return [scan_dim]
