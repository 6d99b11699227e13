"""Exploit 5 (patching the reference), past the static policy: the same aten softmax override, with
the namespace passed in a dict the policy cannot read. The reference then computes zeros too. The
run-time check compares every operator's kernel registrations with their state before the import."""
import torch
from torch import nn

PROBLEM = "wide_softmax.py"
EXPECT = "patched_harness"
CONTAINS = "dispatcher kernel of aten::_softmax"

lib = torch.library.Library(**{"ns": "aten", "kind": "IMPL"})
lib.impl("_softmax", lambda x, dim, half: torch.zeros_like(x), "CPU")


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1)
