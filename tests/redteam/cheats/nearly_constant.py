"""Exploit 1 (constant output, disguised): 0.5 plus a sliver of the input, so its outputs are not
exactly the same from one trial to the next, on the degenerate sigmoid(1e-4 x). Caught because its
outputs do not follow the inputs the way the reference's do."""
import torch
from torch import nn

PROBLEM = "near_constant.py"
EXPECT = ("constant_output", "accuracy")


class ModelNew(nn.Module):
    def forward(self, x):
        return 0.5 + 3e-6 * x
