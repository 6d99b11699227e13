"""A candidate's tunable parameters: how a source declares them, how a choice of values is fixed in it.

A candidate declares `TUNABLE = {"NAME": [choices...]}` at module level, or `TUNABLE = "space"`: a
space registered by name (each Triton template registers its own, see proposers/templates) or a
file `space.yaml` in the spaces folder with the same mapping under `params:` and optional
`constraints:`, expressions over the names that every configuration must satisfy. The first value of
each list is the default. `bake` fixes a configuration in the source itself (a candidate evaluated
once, as it is); `space_of` still finds the space it was fixed from.

A candidate may also declare `SCREEN_FIRST = [{"NAME": value, ...}, ...]`: configurations, as changes
from its defaults, that its tuning screen tries right after the defaults (a template's measured
alternatives, an author's guesses), before the neighbours and the sampler's picks.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml

Space = tuple[dict[str, list[Any]], list[str]]  # (parameter -> choices, constraint expressions)

SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
_NAMED: dict[str, Space] = {}


class TunableError(ValueError):
    """A candidate's TUNABLE declaration is malformed."""


def register_space(name: str, params: dict[str, list[Any]], constraints: list[str] = ()) -> None:
    """Make `TUNABLE = "name"` resolve to this space (templates register theirs when imported)."""
    _NAMED[name] = (dict(params), list(constraints))


def named_space(name: str, spaces_dir: Path = SPACES_DIR) -> Space:
    """A registered space, else `spaces_dir/name.yaml`."""
    if name in _NAMED:
        params, constraints = _NAMED[name]
        return dict(params), list(constraints)
    path = spaces_dir / f"{name}.yaml"
    if not path.is_file():
        raise TunableError(f"TUNABLE names space {name!r}, but no template registers it and {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    constraints = list(data.pop("constraints", []) or [])
    return data.get("params", data), constraints


def parse_tunable(source: str, spaces_dir: Path = SPACES_DIR) -> Space:
    """The parameter space a source declares ({} when none) and its constraint expressions."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}, []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TUNABLE" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise TunableError(f"line {node.lineno}: TUNABLE must be a literal dict or a space name") from None
            constraints: list[str] = []
            if isinstance(value, str):
                value, constraints = named_space(value, spaces_dir)
            if not isinstance(value, dict) or not all(isinstance(v, list) and v for v in value.values()):
                raise TunableError(f"line {node.lineno}: TUNABLE must map names to non-empty lists of values")
            return value, constraints
    return {}, []


def parse_screen_first(source: str) -> list[dict[str, Any]]:
    """The configurations (changes from the defaults) a source's `SCREEN_FIRST` lists ([] when none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SCREEN_FIRST" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(c, dict) and all(isinstance(k, str) for k in c)
                                                      for c in value):
                raise TunableError(f"line {node.lineno}: SCREEN_FIRST must be a literal list of dicts of "
                                   "TUNABLE names to values")
            return value
    return []


def with_screen_first(source: str, configs: list[dict[str, Any]]) -> str:
    """The source with `SCREEN_FIRST = configs` on the line after its TUNABLE declaration (the
    source unchanged when there are none or it declares no TUNABLE)."""
    if not configs or not _TUNABLE_LINE.search(source):
        return source
    return _TUNABLE_LINE.sub(lambda m: f"{m.group(0)}\nSCREEN_FIRST = {configs!r}", source, count=1)


def screen_first(changes: list[dict[str, Any]], defaults: dict[str, Any], space: dict[str, list[Any]],
                 constraints: list[str], n: int) -> list[dict[str, Any]]:
    """Up to n configurations of `changes` (a SCREEN_FIRST's) made over `defaults`, in their order:
    those within the space and its constraints, other than the defaults and each other."""
    out: list[dict[str, Any]] = []
    for change in changes:
        params = applied(change, defaults, space, constraints)
        if len(out) < n and params is not None and params != defaults and params not in out:
            out.append(params)
    return out


def applied(change: dict[str, Any], params: dict[str, Any], space: dict[str, list[Any]],
            constraints: list[str]) -> dict[str, Any] | None:
    """`params` with `change` made, where its names and values are the space's and the result meets
    the constraints; else None."""
    moved = {**params, **change}
    ok = set(change) <= set(space) and all(moved[k] in space[k] for k in change) and satisfies(moved, constraints)
    return moved if ok else None


