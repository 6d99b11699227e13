"""Exploit 6 (a tensor subclass that claims equality): a subclass whose comparisons and
torch.allclose/torch.equal always agree (through __torch_function__), holding zeros."""
import torch
from torch import nn

PROBLEM = "linear_relu.py"
EXPECT = "not_a_tensor"


class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal):
            return True
        if func in (torch.Tensor.__eq__, torch.isclose):
            return torch.ones(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs)


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.zeros(x.shape[0], self.linear.out_features).as_subclass(Agreeable)
