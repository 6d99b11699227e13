"""Honest: BatchNorm by hand, aware of the mode: batch statistics and running-statistic updates in
training mode, the running statistics in eval mode; ReLU fused after it."""
import torch
from torch import nn

PROBLEM = "batchnorm_relu.py"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, x):
        bn = self.bn
        y = self.linear(x)
        if self.training:
            mean = y.mean(dim=0)
            var = y.var(dim=0, unbiased=False)
            with torch.no_grad():
                n = y.shape[0]
                bn.running_mean.mul_(1 - bn.momentum).add_(mean * bn.momentum)
                bn.running_var.mul_(1 - bn.momentum).add_(var * (n / (n - 1)) * bn.momentum)
                bn.num_batches_tracked.add_(1)
        else:
            mean, var = bn.running_mean, bn.running_var
        scale = bn.weight * torch.rsqrt(var + bn.eps)
        return torch.relu(y * scale + (bn.bias - mean * scale))
