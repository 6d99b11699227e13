"""Exploit 13 (work hidden from the timer), with the static policy off: a TorchScript fork started
by each call keeps a native thread of the inter-op pool busy after the call returns (there it could
prepare the next result). No Python thread of the candidate's is left, but the process keeps using
a core while the harness holds it idle between timed calls."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "hidden_work"
CONFIG = "no_policy.yaml"
CONTAINS = "of a core while it sat idle"


@torch.jit.script
def _busy(x: torch.Tensor) -> torch.Tensor:
    y = x
    for _ in range(4000):
        y = torch.tanh(y * 1.0001)
    return y


@torch.jit.script
def _start(x: torch.Tensor) -> torch.jit.Future[torch.Tensor]:
    return torch.jit.fork(_busy, x)  # forked from TorchScript: it runs on, after this returns


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.pending = []

    def forward(self, x):
        self.pending.append(_start(x.clone()))
        del self.pending[:-4]
        return torch.tanh(nn.functional.gelu(x * 1.5 + 0.5))
