"""Embedding lookup -> mean over the sequence (a bag of embeddings) -> Linear: (256, 2048) ids -> (256, 1024)."""
import torch
import torch.nn as nn

batch_size = 256
seq_len = 2048
num_embeddings = 65536
embedding_dim = 1024
out_features = 1024

# gather writes a (256, 2048, 1024) = 2.1 GB intermediate (r 2.1 GB of table rows + w 2.1 GB),
# mean reads it again = 6.4 GB -> ~2.6 ms at 2.5 TB/s; table 268 MB; Linear is 0.5 GFLOP
# (an EmbeddingBag-style fused gather+mean reads 2.1 GB: ~0.9 ms)
# measured: 2.27 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, num_embeddings, embedding_dim, out_features):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        self.linear = nn.Linear(embedding_dim, out_features)

    def forward(self, ids):
        x = self.embedding(ids)
        x = x.mean(dim=1)
        return self.linear(x)


def get_inputs():
    return [torch.randint(0, num_embeddings, (batch_size, seq_len))]


def get_init_inputs():
    return [num_embeddings, embedding_dim, out_features]
