"""A hand-written candidate for examples/gemm_bias_gelu.py: the bias folded into the matmul (addmm)
and the GELU chain computed by the library's fused tanh-approximate GELU."""
import torch
from torch import nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = scale

    def forward(self, x):
        y = torch.addmm(self.bias, x, self.linear.weight.t())
        return F.gelu(y, approximate="tanh").mul_(self.scale)
