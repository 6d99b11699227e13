"""The sandbox: long-lived worker processes (a judge and a defendant per device), and their recovery.

A worker is a new interpreter (spawned, not forked: no CUDA context or Ray state is inherited) with a
scrubbed environment, a temporary working directory and resource limits (see worker.py). Messages
are JSON both ways. A request that outlives its time limit gets `timeout`; a worker that dies
(segfault, abort, a CUDA error that poisons the context) or answers with something that is not JSON
gets `crash`. Either way the worker is replaced and the next request runs normally. `paused()`
stops a worker (SIGSTOP) while the other one works, so nothing the candidate left running competes
with the judge's timing.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator

from ..config import SandboxConfig
from . import transfer
from .worker import MEMORY_TRACE_ENV, SANDBOX_ENV

# Variables the worker keeps: what Python, PyTorch, Triton and the GPU runtime need. Anything whose
# name looks like a secret is dropped even when its prefix is allowed.
_KEEP_PREFIXES = ("CUDA_", "NVIDIA_", "TRITON_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "OPENBLAS_",
                  "NCCL_", "NVSHMEM_", "LC_", "HIP_", "ROCM_", "PYTHONPATH", "PYTHONHASHSEED")
_KEEP_NAMES = {"PATH", "LANG", "LD_LIBRARY_PATH", "TERM", "TZ", "CC", "CXX", "VIRTUAL_ENV", "CONDA_PREFIX",
               MEMORY_TRACE_ENV}
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|CERT", re.I)


def scrub_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment a worker sees: an allow-list, minus anything that looks like a secret."""
    out = {}
    for name, value in env.items():
        if _SECRET.search(name):
            continue
        if name in _KEEP_NAMES or name.startswith(_KEEP_PREFIXES):
            out[name] = value
    return out


def start_all(workers: list["SandboxWorker"]) -> None:
    """Start several workers at once (each spends seconds importing torch); closes them all on failure."""
    try:
        for w in workers:
            w.spawn()
        for w in workers:
            w.wait_ready()
    except BaseException:
        for w in workers:
            w.close()
        raise


# Less free space than this where a worker writes (its scratch directory, the kernel caches): a
# candidate that failed there may have failed for the disk, not for itself.
LOW_DISK_BYTES = 64 << 20


