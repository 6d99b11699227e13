"""A sandbox process: its limits, and the request loop of the service it runs.

Started by sandbox.py as `python -m evo_kernels.harness.worker --fd N --device D --role R` with a
scrubbed environment in a temporary directory. Before anything else it applies its resource limits
and leaves the network (where the OS allows it). Requests and replies are JSON objects over a
`multiprocessing.connection.Connection` on fd N (never pickles: a reply from a process that ran
candidate code is data, not code).

Two roles: `judge` (judge.py: the reference, the oracle, the baselines; never imports candidate
code) and `defendant` (defendant.py: imports and runs candidates). The defendant snapshots what the
harness relies on before any candidate is imported (integrity.py).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SANDBOX_ENV = "EVO_KERNELS_SANDBOX"  # JSON of the sandbox settings, set by sandbox.py
ROLES = ("judge", "defendant")
# A file each worker appends its device memory to after every request (diagnostics; unset: nothing).
MEMORY_TRACE_ENV = "EVO_KERNELS_MEMORY_TRACE"
_CLONE_NEWNET = 0x40000000


def apply_limits(settings: dict[str, Any]) -> list[str]:
    """Resource limits and network isolation; returns notes on what could not be applied."""
    notes = []
    mem_gb = float(settings.get("memory_limit_gb") or 0)
    if mem_gb > 0:
        limit = int(mem_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    fsize = int(float(settings.get("file_size_limit_mb") or 0) * (1 << 20))
    if fsize > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if settings.get("isolate_network"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) != 0:
            notes.append(f"network not isolated: unshare(CLONE_NEWNET) failed with errno {ctypes.get_errno()}")
    return notes


def start(role: str, device: str, workdir: Path) -> Any:
    """The service of a role, with everything it relies on imported (and, for the defendant,
    snapshotted) before a request arrives."""
    import torch

    from . import transfer
    from .backends import get_backend
    transfer.setup()
    backend = get_backend(device)
    # torch._dynamo wraps torch.manual_seed when first imported, and patches nn.Module.__init__ on its
    # first compile: both before the snapshot, so an honest torch.compile changes nothing.
    import torch._dynamo  # noqa: F401
    import torch.utils.flop_counter  # noqa: F401
    from torch._dynamo.mutation_guard import install_generation_tagging_init
    install_generation_tagging_init()
    if role == "judge":
        from .judge import Judge
        return Judge(device, backend)
    from . import integrity
    from .defendant import Defendant
    from . import audit, checks, contract, precision, timing, trials  # noqa: F401 - imported before the snapshot
    from ..model import problem  # noqa: F401
    service = Defendant(device, backend, workdir)
    integrity.snapshot()
    del torch
    return service


def _trace_memory(path: str, service: Any, op: Any) -> None:
    """One JSON line per request: the process's device memory after it (diagnostics)."""
    try:
        stats = service.backend.memory_stats()
        with open(path, "a") as f:
            f.write(json.dumps({"role": type(service).__name__.lower(), "pid": os.getpid(), "op": op, **stats}) + "\n")
    except Exception:  # noqa: BLE001 - diagnostics never fail a request
        pass


def serve(conn: Connection, service: Any) -> None:
    """Answer requests until told to exit or the parent goes away. The cyclic garbage collector runs
    only where a service enables it (inside candidate calls), so a candidate's finalizer never runs
    in the middle of the harness's own work."""
    from . import transfer
    trace = os.environ.get(MEMORY_TRACE_ENV)
    while True:
        try:
            msg = transfer.decode(conn.recv_bytes())
        except (EOFError, OSError):
            return
        except ValueError as e:
            conn.send_bytes(transfer.encode({"ok": False, "error": f"bad request: {e}"}))
            continue
        if msg.get("op") == "exit":
            return
        was = gc.isenabled()
        gc.disable()
        try:
            if msg.get("op") == "ping":
                reply: dict[str, Any] = {"ok": True, "pid": os.getpid()}
            else:
                reply = service.handle(msg)
        except BaseException as e:  # noqa: BLE001 - never die silently; the parent decides
            reply = {"ok": False, "status": "crash", "reason": f"crash: worker error {type(e).__name__}: {e}",
                     "traceback": traceback.format_exc(), "fatal": True}
        finally:
            if was:
                gc.enable()
        if trace:
            _trace_memory(trace, service, msg.get("op"))
        try:
            data = transfer.encode(reply)
        except (TypeError, ValueError) as e:
            data = transfer.encode({"ok": False, "status": "crash", "fatal": True,
                                    "reason": f"crash: the worker's reply is not JSON ({e})"})
        conn.send_bytes(data)
        if reply.get("fatal"):
            sys.stdout.flush()
            os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--role", choices=ROLES, default="defendant")
    args = parser.parse_args()
    settings = json.loads(os.environ.get(SANDBOX_ENV, "{}"))
    notes = apply_limits(settings)
    conn = Connection(args.fd)
    try:
        service = start(args.role, args.device, Path.cwd())
    except BaseException as e:  # noqa: BLE001
        conn.send_bytes(json.dumps({"ok": False, "error": f"worker failed to start: {type(e).__name__}: {e}",
                                    "traceback": traceback.format_exc()}).encode())
        return
    # What start imported (torch, the harness) lives as long as the process: out of the collector's
    # sight, so that the collections between candidates walk only what came after (0.14 s each
    # otherwise, on the CPU, half of a small problem's verification).
    gc.freeze()
    conn.send_bytes(json.dumps({"ok": True, "pid": os.getpid(), "notes": notes}).encode())
    serve(conn, service)
    # Leave at once: the interpreter's teardown (torch's, and any thread a candidate left running)
    # would keep the parent waiting for nothing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
