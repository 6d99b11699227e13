"""A row sum whose columns are added in a new order every call: calls on the same inputs differ in
their last bits (as a kernel reducing with atomics does), each as accurate as eager's sum."""
import torch
from torch import nn

PROBLEM = "row_sum.py"


class ModelNew(nn.Module):
    def forward(self, x):
        return x[:, torch.randperm(x.shape[1], device=x.device)].sum(dim=1)
