"""What the commands share: usage errors, signals, config loading, candidates, pools, progress."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from .. import config as config_mod
from ..harness.backends import resolve_device
from ..model.candidate import Candidate

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


DESCRIPTION = """evo_kernels searches for a faster drop-in ModelNew for a PyTorch problem in KernelBench format
(Model, get_inputs, get_init_inputs), verified against a float64 oracle in training and eval mode, and
timed against the faster of eager and torch.compile as you run them. Start with:
  evo-kernels optimize PROBLEM.py            search one problem (offline: no API key needed)
  evo-kernels suite DIR                       search every problem of a directory
  evo-kernels bench PROBLEM.py CANDIDATE.py   verify and time one implementation of your own"""


class UsageError(Exception):
    pass


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM (a batch scheduler's notice) and Ctrl-C ask the run to stop at its next step: it
    checkpoints, stops its evaluators and exits. Installed after Ray started, so it replaces Ray's
    own SIGTERM handler (which dumps native stacks); the handler only sets a flag (raising from it
    inside Ray's native calls would corrupt them)."""
    import signal

    from ..run.optimize import request_stop

    def stop(signum: int, frame: Any) -> None:
        request_stop(signum)
    before = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _disk_full_exit(e: BaseException, args: argparse.Namespace, run_dir: Path, command: str) -> int:
    """A run stopped by a full disk: the line that says so (and the JSON error line under --json);
    its exit status. Anything else is re-raised."""
    from ..run.disk import EXIT_DISK_FULL, disk_full_message, is_disk_full
    if not is_disk_full(e):
        raise e
    print_error(disk_full_message(e, run_dir, command), args)
    return EXIT_DISK_FULL


def print_error(reason: str, args: argparse.Namespace) -> None:
    """An error's line on stderr, and under --json its JSON object as stdout's last line."""
    print(f"error: {reason}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"status": "error", "reason": reason, "speedup": None, "eager": None, "compile": None,
                          "candidate": None}))


def _stopped_line(e: BaseException, problem: str, run_dir: Path, suite: bool = False) -> int:
    """The one line a stopped run prints, and its exit code (128 + the signal)."""
    import signal
    signum = getattr(e, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    command = "suite" if suite else "optimize"
    print(f"stopped by {name}: every finished evaluation is in {run_dir / 'store.sqlite'}; continue with "
          f"`evo-kernels {command} {problem} --resume --run-dir {run_dir}`", file=sys.stderr)
    return 128 + signum


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps or auto (default: from config, auto)")
    p.add_argument("--config", default=None, help="YAML run config (default: built-in defaults)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as e:
        raise UsageError(str(e)) from None
    device = args.device or cfg.device
    try:
        cfg.device = resolve_device(device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return cfg


def _read_candidate(path: str) -> Candidate:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: candidate file not found")
    return Candidate(source=p.read_text(), proposer="user", technique="user")


@contextlib.contextmanager
def _progress(text: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr for anything that takes more than a moment."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    with Console(stderr=True).status(text):
        yield


def _optimize_config(args: argparse.Namespace, run_dir: Path) -> config_mod.Config:
    """The run's config: on --resume the stored one; the command line's explicit values on top."""
    overrides: dict[str, Any] = {}
    if args.budget is not None:
        overrides["budget"] = args.budget
    if args.time_limit is not None:
        overrides["time_limit_s"] = args.time_limit
    if args.seed is not None:
        overrides.setdefault("search", {})["seed"] = args.seed
    if args.address:
        overrides.setdefault("cluster", {})["address"] = args.address
    if args.device:
        overrides["device"] = args.device
    if getattr(args, "hint", None):
        overrides["hints"] = list(args.hint)
    for key in ("only", "exclude"):
        if getattr(args, key, None):
            overrides.setdefault("search", {})[key] = [t.strip() for t in getattr(args, key).split(",") if t.strip()]
    try:
        if args.resume:
            from ..store import STORE_FILE, existing_store
            store_path = run_dir / STORE_FILE
            try:
                store = existing_store(run_dir)
            except FileNotFoundError:
                raise UsageError(f"{run_dir}: nothing to resume (no {STORE_FILE} there)") from None
            with store:
                row = store.latest_run()
            if row is None:
                raise UsageError(f"{run_dir}: nothing to resume (no run recorded)")
            stored = json.loads(row["config"])["config"]
            cfg = config_mod.from_dict(config_mod.merge(stored, overrides), f"{store_path} (stored config)")
        else:
            cfg = config_mod.load(args.config, overrides)
        cfg.device = resolve_device(cfg.device)
        config_mod.add_llm_models(cfg, getattr(args, "llm", None) or [])
    except (config_mod.ConfigError, ValueError) as e:
        raise UsageError(str(e)) from None
    return cfg


def make_pool(cfg: config_mod.Config, cache_dir: Path) -> Any:
    from ..cluster import LocalPool
    if cfg.cluster.backend == "local":
        return LocalPool(cfg, cache_dir)
    from ..cluster import RayPool
    return RayPool(cfg, cache_dir, address=cfg.cluster.address or None)


def _add_guidance(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", action="append", default=None, metavar="FILE",
                   help="start the population from this implementation (repeatable); verified first")
    p.add_argument("--only", default=None, help="comma list: keep only drafts of these techniques")
    p.add_argument("--exclude", default=None, help="comma list: drop drafts using these techniques")
    p.add_argument("--hint", action="append", default=None, metavar="TEXT",
                   help="guidance in words for the LLM proposer (repeatable); recorded with the run")


def _start_candidates(args: argparse.Namespace) -> list[Candidate]:
    seeds = []
    for path in getattr(args, "start", None) or []:
        c = _read_candidate(path)
        seeds.append(Candidate(source=c.source, proposer="start", technique="start:" + Path(path).stem))
    return seeds
