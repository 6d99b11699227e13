"""Conv2d 3x3 -> tanh -> scale -> add per-channel bias -> MaxPool2d(2): (32, 64, 128, 128) -> (32, 128, 64, 64)."""
import torch
import torch.nn as nn

batch_size = 32
in_channels = 64
out_channels = 128
height = 128
width = 128
kernel_size = 3
scaling_factor = 2.0
pool_size = 2

# conv ~2*32*128*128*128*64*9 FLOP = 77 GFLOP -> ~1.7 ms on H100 fp32;
# tanh, scale, bias add (3 x (r + w) of 268 MB) + maxpool (r 268 MB + w 67 MB) = 1.9 GB -> ~0.8 ms; total ~2.5 ms
# measured: 3.00 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, scaling_factor, pool_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.scaling_factor = scaling_factor
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.1)
        self.pool = nn.MaxPool2d(pool_size)

    def forward(self, x):
        x = self.conv(x)
        x = torch.tanh(x)
        x = x * self.scaling_factor
        x = x + self.bias
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, scaling_factor, pool_size]
