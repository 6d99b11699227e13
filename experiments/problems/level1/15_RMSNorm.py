"""RMS norm written out: x * rsqrt(mean(x^2, last dim) + eps) * weight, on (16, 4096, 4096)."""
import torch
import torch.nn as nn

batch_size = 16
seq_len = 4096
hidden = 4096
eps = 1e-6

# 268M elements = 1.07 GB; eager runs pow (r+w), mean (r), x*rstd (r+w), *weight (r+w)
# = 7 x 1.07 GB = 7.5 GB -> ~3.0 ms at 2.5 TB/s (one fused pass would be 2.1 GB)
# measured: 2.86 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden))

    def forward(self, x):
        rstd = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * rstd * self.weight


def get_inputs():
    return [torch.randn(batch_size, seq_len, hidden)]


def get_init_inputs():
    return [hidden, eps]
