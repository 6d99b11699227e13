"""The LLM proposer: mutation and crossover written by chat models behind any OpenAI-compatible endpoint.

For each ask the bandit picks a model, the prompt shows the hardware, the problem, the parent(s) with
their timings, the island's recent failures and a few elites, and the answer (a whole module or
SEARCH/REPLACE edits to the parent) becomes a draft. An answer that holds no usable code, or an ask
the endpoint never answered, becomes a draft marked with `reject`, which the search records as
`proposal_error` without running it. Everything the model writes goes through the same policy,
sandbox and verification as any other draft.

Answers are cached by request (llm_endpoint.Cache), so a run replays without the network. The key is
a hash of what is asked, not of the prompt's text: the model and its sampling settings, the
templates, the problem, the candidates shown (by content hash) and how many times that question was
asked before. The measured figures in the prompt are left out of the key because they vary from one
run to the next; a re-run with the same seed asks the same questions and gets the cached answers.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...model.candidate import Candidate
from ...config import LLMConfig
from ...model.problem import Problem
from . import prompts as prompts
from ..base import Ask, Context, Proposer
from .bandit import Bandit
from .endpoint import Answer, Cache, Endpoint, request_key
from .parse import Unusable, extract_source

_MAX_KEPT_ANSWER = 100_000  # characters of an unusable answer kept in the store


@dataclass
class _Job:
    ask: int
    model: str
    key: str
    body: dict[str, Any]
    base: Candidate  # what SEARCH/REPLACE edits apply to: the first parent
    parents: tuple[str, ...]
    generation: int
    parent_speedup: float


def _usage() -> dict[str, Any]:
    return {"requests": 0, "cached": 0, "failed_attempts": 0, "failures": 0, "unusable": 0,
            "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "improved": 0}


class LLMProposer(Proposer):
    name = "llm"

    def __init__(self, seed: int = 0, device: str = "cpu", llm: LLMConfig | None = None,
                 run_dir: str | Path | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(seed, device)
        if llm is None or not llm.models:
            raise ValueError("the llm proposer needs at least one model (llm.models in the config, or --llm MODEL)")
        self.cfg = llm
        self.cache_dir = Path(llm.cache_dir) if llm.cache_dir else Path(run_dir or ".") / "llm-cache"
        cache = Cache(self.cache_dir)
        self.models = {m.name: m for m in llm.models}
        self.endpoints = {m.name: Endpoint(m, llm, cache, sleep) for m in llm.models}
        self.bandit = Bandit({m.name: m.weight for m in llm.models}, llm.exploration)
        self.usage = {m.name: _usage() for m in llm.models}
        self.pending: dict[str, list[Any]] = {}  # candidate id -> [model, parent speedup], until evaluated
        self.asked: dict[str, int] = {}  # question hash -> times asked: the sample number in the key
        self.context: Context | None = None

    # -- the Proposer interface -------------------------------------------------------------------
    def observe(self, context: Context) -> None:
        """Keep the context for prompts; credit each model with its evaluated candidates' improvement."""
        self.context = context
        for cid in [c for c in self.pending if c in context.results]:
            model, base = self.pending.pop(cid)
            ev = context.results[cid]
            gain = (ev.speedup / base - 1.0) if ev.ok and ev.speedup and base else 0.0
            if model in self.models:
                self.bandit.rewarded(model, gain)
                self.usage[model]["improved"] += int(gain > 0)

    def propose(self, problem: Problem, parents: list, feedback: list, n: int) -> list[Candidate]:
        return self.propose_many(problem, [Ask(parents, feedback, n)])[0]

    def propose_many(self, problem: Problem, asks: list[Ask]) -> list[list[Candidate]]:
        jobs = [self._job(problem, i, ask) for i, ask in enumerate(asks) for _ in range(ask.n)]
        out: list[list[Candidate]] = [[] for _ in asks]
        for job, answer in zip(jobs, self._fetch(jobs)):
            out[job.ask].append(self._draft(job, answer))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "bandit": self.bandit.state_dict(), "usage": self.usage,
                "pending": self.pending, "asked": self.asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.bandit.load_state_dict(state.get("bandit", {}))
        for name, usage in state.get("usage", {}).items():
            if name in self.usage:
                self.usage[name] = {**_usage(), **usage}
        self.pending = {k: list(v) for k, v in state.get("pending", {}).items()}
        self.asked = dict(state.get("asked", {}))

    def report(self) -> dict[str, Any]:
        models = {n: {**u, "cost_usd": round(u["cost_usd"], 6)} for n, u in self.usage.items()}
        total = {k: sum(u[k] for u in self.usage.values()) for k in ("requests", "cached", "failures",
                                                                     "prompt_tokens", "completion_tokens")}
        return {**total, "cost_usd": round(sum(u["cost_usd"] for u in self.usage.values()), 6),
                "models": models, "bandit": self.bandit.state_dict(), "cache_dir": str(self.cache_dir)}

    # -- one ask ----------------------------------------------------------------------------------
    def _job(self, problem: Problem, index: int, ask: Ask) -> _Job:
        name = self.bandit.choose()
        model, ctx = self.models[name], self.context
        inspiring = prompts.inspirations(ask, ctx, self.cfg.inspirations)
        failed = prompts.failures_shown(ask.feedback, self.cfg.failures)
        messages = prompts.messages(problem, ask, ctx, inspiring, failed, self.cfg)
        device = ((ctx.baselines.get("device_info") or {}).get("name", "") if ctx else "") or self.device
        question = {"v": 1, "model": name, "temperature": model.temperature, "max_tokens": model.max_tokens,
                    "templates": prompts.templates_digest(), "problem": problem.digest, "device": device,
                    "parents": [c.id for c, _ in ask.parents], "inspirations": [c.id for c, _ in inspiring],
                    "failures": [c.id for c, _ in failed], "limits": [self.cfg.max_error_chars],
                    "hints": list(ctx.hints) if ctx else []}
        asked = request_key(question)
        sample = self.asked.get(asked, 0)
        self.asked[asked] = sample + 1
        key = request_key({**question, "sample": sample})
        body = self.endpoints[name].request(messages, seed=int(key[:8], 16))
        speedups = [ev.speedup for _, ev in ask.parents if ev.ok and ev.speedup]
        return _Job(ask=index, model=name, key=key, body=body, base=ask.parents[0][0],
                    parents=tuple(c.id for c, _ in ask.parents),
                    generation=max(c.generation for c, _ in ask.parents) + 1,
                    parent_speedup=max(speedups, default=1.0))

    def _fetch(self, jobs: list[_Job]) -> list[Answer]:
        """Every job's answer, in the jobs' order; up to `concurrency` requests per model at once."""
        by_model: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            by_model.setdefault(job.model, []).append(i)
        answers: list[Answer] = [Answer() for _ in jobs]
        pools = {m: ThreadPoolExecutor(max_workers=min(self.models[m].concurrency, len(ix)),
                                       thread_name_prefix=f"llm-{m}") for m, ix in by_model.items()}
        try:
            futures = {i: pools[jobs[i].model].submit(self.endpoints[jobs[i].model].ask, jobs[i].key, jobs[i].body)
                       for ix in by_model.values() for i in ix}
            for i, future in futures.items():
                try:
                    answers[i] = future.result()
                except Exception as e:  # noqa: BLE001 - a bug here must not stop the search either
                    answers[i] = Answer(error=f"internal: {type(e).__name__}: {e}")
        finally:
            for pool in pools.values():
                pool.shutdown(wait=True)
        return answers

    def _draft(self, job: _Job, answer: Answer) -> Candidate:
        usage, model = self.usage[job.model], self.models[job.model]
        usage["failed_attempts"] += len(answer.failed_attempts)
        if answer.error:
            usage["failures"] += 1
            source = f"# LLM request {job.key} to {job.model} got no answer: {answer.error}\n"
            return self.reject(self._candidate(job, source), f"endpoint: {answer.error}")
        tokens = answer.prompt_tokens + answer.completion_tokens
        dollars = (answer.prompt_tokens * model.price_prompt + answer.completion_tokens * model.price_completion) / 1e6
        self.bandit.paid(job.model, dollars, tokens)  # cached or not, so a replay chooses the same models
        if answer.cached:
            usage["cached"] += 1
        else:
            usage["requests"] += 1
            usage["prompt_tokens"] += answer.prompt_tokens
            usage["completion_tokens"] += answer.completion_tokens
            usage["cost_usd"] += dollars
        try:
            source, _ = extract_source(answer.text, job.base.source, truncated=answer.finish_reason == "length")
        except Unusable as e:
            usage["unusable"] += 1
            kept = f"# LLM answer {job.key} from {job.model}, not usable: {e}\n{answer.text[:_MAX_KEPT_ANSWER]}"
            return self.reject(self._candidate(job, kept), f"unusable answer: {e}")
        cand = self._candidate(job, source)
        self.pending[cand.id] = [job.model, job.parent_speedup]
        return cand

    def _candidate(self, job: _Job, source: str) -> Candidate:
        return Candidate(source=source, parents=job.parents, proposer=self.name, technique="llm",
                         generation=job.generation)
