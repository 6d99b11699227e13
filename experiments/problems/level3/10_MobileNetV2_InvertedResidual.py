"""MobileNetV2 inverted residual block (expand 1x1 -> BN -> ReLU6 -> depthwise 3x3 -> BN -> ReLU6 -> project 1x1 -> BN, + x)."""
import torch
import torch.nn as nn

batch_size = 64
channels = 64
expand_ratio = 6
height = 56
width = 56

# 1x1 convs 2 x 2*64*384*56*56*64 = 20 GFLOP + depthwise 1.4 GFLOP -> ~0.5 ms on H100 fp32;
# memory bound: the expanded (64, 384, 56, 56) tensor is 308 MB and eager writes/reads it ~14 times
# (conv out, 2 BN x 3 passes, 2 ReLU6 x 2, depthwise r + w, project read) ~4.7 GB -> ~1.9 ms; total ~2.4 ms
# measured: 2.78 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, channels, expand_ratio):
        super().__init__()
        hidden = channels * expand_ratio
        self.block = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.block(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, expand_ratio]
