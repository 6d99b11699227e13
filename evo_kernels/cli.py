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
from .harness.backends import resolve_device
from .model.candidate import Candidate
from .model.problem import ProblemError, load_problem

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
    p = sub.add_parser("optimize", help="search for a faster ModelNew for a problem")
    p.add_argument("problem")
    p.add_argument("--device", default=None, help="cpu, cuda, mps or auto")
    p.add_argument("--budget", type=int, default=None, help="evaluations for the run, tuning trials included")
    p.add_argument("--time-limit", type=float, default=None, help="wall-clock seconds for the run")
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
    from .harness.evaluator import BaselineError, Evaluator
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
            from .store import STORE_FILE, existing_store
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
    from .cluster import LocalPool
    if cfg.cluster.backend == "local":
        return LocalPool(cfg, cache_dir)
    from .cluster import RayPool
    return RayPool(cfg, cache_dir, address=cfg.cluster.address or None)


def cmd_optimize(args: argparse.Namespace) -> int:
    import time as _time

    from .run.optimize import Optimizer, RunError
    try:
        problem = load_problem(args.problem)
    except ProblemError as e:
        raise UsageError(str(e)) from None
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"{problem.name}-{_time.strftime('%Y%m%d-%H%M%S')}"
    cfg = _optimize_config(args, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]gen {task.fields[gen]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("running {task.fields[running]}  best {task.fields[best]}  {task.fields[fails]}"),
                   TimeElapsedColumn(), console=console, disable=args.json or not console.is_terminal)
    task = bar.add_task("optimize", total=cfg.budget, gen=0, running=0, best="-", fails="")

    def show(p: Any) -> None:
        fails = " ".join(f"{k}:{v}" for k, v in sorted(p.by_status.items()) if k != "ok")
        bar.update(task, completed=p.done, gen=p.generation, running=p.running,
                   best=f"{p.best_speedup:.3f}x ({p.best_technique})" if p.best_speedup else "-", fails=fails)

    console.print(f"optimizing {args.problem} on {cfg.device}: budget {cfg.budget} evaluations, run dir {run_dir}")
    pool = None
    try:
        with bar:
            pool = make_pool(cfg, run_dir / "cache")
            opt = Optimizer(args.problem, cfg, run_dir, pool, resume=args.resume, on_progress=show,
                            seeds=_start_candidates(args))
            try:
                summary = opt.run()
            finally:
                opt.close()
    except RunError as e:
        raise UsageError(str(e)) from None
    finally:
        if pool is not None:
            pool.close()
    if args.json:
        print(json.dumps(summary))
    else:
        console = Console()
        console.print(f"best: [bold]{summary['best_speedup']:.3f}x[/] over the faster baseline "
                      f"({summary['best_ms']:.4f} ms vs eager {summary['eager_ms']:.4f} ms"
                      + (f", compile {summary['compile_ms']:.4f} ms" if summary["compile_ms"] else "")
                      + f"), technique {summary['best_technique']}")
        console.print(f"{summary['evaluations']} evaluations: {summary['by_status']}; by proposer {summary['by_proposer']}")
        if "llm" in summary:
            for name, u in summary["llm"]["models"].items():
                console.print(f"llm {name}: {u['requests']} requests ({u['cached']} answers from the cache, "
                              f"{u['failures']} unanswered), {u['prompt_tokens']} prompt + "
                              f"{u['completion_tokens']} completion tokens, ${u['cost_usd']:.4f}")
        console.print(f"wrote {run_dir / 'best.py'} and {run_dir / 'summary.json'}")
    return EXIT_OK


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


