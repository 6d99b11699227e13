"""`evo-kernels` entry point: parse, load config, call the library. Exit codes: 0 accepted (status
ok), 1 not accepted, 2 bad usage or a bad problem, candidate or config file."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from . import config as config_mod
from .backends import resolve_device
from .candidate import Candidate
from .problem import ProblemError, load_problem

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps or auto (default: from config, auto)")
    p.add_argument("--config", default=None, help="YAML run config (default: built-in defaults)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evo-kernels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="verify a candidate against a problem (no timing)")
    p.add_argument("problem")
    p.add_argument("candidate")
    _add_common(p)
    p = sub.add_parser("bench", help="time the baselines; with a candidate, verify then time it")
    p.add_argument("problem")
    p.add_argument("candidate", nargs="?")
    _add_common(p)
    return parser


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


def _ms(t: dict[str, Any] | None) -> float | None:
    return None if not t else t.get("median_ms")


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console()
    table = Table(title=f"{result['problem']} on {result['device']} ({result.get('hardware', '')})")
    table.add_column("what")
    table.add_column("median ms", justify="right")
    table.add_column("IQR ms", justify="right")
    table.add_column("speedup vs faster baseline", justify="right")
    timings = result.get("timings", {})
    for name in ("eager", "compile", "candidate"):
        t = timings.get(name)
        if t is None:
            continue
        sp = result["speedup"] if name == "candidate" else (result["best_baseline_ms"] / t["median_ms"]
                                                              if result.get("best_baseline_ms") else None)
        table.add_row(name, f"{t['median_ms']:.4f}", f"{t['iqr_ms']:.4f}", "" if sp is None else f"{sp:.3f}x")
    if timings:
        console.print(table)
    if "status" in result and result.get("candidate_file"):
        style = "green" if result["status"] == "ok" else "red"
        console.print(f"candidate [bold]{result['candidate_file']}[/]: [{style}]{result['status']}[/] "
                      f"{result.get('reason') or ''}")
        if result.get("max_abs_error") is not None:
            console.print(f"max abs error {result['max_abs_error']:.3g}, relative error norm "
                          f"{result['max_rel_error']:.3g}")
    if result.get("eager_noise") is not None:
        console.print(f"baseline noise (eager timed twice): {100 * result['eager_noise']:.2f}%")
    for note in result.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")


def cmd_verify_or_bench(args: argparse.Namespace) -> int:
    from .evaluator import BaselineError, Evaluator
    cfg = _load_config(args)
    try:
        load_problem(args.problem)  # fail fast, in this process, with the file's own error
    except ProblemError as e:
        raise UsageError(str(e)) from None
    candidate = _read_candidate(args.candidate) if args.candidate else None
    timed = args.command == "bench"
    result: dict[str, Any] = {"problem": str(args.problem), "device": cfg.device, "candidate_file": args.candidate,
                              "status": None, "reason": "", "speedup": None, "eager": None, "compile": None,
                              "candidate": None, "timings": {}, "notes": []}
    try:
        with Evaluator(cfg.device, cfg) as ev:
            if timed:
                with _progress("timing baselines (eager, torch.compile)", args.json):
                    base = ev.baselines(args.problem)
                result.update(hardware=base.hardware, eager=base.eager_ms, compile=base.compile_ms,
                              best_baseline=base.best_name, best_baseline_ms=base.best_ms,
                              eager_noise=base.noise, floor_ms=base.floor_ms)
                result["timings"].update(eager=base.eager, **({"compile": base.compile} if base.compile else {}))
                if "compile_error" in base.device_info:
                    result["notes"].append(f"torch.compile baseline failed: {base.device_info['compile_error']}")
            if candidate is not None:
                with _progress("verifying" + (" and timing" if timed else "") + " the candidate", args.json):
                    evaluation = ev.evaluate(args.problem, candidate, timed=timed)
                result.update(status=evaluation.status, reason=evaluation.reason, speedup=evaluation.speedup,
                              candidate=_ms(evaluation.timing), max_abs_error=evaluation.max_abs_error,
                              max_rel_error=evaluation.max_rel_error)
                result["notes"].extend(evaluation.notes)
                if evaluation.timing:
                    result["timings"]["candidate"] = evaluation.timing
            else:
                result["status"] = "ok"
    except BaselineError as e:
        raise UsageError(str(e)) from None
    except RuntimeError as e:  # the worker could not start
        print(f"error: {e}", file=sys.stderr)
        result.update(status="crash", reason=str(e))
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return EXIT_OK if result["status"] == "ok" else EXIT_REJECTED


COMMANDS = {"verify": cmd_verify_or_bench, "bench": cmd_verify_or_bench}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        msg = f"error: {e}"
        print(msg, file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"status": "error", "reason": str(e), "speedup": None, "eager": None,
                              "compile": None, "candidate": None}))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
