"""The command line: parse, load the config, call a job; exit codes 0 (accepted), 1 (not accepted),
2 (bad usage or a bad problem, candidate or config file), 75 (a search stopped by a full disk: what
it recorded is kept, --resume continues it once there is space), 130/143 (stopped by Ctrl-C / SIGTERM,
the run checkpointed: --resume continues it)."""
from __future__ import annotations

import argparse
import sqlite3
import sys
from typing import Any

from .common import DESCRIPTION, EXIT_USAGE, UsageError, _add_common, _add_guidance, print_error
from .judge import cmd_verify_or_bench
from .reports import cmd_export, cmd_hint, cmd_report, cmd_show
from .search import cmd_optimize, cmd_port, cmd_suite, cmd_tune


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evo-kernels", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="verify candidates against a problem (no timing)")
    p.add_argument("problem")
    p.add_argument("candidate", nargs="+", help="one or more candidate files, judged in turn")
    _add_common(p)
    p = sub.add_parser("bench", help="time the baselines; with candidates, verify then time each")
    p.add_argument("problem")
    p.add_argument("candidate", nargs="*", help="candidate files, judged in turn by one evaluator")
    _add_common(p)
    p = sub.add_parser("optimize", help="search for a faster ModelNew for a problem")
    p.add_argument("problem")
    p.add_argument("--device", default=None, help="cpu, cuda, mps or auto")
    p.add_argument("--budget", type=int, default=None, help="evaluations for the run (a tuning screen counts one)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds of the problem's evaluations and planning (its wall-clock time while any of "
                        "its evaluations runs); confirmation of the result comes after it")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-dir", default=None, help="where the store, best.py and summary.json go "
                                                  "(default: runs/<problem>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--config", default=None)
    p.add_argument("--address", default=None, help="Ray address of an existing cluster to join")
    p.add_argument("--llm", action="append", default=None, metavar="MODEL",
                   help="add the LLM proposer with this model (repeatable); endpoint and key from "
                        "OPENAI_BASE_URL / OPENAI_API_KEY or the config's llm section")
    p.add_argument("--json", action="store_true", help="print summary.json's object as the last line")
    _add_guidance(p)
    _add_suite_commands(sub)
    return parser


def _add_suite_commands(sub: Any) -> None:
    p = sub.add_parser("suite", help="search every problem of a suite on one shared pool")
    p.add_argument("suite", help="a directory of problems (levels as subdirectories) or a YAML file")
    p.add_argument("--device", default=None)
    p.add_argument("--budget-per-problem", type=int, default=None)
    p.add_argument("--time-limit", type=float, default=None, help="wall-clock seconds per problem")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-dir", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--config", default=None)
    p.add_argument("--address", default=None)
    p.add_argument("--json", action="store_true", help="print suite.json's object as the last line")
    _add_guidance(p)
    p = sub.add_parser("port", help="re-verify and re-tune a finished run's best candidates on new hardware")
    p.add_argument("source_run_dir")
    p.add_argument("--device", default=None)
    p.add_argument("--hw", default=None, help="hardware label to port to (default: the pool's first)")
    p.add_argument("--budget-per-problem", type=int, default=None,
                   help="evaluations per problem there, re-verification and re-tuning included (default 8)")
    p.add_argument("--run-dir", default=None, help="default: SOURCE_RUN_DIR/port-<hw>")
    p.add_argument("--config", default=None)
    p.add_argument("--address", default=None)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("tune", help="sweep a candidate's TUNABLE space on each hardware label")
    p.add_argument("problem")
    p.add_argument("candidate")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--sampler", choices=["tpe", "grid", "random"], default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--hw", action="append", default=None, help="hardware label (repeatable; default: every label)")
    p.add_argument("--address", default=None)
    p.add_argument("--run-dir", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--config", default=None)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("export", help="write the best kernels as drop-in modules in KernelBench's layout")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="default: RUN_DIR/export")
    p = sub.add_parser("hint", help="add guidance to a run; a running search picks it up at its next generation")
    p.add_argument("run_dir")
    p.add_argument("text")
    p = sub.add_parser("show", help="print a run's summary (also while it runs)")
    p.add_argument("run_dir")
    p = sub.add_parser("report", help="write a self-contained HTML (or Markdown) report of a run")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["html", "md"], default="html")
    p.add_argument("--output", default=None, help="default: RUN_DIR/report.html or report.md")


COMMANDS = {"verify": cmd_verify_or_bench, "bench": cmd_verify_or_bench, "optimize": cmd_optimize,
            "suite": cmd_suite, "show": cmd_show, "report": cmd_report, "port": cmd_port, "export": cmd_export,
            "tune": cmd_tune, "hint": cmd_hint}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        print_error(str(e), args)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, sqlite3.Error) as e:  # a full disk under the other commands (tune, port, report, ...)
        from ..run.disk import EXIT_DISK_FULL, is_disk_full
        if not is_disk_full(e):
            raise
        print(f"error: no space left on the disk ({e})", file=sys.stderr)
        return EXIT_DISK_FULL


if __name__ == "__main__":
    sys.exit(main())
