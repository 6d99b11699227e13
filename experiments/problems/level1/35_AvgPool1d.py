"""AvgPool1d, kernel 3, stride 1, padding 1 (a 3-tap box filter along the last dim, the padding
counted): (64, 128, 32768) -> same shape."""
import torch
import torch.nn as nn

batch_size = 64
channels = 128
length = 32768
kernel_size = 3
stride = 1
padding = 1

# read 1.07 GB + write 1.07 GB = 2.15 GB -> ~0.51 ms at 4.2 TB/s
# measured: 2.51 ms eager fp32 on an H200 (torch 2.11, triton do_bench with L2 flush); the pool
# template's kernel 0.51 ms at EW_BLOCK 1024, EW_WARPS 4


class Model(nn.Module):
    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.pool = nn.AvgPool1d(kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.pool(x)


def get_inputs():
    return [torch.randn(batch_size, channels, length)]


def get_init_inputs():
    return [kernel_size, stride, padding]
