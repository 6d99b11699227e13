"""The accuracy contract: a candidate may be no less accurate than what the user runs.

Both the candidate's output and eager's (the reference as run, under the run's precision flags) are
measured against a float64 oracle (the reference on float64 weights and inputs). On each trial the
candidate's error may be at most max(floor, m x eager's), for each of three measures:

- `norm`: ||x - o|| / ||o|| over the whole tensor;
- `q999` and `max`: the 99.9th percentile and the largest of |x_i - o_i| / (|o_i| + rms(o)), each
  element's error scaled by the oracle's magnitude there, or by the tensor's typical magnitude
  where the oracle is near zero (so a cancellation does not count as a huge relative error).

m (`verify.accuracy_factor`, default 2) is how PyTorch's compiler judges its own output against a
float64 reference; the floor (`verify.floors`, per dtype) is the error no one would tell from
rounding. It is the norm's; the 99.9th percentile and the max are tails of the same errors, and
their floor is ELEMENTWISE_FLOOR times it: an honest reordering (a row of 512 summed as a
matrix-vector product rather than pairwise) puts a few elements at ~10 ulp while its norm stays at
eager's, and a 1e-6 tail floor rejected it on some draws of the weights. Exact dtypes (integers, booleans) count differing elements instead: at most m x eager's.
Everything is computed in chunks, in float64, so a large output needs no full-size temporaries.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

_CHUNK = 1 << 22  # elements per chunk
_SAMPLE = 1 << 20  # elements the quantile is taken over (the same positions for candidate and eager)


@dataclass
class Errors:
    norm: float = 0.0
    q999: float = 0.0
    max: float = 0.0
    mismatches: int = 0  # exact dtypes: elements that differ from the oracle's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def worst(self, other: "Errors") -> "Errors":
        return Errors(max(self.norm, other.norm), max(self.q999, other.q999), max(self.max, other.max),
                      max(self.mismatches, other.mismatches))


def _chunks(n: int):
    for start in range(0, n, _CHUNK):
        yield start, min(n, start + _CHUNK)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.detach().reshape(-1)


def _finite_mask(ref: torch.Tensor, oracle: torch.Tensor) -> torch.Tensor | None:
    """Where both are finite (None: everywhere), as a flat bool tensor on ref's device."""
    if not ref.is_floating_point() and not ref.is_complex():
        return None
    r, o = _flat(ref), _flat(oracle).to(ref.device)
    ok = torch.isfinite(r) & torch.isfinite(o)
    return None if bool(ok.all()) else ok


def measure(x: torch.Tensor, oracle: torch.Tensor, mask: torch.Tensor | None, sample: torch.Tensor | None) -> Errors:
    """Errors of `x` against the oracle over `mask` (flat positions where both references are finite)."""
    xf, of = _flat(x), _flat(oracle)
    if not (x.is_floating_point() or x.is_complex()):
        diff = 0
        for a, b in _chunks(xf.numel()):
            diff += int((xf[a:b].to(of.device) != of[a:b]).sum())
        return Errors(mismatches=diff)
    sq_o = sq_d = 0.0
    count = 0
    for a, b in _chunks(xf.numel()):
        o = of[a:b].to(torch.float64)
        d = xf[a:b].to(o.device, torch.float64) - o
        if mask is not None:
            keep = mask[a:b].to(o.device)
            o, d = o[keep], d[keep]
        sq_o += float((o.abs() ** 2).sum())
        sq_d += float((d.abs() ** 2).sum())
        count += o.numel()
    if count == 0:
        return Errors()
    norm_o = math.sqrt(sq_o)
    norm = math.sqrt(sq_d) / norm_o if norm_o > 0 else (0.0 if sq_d == 0 else math.inf)
    rms = norm_o / math.sqrt(count)
    tiny = torch.finfo(torch.float32).tiny
    largest = 0.0
    for a, b in _chunks(xf.numel()):
        o = of[a:b].to(torch.float64)
        e = (xf[a:b].to(o.device, torch.float64) - o).abs() / (o.abs() + rms + tiny)
        if mask is not None:
            e = e[mask[a:b].to(o.device)]
        if e.numel():
            largest = max(largest, float(e.max()))
    q = 0.0
    if sample is not None and sample.numel():
        idx = sample.to(of.device)
        o = of[idx].to(torch.float64)
        e = (xf[idx.to(xf.device)].to(o.device, torch.float64) - o).abs() / (o.abs() + rms + tiny)
        q = float(torch.quantile(e, 0.999)) if e.numel() > 1 else float(e.max())
    return Errors(norm, q, largest)


def sample_positions(n: int, mask: torch.Tensor | None, seed: int) -> torch.Tensor:
    """Up to _SAMPLE flat positions (where the mask holds) to take the quantile over."""
    g = torch.Generator().manual_seed(seed)
    if mask is None:
        if n <= _SAMPLE:
            return torch.arange(n)
        return torch.randint(0, n, (_SAMPLE,), generator=g)
    where = torch.nonzero(mask.cpu()).reshape(-1)
    if where.numel() <= _SAMPLE:
        return where
    return where[torch.randint(0, where.numel(), (_SAMPLE,), generator=g)]


def floor_for(dtype: torch.dtype, floors: dict[str, float]) -> float:
    name = str(dtype).replace("torch.", "")
    return float(floors.get(name, floors.get("float32", 1e-6)))


ELEMENTWISE_FLOOR = 10.0  # the tails' floor (q999, max) over the norm's


def _floor(measure: str, floor: float) -> float:
    return floor if measure == "norm" else floor * ELEMENTWISE_FLOOR


def bound(baseline: Errors, floor: float, factor: float) -> Errors:
    return Errors(max(floor, factor * baseline.norm), max(_floor("q999", floor), factor * baseline.q999),
                  max(_floor("max", floor), factor * baseline.max), int(factor * baseline.mismatches))


def violation(cand: Errors, base: Errors, limit: Errors, factor: float, floor: float) -> str | None:
    """Which measure the candidate fails, in words; None when it keeps the contract."""
    if cand.mismatches > limit.mismatches:
        return (f"{cand.mismatches} elements differ from the float64 oracle's, eager's {base.mismatches} "
                f"(at most {factor:g} x eager's)")
    for name, words in (("norm", "relative error norm"), ("q999", "99.9th-percentile scaled error"),
                        ("max", "largest scaled error")):
        c, b, lim = getattr(cand, name), getattr(base, name), getattr(limit, name)
        if not c <= lim:  # NaN fails too
            return (f"{words} {c:.3g} against the float64 oracle, above the bound {lim:.3g} = "
                    f"max(floor {_floor(name, floor):.3g}, {factor:g} x eager's {b:.3g})")
    return None


def compare(got: torch.Tensor, ref: torch.Tensor, oracle: torch.Tensor, seed: int) -> dict[str, Errors]:
    """The candidate's (`got`) and eager's (`ref`) errors against the oracle, at the same positions."""
    mask = _finite_mask(ref, oracle)
    sample = sample_positions(ref.numel(), mask, seed)
    return {"candidate": measure(got, oracle, mask, sample), "baseline": measure(ref, oracle, mask, sample)}


def verdict(errors: dict[str, Errors], floor: float, factor: float) -> str | None:
    """Why errors from `compare` break the contract, in words; None when they keep it."""
    limit = bound(errors["baseline"], floor, factor)
    return violation(errors["candidate"], errors["baseline"], limit, factor, floor)
