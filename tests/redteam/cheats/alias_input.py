"""Exploit 4 (an output aliasing the input): ReLU of never-negative inputs is the input itself, so
the input is returned as the output. The values are right; the output shares the input's memory."""
from torch import nn

PROBLEM = "relu_of_positive.py"
EXPECT = "aliasing"


class ModelNew(nn.Module):
    def forward(self, x):
        return x
