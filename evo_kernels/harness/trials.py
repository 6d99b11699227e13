"""The verification trials: what each one runs the models on, made the same way in both sandbox
processes from a few numbers, so the judge and the candidate's process agree without sending
tensors.

A trial names its inputs (`get_inputs()` under a seed, then optionally widened: scaled, shifted or
heavy-tailed), its weights (as built, or fresh values drawn from a seed for every floating parameter
and buffer, scaled like a trained model's), its mode (training or eval) and whether autograd is on.
The plan mixes them so that a candidate right only at the initial weights, only on `get_inputs()`'s
distribution, only in one mode or only under `no_grad` fails some trial. A problem file may narrow
the inputs with `INPUT_DOMAIN` (see `allowed_inputs`).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

# Input distributions beyond get_inputs()'s own; each maps floating inputs x -> a new tensor.
WIDENED = ("scale10", "scale100", "shift", "heavy")


@dataclass(frozen=True)
class Trial:
    index: int
    seed: int  # get_inputs() runs under this seed (drawn from the OS's randomness per evaluation)
    mode: str  # "train" or "eval"
    grad: bool  # autograd on during the call
    weights: int | None  # None: the weights as built; else a seed for fresh weights and buffers
    inputs: str = "standard"  # or one of WIDENED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Trial":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        return (f"trial {self.index} ({self.mode}, {'autograd' if self.grad else 'no_grad'}, "
                f"{'weights as built' if self.weights is None else 'fresh weights'}, {self.inputs} inputs)")


def allowed_inputs(problem_module: Any) -> tuple[str, ...]:
    """The widened distributions a problem allows: all by default; `INPUT_DOMAIN = "standard"` for
    get_inputs()'s own only; or a list of names from WIDENED."""
    domain = getattr(problem_module, "INPUT_DOMAIN", None)
    if domain is None:
        return WIDENED
    if domain == "standard":
        return ()
    if isinstance(domain, (list, tuple)) and all(d in WIDENED for d in domain):
        return tuple(domain)
    raise ValueError(f"INPUT_DOMAIN must be 'standard' or a list of {list(WIDENED)}, got {domain!r}")


def plan(n: int, rng: random.Random, modes: list[str], widened: tuple[str, ...]) -> list[Trial]:
    """`n` trials: the first at the weights as built on standard inputs in the first mode, then the
    others cycling through the modes, autograd on every third, fresh weights from the third on and
    widened inputs on every other one after that (where the problem allows them)."""
    trials = []
    for i in range(n):
        mode = modes[i % len(modes)]
        weights = rng.getrandbits(31) if i >= 2 else None
        inputs = "standard"
        if widened and i >= 3 and i % 2 == 1:
            inputs = widened[(i // 2 - 1) % len(widened)]
        trials.append(Trial(i, rng.getrandbits(31), mode, grad=(i % 3 == 2), weights=weights, inputs=inputs))
    return trials


def _generator(device: torch.device | str, seed: int) -> torch.Generator:
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(seed)
    return g


def widen(inputs: list[Any], how: str, seed: int) -> list[Any]:
    """The floating tensors of `inputs` under a widened distribution (others as they are)."""
    if how == "standard":
        return inputs
    out = []
    for i, x in enumerate(inputs):
        if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel()):
            out.append(x)
            continue
        if how == "scale10":
            y = x * 10.0
        elif how == "scale100":
            y = x * 100.0
        elif how == "shift":
            spread = float(x.float().std()) if x.numel() > 1 else 1.0
            y = x + 3.0 * (spread if spread > 0 else 1.0)
        elif how == "heavy":
            g = _generator(x.device, seed + i)
            y = x * torch.exp(torch.randn(x.shape, generator=g, device=x.device, dtype=torch.float32)).to(x.dtype)
        else:
            raise ValueError(f"unknown input distribution {how!r}")
        out.append(y.to(x.dtype))
    return out


def make_inputs(problem: Any, trial: Trial, device: str | torch.device) -> list[Any]:
    return widen(problem.make_inputs(trial.seed, device), trial.inputs, trial.seed)


@torch.no_grad()
def fresh_weights(model: nn.Module, seed: int, pristine: dict[str, torch.Tensor] | None = None) -> None:
    """Give every floating parameter and buffer new values drawn from `seed`, scaled like a trained
    model's: a tensor initialised to one value (a norm's weight 1 or bias 0, a layer scale 1e-6)
    spreads around it by about 0.5 or its size; any other is drawn like a fan-in-scaled initialiser
    (standard deviation 1/sqrt(fan in)). Running variances stay positive; integer buffers
    (num_batches_tracked) go back to their values as built. The values depend on the
    seed, the names and shapes and the `pristine` values (the model as built, before any call changed
    its buffers; its own current values when not given): the same model class and the same pristine
    state give the same ones in any process."""
    g = None
    for name, t in nn.Module.state_dict(model, keep_vars=True).items():
        if not (isinstance(t, torch.Tensor) and t.numel()):
            continue
        if not t.is_floating_point():  # counters (num_batches_tracked): back to their value as built
            if pristine is not None and name in pristine:
                t.data.copy_(pristine[name])
            continue
        if g is None:
            g = _generator(t.device, seed)
        noise = torch.randn(t.shape, generator=g, device=t.device, dtype=torch.float32)
        base = pristine[name] if pristine is not None and name in pristine else t
        flat = base.detach().reshape(-1).float().to(t.device)
        first = flat[0]
        if name.endswith("running_var"):
            new = 0.5 + torch.rand(t.shape, generator=g, device=t.device, dtype=torch.float32)
        elif bool((flat == first).all()):
            c = float(first)
            new = c + max(abs(c), 0.5) * 0.5 * noise
        else:
            fan_in = t[0].numel() if t.dim() > 1 else t.numel()
            new = noise / max(fan_in, 1) ** 0.5
        t.data.copy_(new.to(t.dtype))
