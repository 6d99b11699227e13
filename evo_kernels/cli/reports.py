"""Commands that read a run: `show`, `report`, `export`, and `hint` (guidance for a running search)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError


def cmd_export(args: argparse.Namespace) -> int:
    from ..report import export
    run_dir = Path(args.run_dir)
    try:
        written = export(run_dir, Path(args.out) if args.out else run_dir / "export")
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    for path in written:
        print(path)
    return EXIT_OK


def cmd_hint(args: argparse.Namespace) -> int:
    from ..run.hints import HintError, add_hint
    try:
        add_hint(Path(args.run_dir), args.text)
    except HintError as e:
        raise UsageError(str(e)) from None
    print(f"added to {Path(args.run_dir) / 'hints.txt'}; the search reads it at its next generation")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from ..report import collect, print_summary
    try:
        data = collect(Path(args.run_dir))
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    print_summary(data)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import collect, write_html, write_markdown
    run_dir = Path(args.run_dir)
    try:
        data = collect(run_dir)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    out = Path(args.output) if args.output else run_dir / f"report.{args.format}"
    (write_html if args.format == "html" else write_markdown)(data, out)
    print(f"wrote {out}")
    return EXIT_OK
