import torch
SIZE = 4
raise RuntimeError("dataset not found")
