"""Tensors from the candidate's process to the judge's without copies, and messages that carry no code.

The candidate's outputs (and its inputs and buffers after a call) reach the judge as torch's own
inter-process references: a CUDA IPC handle to the candidate's memory, or a shared-memory file
holding a CPU tensor (torch moves its storage there). The judge maps them and reads what the
candidate's process holds, without a copy; it can look again later (an output that changes after
the next call is a buffer the candidate reuses).

Everything the candidate's process sends is untrusted. Pickle would run whatever a crafted message
names, so the judge reads tensor payloads with an unpickler that knows only the few torch functions
that rebuild shared tensors, and the evaluator reads every worker's replies as JSON.
"""
from __future__ import annotations

import base64
import io
import json
import pickle
from multiprocessing.reduction import ForkingPickler
from typing import Any

import torch
import torch.multiprocessing  # noqa: F401 - registers torch's tensor reductions with ForkingPickler
from torch.multiprocessing import reductions

_SHARING = "file_system"  # shared-memory files by name: no file descriptors to pass between processes


def setup() -> None:
    """Call in each sandbox process before any tensor is shared."""
    torch.multiprocessing.set_sharing_strategy(_SHARING)


def pack(obj: Any) -> str:
    """Tensors (in lists, tuples, dicts) as a text the judge can `unpack`: references, not copies. CPU
    storages are moved to shared memory; tensors of other devices (mps) are copied to the CPU."""
    buf = io.BytesIO()
    ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(_shareable(obj))
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _shareable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        return t.cpu() if t.device.type not in ("cpu", "cuda") else t
    if isinstance(obj, (list, tuple)):
        return type(obj)(_shareable(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _shareable(v) for k, v in obj.items()}
    return obj


# What a payload may name: the functions torch's reductions rebuild shared tensors with, the classes
# they take, and plain containers. Anything else is refused before it is called.
_ALLOWED = {
    ("torch.multiprocessing.reductions", n) for n in (
        "rebuild_tensor", "rebuild_cuda_tensor", "rebuild_storage_filename", "rebuild_storage_empty",
        "rebuild_typed_storage", "rebuild_typed_storage_child", "rebuild_meta_tensor", "rebuild_nested_tensor",
        "rebuild_sparse_coo_tensor")
} | {("torch", "Tensor"), ("torch", "UntypedStorage"), ("torch", "TypedStorage"), ("torch", "Size"),
     ("torch.storage", "UntypedStorage"), ("torch.storage", "TypedStorage"), ("torch", "device"),
     ("collections", "OrderedDict"),
     ("builtins", "slice")} | {("torch", name) for name in (
         "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
         "complex64", "complex128", "float8_e4m3fn", "float8_e5m2")}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"a tensor payload names {module}.{name}, which is not allowed")
        if module == "torch.multiprocessing.reductions":
            return getattr(reductions, name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("a tensor payload with persistent ids is not allowed")


def unpack(text: str) -> Any:
    """What `pack` packed, the tensors mapped from the sending process."""
    return _Unpickler(io.BytesIO(base64.b64decode(text.encode("ascii")))).load()


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def decode(data: bytes) -> dict[str, Any]:
    """A worker's message; anything that is not a JSON object is a broken worker."""
    msg = json.loads(data.decode())
    if not isinstance(msg, dict):
        raise ValueError(f"a worker sent a {type(msg).__name__}, not a JSON object")
    return msg
