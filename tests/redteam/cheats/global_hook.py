"""Exploit 5 (patching the reference): a global forward hook sees every module's output, the
reference's too, and can replace it with the candidate's own wrong answer. Refused statically."""
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

PROBLEM = "wide_softmax.py"
EXPECT = "policy:patching"

register_module_forward_hook(lambda module, args, out: torch.zeros_like(out))


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
