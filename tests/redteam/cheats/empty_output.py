"""Exploit 2 (uninitialised output): torch.empty, hoping the allocator hands back memory that holds
the reference's (freed) result. Freed device memory is poisoned (NaN) on CUDA; on the CPU the memory
holds whatever was there, which is not this trial's answer: the poison, stale values, or fresh pages
of zeros (then named constant_output: every element 0)."""
import torch
from torch import nn

PROBLEM = "linear_relu.py"
EXPECT = ("nan_mismatch", "mismatch", "accuracy", "constant_output")  # whatever the uninitialised block held


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.empty(x.shape[0], self.linear.out_features)
