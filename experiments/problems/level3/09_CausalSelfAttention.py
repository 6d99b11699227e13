"""Causal (GPT-style) self-attention written by hand: fused qkv Linear, masked_fill with a tril mask, softmax, output Linear."""
import math

import torch
import torch.nn as nn

batch_size = 8
seq_len = 1024
embed_dim = 1024
num_heads = 16

# qkv + out projections 2*8192*1024*4096 = 69 GFLOP, QK^T + AV 2 x 2*8*16*1024*1024*64 = 34 GFLOP
# -> 103 GFLOP ~2.3 ms on H100 fp32; scores (8, 16, 1024, 1024) = 537 MB: matmul write, scale, masked_fill,
# softmax (3 x (r + w)), AV read = 4.3 GB -> ~1.7 ms; total ~4 ms (flash attention skips the masked half)
# measured: 4.14 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, embed_dim, num_heads, max_seq_len):
        super().__init__()
        self.num_heads = num_heads
        self.c_attn = nn.Linear(embed_dim, 3 * embed_dim)
        self.c_proj = nn.Linear(embed_dim, embed_dim)
        mask = torch.tril(torch.ones(max_seq_len, max_seq_len))
        self.register_buffer("bias", mask.view(1, 1, max_seq_len, max_seq_len))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        hd = C // self.num_heads
        q = q.view(B, T, self.num_heads, hd).transpose(1, 2)
        k = k.view(B, T, self.num_heads, hd).transpose(1, 2)
        v = v.view(B, T, self.num_heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


def get_inputs():
    return [torch.randn(batch_size, seq_len, embed_dim)]


def get_init_inputs():
    return [embed_dim, num_heads, seq_len]
