"""Exploit 2 (the reference's freed memory): the reference's Linear output is freed once its ReLU is
computed; torch.empty of the same size gets that block back, and a ReLU on it is the right answer,
whenever the reference ran first. Run order alternates, so on a candidate-first trial the block holds
an older result and the cheat is caught."""
import torch
from torch import nn

PROBLEM = "linear_relu.py"
EXPECT = ("nan_mismatch", "constant_output", "mismatch", "accuracy")  # whatever the block held


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.empty(x.shape[0], self.linear.out_features).relu_()
