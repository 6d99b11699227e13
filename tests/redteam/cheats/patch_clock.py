"""Exploit 5 (patching what times it), past the static policy: `time` cannot be imported, but
torch._dynamo.utils holds it; a loop variable hides the assignment (with the static policy off: it now
refuses private modules such as torch._dynamo). perf_counter_ns then reports no
time passing. The harness holds its own clock, taken before candidate code is imported, and the
integrity check reports the patch."""
import torch
from torch import nn

PROBLEM = "row_sum.py"
EXPECT = "patched_harness"
CONFIG = "no_policy.yaml"  # the policy refuses torch._dynamo, a private module: past it, the run-time check
CONTAINS = "perf_counter"

for clock in (torch._dynamo.utils.time,):
    clock.perf_counter_ns = lambda: 0
    clock.perf_counter = lambda: 0.0


class ModelNew(nn.Module):
    def forward(self, x):
        return x.sum(dim=1)
