"""Causal attention over long sequences in fp32: q, k, v of (2, 16, 8192, 64) -> (2, 16, 8192, 64),
through scaled_dot_product_attention (no fp32 flash kernel: PyTorch takes its memory-efficient one)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 2
heads = 16
seq_len = 8192
head_dim = 64

# causal: 2 x 2 x B x H x S^2 x D / 2 = 275 GFLOP -> ~5.4 ms at 51 TFLOP/s (fp32 on an H200's SGEMM
# rate); q, k, v and the output are 4 x 67 MB: the bound is the flops. Materialized, S x S scores
# would be 8.6 GB.


class Model(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def get_inputs():
    shape = (batch_size, heads, seq_len, head_dim)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []
