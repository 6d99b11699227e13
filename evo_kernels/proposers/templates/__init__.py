"""The Triton templates: one file each, registered here by one line.

Order matters: anchor patterns are tried in this order on each node of a traced forward, a chain goes
to the first chain template that claims it, and the spaces' defaults are merged in this order into
every template candidate (each candidate carries every launch constant, so any template can follow
any other).
"""
from __future__ import annotations

from ...model.tunables import register_space
from .ir import Op
from . import attention, conv, conv3d, conv_transpose, cross_entropy, depthwise, elementwise, gemm, pool, pool_window, reduce, rowwise, scan
from .base import AnchorTemplate, ChainTemplate, Emitted, Lowered, TritonTemplate
from .helpers import HELPERS

TEMPLATES: list[TritonTemplate] = [
    gemm.TEMPLATE,
    conv.TEMPLATE,
    conv3d.TEMPLATE,  # Conv3d: the conv template's implicit GEMM over one more dimension
    depthwise.TEMPLATE,  # convolutions with groups == channels: no GEMM
    conv_transpose.TEMPLATE,  # transposed convolutions: a GEMM per output phase
    attention.TEMPLATE,  # scaled_dot_product_attention (hand-written attention through the sdpa rule)
    reduce.TEMPLATE,  # reductions and norms a row template cannot hold
    cross_entropy.TEMPLATE,
    scan.TEMPLATE,  # cumulative sums
    pool_window.TEMPLATE,  # a chain with a 2-D pooling at row stride 1 (a sliding window)
    pool.TEMPLATE,  # a chain with any other pooling, whatever else it holds
    rowwise.TEMPLATE,  # a chain with a row reduction
    elementwise.TEMPLATE,  # any other chain
]

BY_NAME = {t.name: t for t in TEMPLATES}
ANCHORS = [t for t in TEMPLATES if isinstance(t, AnchorTemplate)]
CHAINS = [t for t in TEMPLATES if isinstance(t, ChainTemplate)]
for _t in TEMPLATES:
    if _t.params:
        register_space(_t.name, _t.params, _t.constraints)


def lower_chain(name: str, ops: list[Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
                split: str = "1") -> Lowered | None:
    """One kernel for `ops` on the tensor named `y`, by the first chain template that claims them."""
    for t in CHAINS:
        if t.claims(ops):
            lowered = t.lower(name, ops, kinds, y, full_shape, split)
            return None if lowered is None else lowered._replace(space=t.space_name)
    return None


def defaults() -> dict[str, list]:
    """Every tunable any template reads, with its choices (the first is the default), merged in order."""
    merged: dict[str, list] = {}
    for t in TEMPLATES:
        merged.update(t.params)
    return merged


def seed_params(flags: dict) -> dict[str, object]:
    """The values a template draft starts from under the precision switches its baselines ran with
    (`flags`): every template's seeds for the switches that are on."""
    out: dict[str, object] = {}
    for t in TEMPLATES:
        for switch, values in t.seeds.items():
            if flags.get(switch):
                out.update(values)
    return out


def seed_alternatives(flags: dict) -> list[dict[str, object]]:
    """The configurations (changes from the seeds) a template draft's screen tries first under the
    precision switches that are on (`flags`), every template's in order."""
    return [dict(alt) for t in TEMPLATES for switch, alts in t.alternatives.items() if flags.get(switch)
            for alt in alts]


__all__ = ["ANCHORS", "BY_NAME", "CHAINS", "HELPERS", "TEMPLATES", "AnchorTemplate", "ChainTemplate", "Emitted",
           "Lowered", "TritonTemplate", "defaults", "lower_chain", "seed_alternatives", "seed_params"]
