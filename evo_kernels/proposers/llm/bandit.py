"""Which model answers the next ask: UCB1 over improvement per cost, weighted by the config's priors.

An arm's value is the improvement its candidates brought (sum over its candidates of how much faster
each is than its parent, relative, when it is) per unit of cost (dollars, plus a small charge per
token so a free local model is cheap but not free). Values are scaled by the best arm's, so the
exploration bonus sqrt(2 ln N / n) is on the same scale whatever the currency. Pure and
deterministic: ties go to the model listed first.
"""
from __future__ import annotations

import math
from typing import Any

TOKEN_COST = 1e-8  # dollars per token charged on top of the price: a GPU-hour is not free either


class Bandit:
    def __init__(self, weights: dict[str, float], exploration: float = 1.0) -> None:
        self.weights = dict(weights)
        self.exploration = exploration
        self.arms = {name: {"pulls": 0, "cost": 0.0, "gain": 0.0} for name in weights}

    def choose(self) -> str:
        """The arm to pull next; the pull is counted now, so concurrent asks spread over the arms."""
        fresh = [n for n, a in self.arms.items() if a["pulls"] == 0]
        if fresh:
            name = max(fresh, key=lambda n: self.weights[n])  # max keeps the first of equals
        else:
            values = {n: a["gain"] / max(a["cost"], 1e-12) for n, a in self.arms.items()}
            top = max(values.values()) or 1.0
            total = sum(a["pulls"] for a in self.arms.values())
            name = max(self.arms, key=lambda n: self.weights[n] * (
                values[n] / top + self.exploration * math.sqrt(2 * math.log(total) / self.arms[n]["pulls"])))
        self.arms[name]["pulls"] += 1
        return name

    def paid(self, name: str, dollars: float, tokens: int) -> None:
        self.arms[name]["cost"] += dollars + TOKEN_COST * tokens

    def rewarded(self, name: str, gain: float) -> None:
        self.arms[name]["gain"] += max(0.0, gain)

    def state_dict(self) -> dict[str, Any]:
        return {n: dict(a) for n, a in self.arms.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, arm in state.items():
            if name in self.arms:  # a model dropped from the config is forgotten
                self.arms[name] = dict(arm)
