"""Exploit 14 (weights tested only at their initial values): BatchNorm without its affine transform,
exactly right while its weight is 1 and its bias 0, as they are when built."""
import torch
from torch import nn

PROBLEM = "batchnorm_relu.py"
EXPECT = ("accuracy", "mode_mismatch")


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, x):
        bn = self.bn
        y = self.linear(x)
        z = nn.functional.batch_norm(y, bn.running_mean, bn.running_var, None, None, self.training,
                                     bn.momentum, bn.eps)
        if self.training:
            bn.num_batches_tracked.add_(1)
        return torch.relu(z)