def cmd_suite(args: argparse.Namespace) -> int:
    import time as _time

    from .run.optimize import Optimizer, drive
    from .run.suite import SuiteError, discover, markdown, write_suite_summary
    try:
        entries = discover(args.suite)
    except SuiteError as e:
        raise UsageError(str(e)) from None
    for entry in entries:
        try:
            load_problem(entry.path)
        except ProblemError as e:
            raise UsageError(str(e)) from None
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"suite-{_time.strftime('%Y%m%d-%H%M%S')}"
    args.budget = args.budget_per_problem
    cfg = _optimize_config(args, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    from rich.console import Console
    console = Console(stderr=True)
    console.print(f"suite {args.suite}: {len(entries)} problems on {cfg.device}, run dir {run_dir}")
    pool = make_pool(cfg, run_dir / "cache")
    optimizers = []
    try:
        for entry in entries:
            pcfg = config_mod.from_dict(cfg.to_dict())
            if entry.budget is not None and args.budget_per_problem is None:
                pcfg.budget = entry.budget
            pcfg.hints = list(pcfg.hints) + list(entry.hints)
            optimizers.append(Optimizer(entry.path, pcfg, run_dir, pool, resume=args.resume,
                                        out_dir=run_dir / "problems" / entry.path.stem,
                                        seeds=_start_candidates(args)))
        drive(optimizers, pool)
        summaries = []
        for o in optimizers:
            if o.error:
                console.print(f"[red]{o.error}[/]")
                continue
            summaries.append(o.finish())
    except Exception as e:
        from .run.optimize import RunError
        if isinstance(e, RunError):
            raise UsageError(str(e)) from None
        raise
    finally:
        for o in optimizers:
            o.close()
        pool.close()
    result = write_suite_summary(run_dir, summaries)
    if args.json:
        print(json.dumps(result))
    else:
        print(markdown(result["table"]))
        console.print(f"wrote {run_dir / 'suite.json'}, {run_dir / 'suite.md'} and problems/*/best.py")
    return EXIT_OK if len(summaries) == len(optimizers) else EXIT_REJECTED


def cmd_port(args: argparse.Namespace) -> int:
    from .run.optimize import Optimizer, RunError, drive
    from .run.port import best_of_run, markdown, verdicts, write
    source = Path(args.source_run_dir)
    if not (source / "store.sqlite").exists():
        raise UsageError(f"{source}: no run here (no store.sqlite)")
    ported = best_of_run(source)
    if not ported:
        raise UsageError(f"{source}: no problem of this run has a correct candidate to port")
    args.budget, args.time_limit, args.seed, args.resume = args.budget_per_problem or 8, None, None, False
    run_dir = Path(args.run_dir) if args.run_dir else source / f"port-{args.hw or 'target'}"
    cfg = _optimize_config(args, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = make_pool(cfg, run_dir / "cache")
    optimizers = []
    try:
        for p in ported:
            seed = Candidate(source=p.candidate.source, params=p.candidate.params, parents=(p.candidate.id,),
                             proposer="port", technique=p.candidate.technique)
            optimizers.append(Optimizer(p.problem_file(run_dir), cfg, run_dir, pool, out_dir=run_dir / "problems" /
                                        Path(p.problem_path).stem, hardware=args.hw, seeds=[seed]))
        drive(optimizers, pool)
        rows = []
        for p, o in zip(ported, optimizers):
            if o.error:
                rows.append({"problem": Path(p.problem_path).stem, "verdict": f"failed there: {o.error}",
                             "source_hardware": p.source_hardware, "source_speedup": p.source_speedup,
                             "target_hardware": o.hardware, "as_is_status": None, "as_is_speedup": None,
                             "retuned_speedup": None, "retuned_params": None, "final_speedup": None,
                             "final_technique": None})
                continue
            o.finish()
            rows.append(verdicts(p, o))
    except RunError as e:
        raise UsageError(str(e)) from None
    finally:
        for o in optimizers:
            o.close()
        pool.close()
    write(run_dir, rows)
    print(json.dumps(rows) if args.json else markdown(rows))
    return EXIT_OK


def cmd_tune(args: argparse.Namespace) -> int:
    import time as _time

    from .run.tune import TuneError, markdown, tune
    try:
        load_problem(args.problem)
    except ProblemError as e:
        raise UsageError(str(e)) from None
    candidate = _read_candidate(args.candidate)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"tune-{Path(args.candidate).stem}-{_time.strftime('%Y%m%d-%H%M%S')}"
    args.budget, args.time_limit, args.seed = None, None, None
    cfg = _optimize_config(args, run_dir) if not args.resume else _load_config(args)
    if args.sampler:
        cfg.tuning.sampler = args.sampler
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = make_pool(cfg, run_dir / "cache")
    try:
        labels = args.hw or pool.hardware()
        rows = tune(args.problem, candidate, cfg, run_dir, pool, labels, args.trials, resume=args.resume)
    except TuneError as e:
        raise UsageError(f"{args.candidate}: {e}") from None
    finally:
        pool.close()
    (run_dir / "tune.md").write_text(markdown(rows) + "\n")
    (run_dir / "tune.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows) if args.json else markdown(rows))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .report import export
    run_dir = Path(args.run_dir)
    try:
        written = export(run_dir, Path(args.out) if args.out else run_dir / "export")
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    for path in written:
        print(path)
    return EXIT_OK


def cmd_hint(args: argparse.Namespace) -> int:
    from .run.hints import HintError, add_hint
    try:
        add_hint(Path(args.run_dir), args.text)
    except HintError as e:
        raise UsageError(str(e)) from None
    print(f"added to {Path(args.run_dir) / 'hints.txt'}; the search reads it at its next generation")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from .report import collect, print_summary
    try:
        data = collect(Path(args.run_dir))
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    print_summary(data)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from .report import collect, write_html, write_markdown
    run_dir = Path(args.run_dir)
    try:
        data = collect(run_dir)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    out = Path(args.output) if args.output else run_dir / f"report.{args.format}"
    (write_html if args.format == "html" else write_markdown)(data, out)
    print(f"wrote {out}")
    return EXIT_OK


COMMANDS = {"verify": cmd_verify_or_bench, "bench": cmd_verify_or_bench, "optimize": cmd_optimize,
            "suite": cmd_suite, "show": cmd_show, "report": cmd_report, "port": cmd_port, "export": cmd_export,
            "tune": cmd_tune, "hint": cmd_hint}


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