def satisfies(params: dict[str, Any], constraints: list[str]) -> bool:
    """Constraint expressions over the parameter names, e.g. `BLOCK_M * BLOCK_N <= 16384`."""
    for expr in constraints:
        if not eval(compile(expr, "<constraint>", "eval"), {"__builtins__": {}}, dict(params)):  # noqa: S307
            return False
    return True


def neighbours(params: dict[str, Any], space: dict[str, list[Any]], constraints: list[str], n: int) -> list[dict[str, Any]]:
    """Up to n configurations one value away from `params`: each parameter moved to its space's
    next value in turn (the second of every list, then the third, ...), those that break a
    constraint left out. A space lists the template's default first and its likelier alternatives
    next, so these are the configurations most often faster than the defaults (a template probe's
    winners are single changes), where random samples of a large space are mostly far slower."""
    out: list[dict[str, Any]] = []
    for rank in range(1, max((len(v) for v in space.values()), default=0)):
        for key, values in space.items():
            if len(out) >= n:
                return out
            # The rank-th value other than the current one (a ported candidate's may not be first).
            others = [v for v in values if v != params.get(key)]
            if rank <= len(others) and satisfies(moved := {**params, key: others[rank - 1]}, constraints):
                out.append(moved)
    return out


def first_screen(changes: list[dict[str, Any]], defaults: dict[str, Any], space: dict[str, list[Any]],
                 constraints: list[str], screen: int) -> list[dict[str, Any]]:
    """What a draft's first screen of `screen` configurations tries after its defaults: half of it
    their neighbours (one value away), half the sampler's picks; the draft's SCREEN_FIRST `changes`
    come first, in the sampler's half. On the H200 suite's first drafts neither neighbours nor
    samples alone found the faster configurations every time (experiments/RESULTS.md, 2026-12-01)."""
    k = (screen - 1) // 2
    first = screen_first(changes, defaults, space, constraints, screen - 1 - k) if k else []
    return first + [p for p in neighbours(defaults, space, constraints, k) if p not in first]


_TUNABLE_LINE = re.compile(r"^TUNABLE = (.+)$", re.M)
_FIXED_LINE = re.compile(r"^# TUNABLE \(fixed by the search\): (.+)$", re.M)
_BAKED = "# Values chosen by the search.\n"


def bake(source: str, params: dict[str, Any]) -> str:
    """The source with `params` as its values and its TUNABLE turned into a comment (kept, so that a
    later mutation knows the space): a candidate evaluated once, as it is."""
    source = _TUNABLE_LINE.sub(lambda m: f"# TUNABLE (fixed by the search): {m.group(1)}", source)
    params = {**baked_params(source), **params}
    marker = "\n\n" + _BAKED
    if marker in source:  # drop the old block (up to its first blank line), keep code layered after it
        head, tail = source.split(marker, 1)
        rest = tail.split("\n")
        while rest and rest[0].strip():
            rest.pop(0)
        layered = "\n".join(rest).strip("\n")
        source = head + ("\n\n\n" + layered if layered else "")
    if params:
        source = source.rstrip() + "\n\n" + _BAKED + "".join(f"{k} = {v!r}\n" for k, v in sorted(params.items()))
    return source


def baked_params(source: str) -> dict[str, Any]:
    """The values `bake` fixed in a source (empty when none)."""
    if _BAKED not in source:
        return {}
    out: dict[str, Any] = {}
    for line in source.split(_BAKED, 1)[1].splitlines():
        if not line.strip():
            break  # the block ends at its first blank line (code layered on top follows)
        name, sep, value = line.partition(" = ")
        if sep and name.isidentifier():
            try:
                out[name] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass
    return out


def space_of(source: str, spaces_dir: Path = SPACES_DIR) -> Space:
    """The tunable space a source declares, or declared before `bake` fixed it ({} when none or invalid)."""
    fixed = _FIXED_LINE.search(source)
    text = f"TUNABLE = {fixed.group(1)}\n" if fixed else source
    try:
        return parse_tunable(text, spaces_dir)
    except TunableError:
        return {}, []


def values_of(source: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every tunable value a candidate runs with: fixed in its source, then set by the tuner."""
    return {**baked_params(source), **params}
