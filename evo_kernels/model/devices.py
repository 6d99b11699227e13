"""The kinds of device evaluations run on: the one registry the config, the cluster, the proposers and
the harness read (harness/backends maps each kind to its Backend class).

A device string is a kind, optionally with an index (`cuda:1`), or `auto` (the best kind present).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceKind:
    name: str
    per_gpu: bool  # one evaluator per GPU (Ray's GPU resource); else one per host
    indexed: bool  # takes `:N`
    triton: bool  # Triton kernels run there (the template rules apply)
    poisons_context: bool  # a device error can leave the process's context unusable (replace the worker)
    host_clock: bool  # the device clock is the host's (no lead-in to hide work in, no device timer)
    auto_rank: int  # `auto` picks the present kind of lowest rank


GPU_KIND = "cuda"  # the kind of an evaluator Ray gives one GPU (CUDA_VISIBLE_DEVICES names it)
KINDS: dict[str, DeviceKind] = {k.name: k for k in (
    DeviceKind("cuda", per_gpu=True, indexed=True, triton=True, poisons_context=True, host_clock=False, auto_rank=0),
    DeviceKind("mps", per_gpu=False, indexed=False, triton=False, poisons_context=False, host_clock=False, auto_rank=1),
    DeviceKind("cpu", per_gpu=False, indexed=False, triton=False, poisons_context=False, host_clock=True, auto_rank=2),
)}


def choices() -> str:
    """The device strings there are, in words: "auto, cpu, cuda, cuda:N or mps"."""
    names = ["auto"] + [s for n in sorted(KINDS) for s in ([n, f"{n}:N"] if KINDS[n].indexed else [n])]
    return ", ".join(names[:-1]) + " or " + names[-1]


def kind(device: str) -> DeviceKind:
    """The kind of a device string (`cuda:1` -> cuda); ValueError naming the known kinds otherwise."""
    name, _, index = device.partition(":")
    k = KINDS.get(name)
    if k is None or (index and not (k.indexed and index.isdigit())):
        raise ValueError(f"unknown device {device!r}; expected {choices()}")
    return k


def valid(device: str) -> bool:
    if device == "auto":
        return True
    try:
        kind(device)
    except ValueError:
        return False
    return True


def units_words(units: dict[str, str]) -> str:
    """The units a roofline's products are bounded by, for a table: 'tf32 conv, tf32x3 matmul'; '-'
    when the problem counts no products (its bound is bytes alone)."""
    return ", ".join(f"{unit} {family}" for family, unit in sorted(units.items())) or "-"
