"""Exploit 16 (running statistics): batch statistics computed without the running ones ever being
updated: training-mode outputs are right, the buffers a training step leaves behind are not."""
import torch
from torch import nn

PROBLEM = "batchnorm_relu.py"
EXPECT = ("buffer_mismatch", "mode_mismatch")


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, x):
        bn = self.bn
        y = self.linear(x)
        if self.training:
            z = nn.functional.batch_norm(y, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        else:
            z = nn.functional.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return torch.relu(z)
