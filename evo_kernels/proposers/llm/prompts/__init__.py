"""The LLM proposer's prompts, rendered from the template files in evo_kernels/prompts/.

Templates use `string.Template` ($name) because the code they embed is full of braces. The
templates' digest is part of every request's cache key, so editing a prompt never replays answers
given to the old one.
"""
from __future__ import annotations

import functools
import hashlib
import string
from pathlib import Path
from typing import Any

from ....model.candidate import ALLOWED_IMPORTS, Evaluation
from ....model.problem import Problem
from ....model.devices import units_words
from ...base import Ask, Context, Member

PROMPTS = Path(__file__).resolve().parent
TEMPLATES = ("system", "mutate", "crossover", "hardware", "member", "failure")
_INSPIRATION_CHARS = 4000  # an inspiration is context, not the thing edited: keep it short


@functools.lru_cache(maxsize=None)
def template(name: str) -> string.Template:
    return string.Template((PROMPTS / f"{name}.md").read_text())


@functools.lru_cache(maxsize=None)
def templates_digest() -> str:
    blob = "\0".join((PROMPTS / f"{n}.md").read_text() for n in TEMPLATES)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def trim(text: str, limit: int) -> str:
    """Head and tail of a long text: an error's kind is at the start, a traceback's cause at the end."""
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    half = max(1, limit // 2)
    return f"{text[:half]} [... {len(text) - 2 * half} characters cut ...] {text[-half:]}"


def _num(value: Any, unit: str, scale: float = 1.0) -> str:
    return "not measured" if not value else f"{value / scale:.4g} {unit}"


def hardware(context: Context | None) -> str:
    base = dict(context.baselines) if context is not None else {}
    info = base.get("device_info") or {}
    return template("hardware").substitute(
        name=info.get("name", "unknown"), kind=info.get("kind", "unknown"), sm_count=info.get("sm_count", "?"),
        memory=_num(info.get("memory_bytes"), "GB", 1e9), l2=_num(info.get("l2_bytes"), "MB", 2**20),
        bandwidth=_num(info.get("bandwidth_gbs"), "GB/s"), peak=_num(info.get("peak_tflops_fp32"), "TFLOP/s"),
        tf32=_num(info.get("peak_tflops_tf32"), "TFLOP/s"),
        eager=_num(base.get("eager_ms"), "ms"), compile=_num(base.get("compile_ms"), "ms"),
        best=_num(base.get("best_ms"), "ms"), bound=_num(base.get("bound_ms"), "ms"),
        units=units_words(base.get("bound_units") or {}))


def _outcome(ev: Evaluation, max_error_chars: int) -> str:
    if ev.ok and ev.timing:
        t = ev.timing
        text = f"median {t['median_ms']:.4g} ms (IQR {t.get('iqr_ms', 0):.2g} ms)"
        if ev.speedup:
            text += f", {ev.speedup:.3f}x the faster baseline"
        text += "".join(f"; note: {trim(n, 200)}" for n in ev.notes[:3])
        if ev.profile:
            text += "\ntop kernels (torch.profiler, device time per call): " + "; ".join(
                f"{trim(k['name'], 80)} {k['ms_per_call']:.4g} ms" for k in ev.profile)
        return text
    return trim(ev.reason, max_error_chars) or "no reason given"


def member(title: str, m: Member, max_error_chars: int, source_chars: int = 0) -> str:
    cand, ev = m
    source = cand.source.rstrip()
    if source_chars and len(source) > source_chars:
        source = source[:source_chars] + "\n# ... (trimmed)"
    timing = _outcome(ev, max_error_chars)
    if cand.params:
        timing += f"; measured with the tuned values {cand.params} (set as module constants after import)"
    return template("member").substitute(title=title, technique=cand.technique, status=ev.status,
                                         timing=timing, source=source)


def failures_shown(feedback: list[Member], limit: int) -> list[Member]:
    """The recent failures a prompt shows, each kind once; an endpoint failure says nothing about code."""
    shown, kinds = [], set()
    for c, e in feedback:
        if e.reason.startswith("endpoint:") or (c.technique, e.status, e.reason) in kinds:
            continue
        kinds.add((c.technique, e.status, e.reason))
        shown.append((c, e))
    return shown[:limit]


def failures(shown: list[Member], max_error_chars: int) -> str:
    if not shown:
        return "(none recorded)"
    return "".join(template("failure").substitute(technique=c.technique, status=e.status,
                                                  reason=trim(e.reason, max_error_chars)) for c, e in shown).rstrip()


def inspirations(ask: Ask, context: Context | None, limit: int) -> list[Member]:
    """The fittest archive members that are not the parents."""
    if context is None or limit <= 0:
        return []
    parents = {c.id for c, _ in ask.parents}
    return [m for m in context.elites if m[0].id not in parents][:limit]


def messages(problem: Problem, ask: Ask, context: Context | None, inspiring: list[Member],
             failed: list[Member], cfg: Any) -> list[dict[str, str]]:
    """The chat messages for one ask: mutation with one parent, crossover with two."""
    system = template("system").substitute(allowed_imports=", ".join(sorted(ALLOWED_IMPORTS - {"__future__"})))
    fields = {
        "hardware": hardware(context), "problem": problem.source.rstrip(),
        "parent": member("Parent A" if len(ask.parents) >= 2 else "Parent", ask.parents[0], cfg.max_error_chars),
        "failures": failures(failed, cfg.max_error_chars),
        "hints": "\n".join(f"- {h}" for h in (context.hints if context is not None else ())) or "(none)",
        "inspirations": "\n".join(member(f"Inspiration {i}", m, cfg.max_error_chars, _INSPIRATION_CHARS)
                                  for i, m in enumerate(inspiring, 1)) or "(none yet)",
    }
    if len(ask.parents) >= 2:
        fields["other"] = member("Parent B", ask.parents[1], cfg.max_error_chars)
        user = template("crossover").substitute(fields)
    else:
        user = template("mutate").substitute(fields)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
