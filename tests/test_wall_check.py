"""The wall-clock cross-check is taken over all of a candidate's measurements together: one short
confirmation round of nine that an honest host-heavy call trips on the host's noise does not hold it;
work hidden from the timer, in every round, does. Stand-in workers: the rounds' timings are given."""
import contextlib
import random

import pytest

from evo_kernels.config import Config
from evo_kernels.harness import verify
from evo_kernels.harness.timing import hidden_work_reason, pooled_medians
from evo_kernels.model.candidate import Candidate


def _timing(device_ms: float, wall_ms: float) -> dict:
    return {"median_ms": device_ms, "wall_median_ms": wall_ms, "host_median_ms": 0.3, "iqr_ms": 0.0,
            "mean_ms": device_ms, "min_ms": device_ms, "reps": 10}


class _Worker:
    def paused(self):
        return contextlib.nullcontext()

    def alive(self) -> bool:
        return False


@pytest.fixture
def rounds(monkeypatch):
    """Drives verify's timing with the given candidate timings; baselines read 1 ms."""
    given: list[dict] = []
    monkeypatch.setattr(verify, "_load_and_verify", lambda *a: None)
    monkeypatch.setattr(verify, "_time_round", lambda judge, defendant, cfg, deadline: {"timing": given.pop(0)})
    monkeypatch.setattr(verify, "_ask", lambda worker, msg, deadline, who: {"timing": {"median_ms": 1.0}, "profile": []})
    return given


def _confirm(n: int):
    return verify.confirm(_Worker(), _Worker(), "p", Candidate(source=""), Config(), random.Random(0), n, ["eager"])


def test_one_round_over_the_limit_does_not_hold_an_honest_candidate(rounds):
    # 0.36 ms on the device: the limit is 1.5 x 0.36 + 0.1 = 0.64 ms; one round's wall is over it
    rounds += [_timing(0.36, 0.55)] * 8 + [_timing(0.36, 0.66)]
    verdict, rows = _confirm(9)
    assert verdict.status == "ok", verdict.reason
    assert len(rows) == 9 and rows[0]["candidate"] == 0.36
    # the rounds' medians as the check read them, kept with the confirmation
    assert verdict.timing["wall_median_ms"] == 0.55 and verdict.timing["median_ms"] == 0.36
    assert verdict.timing["reps"] == 9


def test_work_hidden_in_every_round_holds_the_confirmation(rounds):
    rounds += [_timing(0.36, 0.9)] * 9
    verdict, _ = _confirm(9)
    assert verdict.status == "rejected"
    assert verdict.reason.startswith("hidden_work:") and "medians of 9 measurements" in verdict.reason


def test_work_hidden_in_most_rounds_holds_it_too(rounds):
    rounds += [_timing(0.36, 0.9)] * 5 + [_timing(0.36, 0.5)] * 4
    assert _confirm(9)[0].status == "rejected"


def test_a_full_measurements_parts_are_checked_together(rounds):
    cfg = Config()
    cfg.timing.profile_top_kernels = 0
    rounds += [_timing(0.36, 0.66), _timing(0.36, 0.58)]  # one part over, their median under the limit
    verdict = verify.verify_and_time(_Worker(), _Worker(), "p", Candidate(source=""), cfg, random.Random(0))
    assert verdict.status == "ok" and verdict.timing["attempts_ms"] == [0.36, 0.36]
    rounds += [_timing(0.36, 0.9), _timing(0.36, 0.95)]
    verdict = verify.verify_and_time(_Worker(), _Worker(), "p", Candidate(source=""), cfg, random.Random(0))
    assert verdict.status == "rejected" and verdict.reason.startswith("hidden_work:")


def test_the_reason_names_the_medians():
    assert hidden_work_reason(pooled_medians([_timing(1.0, 1.2)])) is None
    reason = hidden_work_reason(pooled_medians([_timing(0.2, 2.0)]))
    assert reason.startswith("hidden_work: host wall time 2.000 ms vs device timer 0.200 ms (medians):")
    pooled = pooled_medians([_timing(0.2, 2.0), _timing(0.4, 0.5), _timing(0.3, 1.0)])
    assert (pooled.median_ms, pooled.wall_median_ms, pooled.reps) == (0.3, 1.0, 3)
    assert "(medians of 3 measurements)" in hidden_work_reason(pooled)
