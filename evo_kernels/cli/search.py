"""The search commands: `optimize` (one problem), `suite`, `port`, `tune`."""
from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

from .. import config as config_mod
from ..model.candidate import Candidate
from ..model.problem import ProblemError, load_problem
from ..run.optimize import Interrupted, RunError
from .common import (EXIT_OK, EXIT_REJECTED, UsageError, _disk_full_exit, _load_config, _optimize_config,
                     _read_candidate, _start_candidates, _stop_on_signals, _stopped_line, make_pool)


def cmd_optimize(args: argparse.Namespace) -> int:
    import time as _time

    from ..model.problem import check_reference
    from ..run.optimize import Optimizer
    try:
        problem = load_problem(args.problem)
        check_reference(problem)  # before any evaluator starts: a broken reference is the problem's error
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
            with _stop_on_signals():
                opt = Optimizer(args.problem, cfg, run_dir, pool, resume=args.resume, on_progress=show,
                                seeds=_start_candidates(args))
                try:
                    summary = opt.run()
                finally:
                    opt.close()
    except RunError as e:
        raise UsageError(str(e)) from None
    except (Interrupted, KeyboardInterrupt) as e:
        if pool is not None:
            pool.close()
            pool = None
        return _stopped_line(e, args.problem, run_dir)
    except (OSError, sqlite3.Error) as e:  # a full disk under the store or the run's files
        return _disk_full_exit(e, args, run_dir, f"evo-kernels optimize {args.problem}")
    finally:
        if pool is not None:
            pool.close()
    if args.json:
        print(json.dumps(summary))
    else:
        console = Console()
        console.print(result_line(summary))
        console.print(f"{summary['evaluations']} evaluations: {summary['by_status']}; by proposer {summary['by_proposer']}")
        if "llm" in summary:
            for name, u in summary["llm"]["models"].items():
                console.print(f"llm {name}: {u['requests']} requests ({u['cached']} answers from the cache, "
                              f"{u['failures']} unanswered), {u['prompt_tokens']} prompt + "
                              f"{u['completion_tokens']} completion tokens, ${u['cost_usd']:.4f}")
        console.print(f"wrote {run_dir / 'best.py'} and {run_dir / 'summary.json'}")
        print(f"stopped: {summary['stopped']} ({summary['stopped_because']})")  # the last line, unwrapped
    return EXIT_OK


def result_line(summary: dict[str, Any]) -> str:
    """The result in words: a confirmed win with its interval, or no significant win."""
    ci = summary.get("best_speedup_ci")
    interval = f", 95% interval [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    base = (f"eager {summary['eager_ms']:.4f} ms" + (f", compile {summary['compile_ms']:.4f} ms"
                                                      if summary.get("compile_ms") else ""))
    if summary.get("result") == "win":
        return (f"result: [bold]{summary['best_speedup']:.3f}x[/] over the faster baseline{interval} "
                f"({summary['best_ms']:.4f} ms vs {base}), technique {summary['best_technique']}")
    measured = summary.get("measured_speedup")
    if measured:
        return (f"result: no significant win: the best candidate measured {measured:.3f}x{interval}; the "
                f"faster baseline is kept ({summary['best_technique']}: {base})")
    return f"result: nothing faster than the baseline was found; the faster baseline is kept ({base})"


def cmd_suite(args: argparse.Namespace) -> int:
    import time as _time

    from ..run.optimize import Optimizer, drive
    from ..run.suite import SuiteError, discover, markdown, write_suite_summary
    try:
        entries = discover(args.suite)
    except SuiteError as e:
        raise UsageError(str(e)) from None
    from ..model.problem import check_reference
    broken = []
    for entry in entries:
        try:
            problem = load_problem(entry.path)
        except ProblemError as e:
            raise UsageError(str(e)) from None
        try:
            check_reference(problem)  # before any evaluator starts: it is left out, the suite goes on
        except ProblemError as e:
            broken.append(str(e))
    entries = [e for e in entries if not any(b.startswith(f"{e.path}:") for b in broken)]
    if not entries:
        raise UsageError("no problem of the suite can run: " + "; ".join(broken))
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"suite-{_time.strftime('%Y%m%d-%H%M%S')}"
    args.budget = args.budget_per_problem
    cfg = _optimize_config(args, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    from rich.console import Console
    console = Console(stderr=True)
    console.print(f"suite {args.suite}: {len(entries)} problems on {cfg.device}, run dir {run_dir}")
    for b in broken:
        console.print(f"[red]left out: {b}[/]")
    pool = make_pool(cfg, run_dir / "cache")
    optimizers = []
    stopped_by: BaseException | None = None
    try:
        with _stop_on_signals():
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
    except (Interrupted, KeyboardInterrupt) as e:
        stopped_by = e  # the optimizers checkpoint and the pool stops below, then the line
    except RunError as e:
        raise UsageError(str(e)) from None
    except (OSError, sqlite3.Error) as e:  # a full disk under the store or the run's files
        stopped_by = e
    finally:
        for o in optimizers:
            o.close()
        pool.close()
    if isinstance(stopped_by, (OSError, sqlite3.Error)):
        return _disk_full_exit(stopped_by, args, run_dir, f"evo-kernels suite {args.suite}")
    if stopped_by is not None:
        return _stopped_line(stopped_by, args.suite, run_dir, suite=True)
    result = write_suite_summary(run_dir, summaries)
    if args.json:
        print(json.dumps(result))
    else:
        print(markdown(result["table"]))
        console.print(f"wrote {run_dir / 'suite.json'}, {run_dir / 'suite.md'} and problems/*/best.py")
    return EXIT_OK if len(summaries) == len(optimizers) else EXIT_REJECTED


def cmd_port(args: argparse.Namespace) -> int:
    from ..run.optimize import Optimizer, drive
    from ..run.port import best_of_run, markdown, verdicts, write
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

    from ..run.tune import TuneError, markdown, tune
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
