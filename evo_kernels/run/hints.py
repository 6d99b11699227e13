"""Guidance in words for a running search: `evo-kernels hint RUN_DIR TEXT` appends to the run's
hints file, which the search reads at every generation (no restart)."""
from __future__ import annotations

from pathlib import Path

from ..store import STORE_FILE


class HintError(ValueError):
    pass


HINTS_FILE = "hints.txt"


def add_hint(run_dir: Path, text: str) -> None:
    """Append guidance to a (possibly running) run; the search reads it at its next generation."""
    if not (run_dir / STORE_FILE).exists():
        raise HintError(f"{run_dir}: no run here (no {STORE_FILE})")
    text = " ".join(text.split())
    if not text:
        raise HintError("an empty hint")
    with open(run_dir / HINTS_FILE, "a") as f:
        f.write(text + "\n")


def read_hints(run_dir: Path) -> list[str]:
    path = run_dir / HINTS_FILE
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
