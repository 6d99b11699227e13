"""Exploit 1 (returning the input): a copy of the input on x + 1e-5 tanh(x), within tolerance of the
answer. A copy does not alias the input; it is caught because it equals the input exactly while the
reference's output does not."""
from torch import nn

PROBLEM = "near_identity.py"
EXPECT = "input_passthrough"


class ModelNew(nn.Module):
    def forward(self, x):
        return x.clone()
