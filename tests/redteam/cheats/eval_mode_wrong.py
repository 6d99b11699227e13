"""Exploit 16 (one mode only): BatchNorm done by hand with batch statistics in both modes: right in
training mode, wrong in eval mode, where PyTorch uses the running statistics."""
import torch
from torch import nn

PROBLEM = "batchnorm_relu.py"
EXPECT = "mode_mismatch"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, x):
        bn = self.bn
        y = self.linear(x)
        z = nn.functional.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, bn.momentum,
                                     bn.eps)
        if self.training:
            bn.num_batches_tracked.add_(1)
        return torch.relu(z)
