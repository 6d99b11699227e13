"""Proposers: where drafts come from. `make_proposers` builds the ones a config names: a built-in
name ("rules"), or "package.module:Class" for a Proposer subclass of one's own."""
from __future__ import annotations

import importlib

from .base import Proposer, reference_candidate


def _resolve(name: str) -> type[Proposer]:
    from .rules import RulesProposer
    known: dict[str, type[Proposer]] = {"rules": RulesProposer}
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


def make_proposers(names: list[str], seed: int, device: str) -> list[Proposer]:
    return [_resolve(name)(seed=seed * 1000 + i, device=device) for i, name in enumerate(names)]


__all__ = ["Proposer", "make_proposers", "reference_candidate"]