class SandboxWorker:
    """Parent-side handle of one worker process bound to one device."""

    def __init__(self, device: str, cfg: SandboxConfig | None = None, cache_dir: str | Path | None = None,
                 role: str = "defendant") -> None:
        self.device = device
        self.role = role
        self.cfg = cfg or SandboxConfig()
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.workdir: Path | None = None
        self.restarts = 0
        self.notes: list[str] = []

    def short_of_disk(self) -> str | None:
        """Where this worker writes with less than LOW_DISK_BYTES free (said as a sentence), or None."""
        for path in (Path(tempfile.gettempdir()), self.cache_dir):
            while path is not None and not path.exists() and path != path.parent:
                path = path.parent  # the cache directory is made on first use
            if path is None:
                continue
            free = shutil.disk_usage(path).free
            if free < LOW_DISK_BYTES:
                return f"{path} has {free >> 20} MiB free"
        return None

    # -- lifecycle ----------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = scrub_environment(dict(os.environ))
        assert self.workdir is not None
        env["HOME"] = str(self.workdir)
        env["TMPDIR"] = str(self.workdir)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # Keep the package importable when it runs from a source tree rather than installed.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        if self.cache_dir is not None:  # compiled kernels survive worker restarts
            env.setdefault("TRITON_CACHE_DIR", str(self.cache_dir / "triton"))
            env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(self.cache_dir / "inductor"))
        env[SANDBOX_ENV] = json.dumps({"memory_limit_gb": self.cfg.memory_limit_gb,
                                       "file_size_limit_mb": self.cfg.file_size_limit_mb,
                                       "isolate_network": self.cfg.isolate_network})
        return env

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the process (it imports torch and the harness while its peer starts too)."""
        self.workdir = Path(tempfile.mkdtemp(prefix=f"evo-{self.role}-"))
        parent_sock, child_sock = socket.socketpair()
        log = open(self.workdir / "worker.log", "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "evo_kernels.harness.worker", "--fd", str(child_sock.fileno()), "--device", self.device,
                 "--role", self.role],
                cwd=self.workdir, env=self._env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(child_sock.fileno(),), start_new_session=True)
        finally:
            child_sock.close()
            log.close()
        self.conn = Connection(parent_sock.detach())

    def wait_ready(self) -> None:
        hello = self._receive(self.cfg.startup_timeout_s)
        if hello is None or not hello.get("ok"):
            detail = (hello or {}).get("error") or self._death_reason() or "no answer"
            self.close()
            raise RuntimeError(f"sandbox {self.role} for {self.device} failed to start: {detail}; log: {self._log_tail()}")
        self.notes = list(hello.get("notes") or [])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        if self.conn is not None and self.alive():
            try:
                self.conn.send_bytes(transfer.encode({"op": "exit"}))
                self.proc.wait(timeout=5)  # type: ignore[union-attr]
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and anything it started
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def restart(self) -> None:
        self._kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.restarts += 1
        self.start()

    # -- requests -----------------------------------------------------------------------------------
    def _receive(self, timeout: float) -> dict[str, Any] | None:
        assert self.conn is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                if self.conn.poll(min(left, 1.0)):
                    return self._read()
            except (EOFError, OSError):
                return {"_dead": True}
            if not self.alive():
                try:
                    if self.conn.poll(0):
                        return self._read()
                except (EOFError, OSError):
                    pass
                return {"_dead": True}

    def _read(self) -> dict[str, Any]:
        """One message; anything that is not a JSON object means the worker cannot be trusted."""
        assert self.conn is not None
        data = self.conn.recv_bytes()
        try:
            return transfer.decode(data)
        except ValueError as e:
            return {"_dead": True, "_why": f"it sent a message that is not a JSON object ({str(e)[:200]})"}

    def _death_reason(self) -> str:
        if self.proc is None:
            return ""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        if code < 0:
            try:
                return f"worker killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"worker killed by signal {-code}"
        return f"worker exited with code {code}"

    def _log_tail(self, n: int = 1500) -> str:
        if self.workdir is None or not (self.workdir / "worker.log").exists():
            return ""
        return (self.workdir / "worker.log").read_text(errors="replace")[-n:]

    def request(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request; a hang becomes `timeout`, a dead worker `crash`; the worker is replaced."""
        if not self.alive():
            self.restart() if self.proc is not None else self.start()
        assert self.conn is not None
        limit = self.cfg.timeout_s if timeout is None else timeout
        try:
            self.conn.send_bytes(transfer.encode(msg))
        except (OSError, EOFError):
            reply: dict[str, Any] | None = {"_dead": True}
        else:
            reply = self._receive(limit)
        if reply is None:
            self.restart()
            return {"status": "timeout", "reason": f"timeout: no result within {limit:g} s; the worker was "
                                                   "killed and replaced"}
        if reply.get("_dead"):
            if reply.get("_why"):
                self._kill()
            why = reply.get("_why") or self._death_reason() or "worker died"
            tail = self._log_tail(600).strip().splitlines()[-3:]
            self.restart()
            return {"status": "crash", "reason": f"crash: {why}" + (f" ({' | '.join(tail)})" if tail else "")}
        if reply.get("fatal"):
            self.restart()
        return reply

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The worker stopped (SIGSTOP to its process group) for the block, then let go on."""
        stopped = False
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
                stopped = True
            except (ProcessLookupError, PermissionError):
                pass
        try:
            yield
        finally:
            if stopped and self.alive():
                try:
                    os.killpg(self.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
                except (ProcessLookupError, PermissionError):
                    pass

    def __enter__(self) -> "SandboxWorker":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
