"""Conv2d 3x3 -> AvgPool2d(2) -> sigmoid: (64, 64, 128, 128) -> (64, 128, 64, 64)."""
import torch
import torch.nn as nn

batch_size = 64
in_channels = 64
out_channels = 128
height = 128
width = 128
kernel_size = 3
pool_size = 2

# conv ~2*64*128*128*128*64*9 FLOP = 155 GFLOP -> ~3.4 ms on H100 fp32;
# avgpool (r 537 MB + w 134 MB) + sigmoid (r + w 134 MB) = 0.94 GB -> ~0.4 ms; total ~3.8 ms
# measured: 4.77 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, pool_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.pool = nn.AvgPool2d(pool_size)

    def forward(self, x):
        return torch.sigmoid(self.pool(self.conv(x)))


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, pool_size]
