"""Exploit 13 (work hidden from the timer): the result of the next call computed by a TorchScript
fork, which runs on a native thread of the inter-op pool after forward has returned."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "policy:threads"


class ModelNew(nn.Module):
    def forward(self, x):
        future = torch.jit.fork(torch.tanh, x)
        return torch.jit.wait(future)
