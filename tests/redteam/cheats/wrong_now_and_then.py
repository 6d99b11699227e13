"""Exploit 3 (wrong now and then: a race's signature): right on the correctness trials and on most
timed calls, then wrong on every seventh call from the fortieth on, as a kernel with a race writes a
wrong tile once in a while. Calls on the same inputs disagree, and the wrong one breaks the contract."""
from torch import nn

PROBLEM = "row_sum.py"
EXPECT = "nondeterministic"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = x.sum(dim=1)
        if self.calls >= 40 and self.calls % 7 == 0:
            out[0] = out[0] * 1.5 + 1.0
        return out
