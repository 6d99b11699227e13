"""Proposers: where drafts come from. `make_proposers` builds the ones a config names: a built-in
name ("rules", "llm"), or "package.module:Class" for a Proposer subclass of one's own."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from .base import Ask, Context, Proposer, reference_candidate

if TYPE_CHECKING:
    from ..config import Config


def _resolve(name: str) -> type[Proposer]:
    from .llm.proposer import LLMProposer
    from .rules import RulesProposer
    known: dict[str, type[Proposer]] = {"rules": RulesProposer, "llm": LLMProposer}
    if name in known:
        return known[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"proposer {name!r} could not be imported: {e}") from None
        if not (isinstance(cls, type) and issubclass(cls, Proposer)):
            raise ValueError(f"proposer {name!r} is not a subclass of evo_kernels.proposers.Proposer")
        return cls
    raise ValueError(f"unknown proposer {name!r}; known: {sorted(known)} or 'package.module:Class'")


def make_proposers(names: list[str], seed: int, device: str, cfg: "Config | None" = None,
                   run_dir: str | Path | None = None) -> list[Proposer]:
    """The LLM proposer also takes the config's `llm` section and the run dir (its answer cache)."""
    out = []
    for i, name in enumerate(names):
        cls, kwargs = _resolve(name), {"seed": seed * 1000 + i, "device": device}
        if name == "llm":
            kwargs.update(llm=cfg.llm if cfg is not None else None, run_dir=run_dir)
        out.append(cls(**kwargs))
    return out


__all__ = ["Ask", "Context", "Proposer", "make_proposers", "reference_candidate"]
