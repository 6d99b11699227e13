"""Conv2d 3x3 -> subtract a constant -> HardSwish -> MaxPool2d(2): (64, 64, 128, 128) -> (64, 64, 64, 64)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 64
in_channels = 64
out_channels = 64
height = 128
width = 128
kernel_size = 3
subtract_value = 0.25
pool_size = 2

# conv ~2*64*64*128*128*64*9 FLOP = 77 GFLOP -> ~1.7 ms on H100 fp32;
# subtract + hardswish (2 x (r + w) of 268 MB) + maxpool (r 268 MB + w 67 MB) = 1.4 GB -> ~0.55 ms; total ~2.3 ms
# measured: 2.76 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, subtract_value, pool_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.subtract_value = subtract_value
        self.pool = nn.MaxPool2d(pool_size)

    def forward(self, x):
        x = self.conv(x)
        x = x - self.subtract_value
        x = F.hardswish(x)
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, subtract_value, pool_size]
