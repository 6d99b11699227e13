import torch

from evo_kernels.harness.backends import get_backend
from evo_kernels.model.candidate import Timing
from evo_kernels.config import TimingConfig
from evo_kernels.harness.timing import benchmark, hidden_work, summarize


def test_summary_median_and_iqr():
    t = summarize([1, 2, 3, 4, 100], [1.1, 2.1, 3.1, 4.1, 100.1])
    assert t.median_ms == 3 and t.min_ms == 1 and t.reps == 5
    assert t.iqr_ms == 2  # quartiles 2 and 4
    assert t.wall_median_ms == 3.1


def test_benchmark_refreshes_before_every_call_and_sees_every_output():
    backend = get_backend("cpu")
    cfg = TimingConfig(warmup_calls=2, warmup_ms=0, min_reps=7, min_time_ms=0, flush_cache=True)
    events = []
    buf = torch.zeros(4)

    def refresh(i):
        buf.fill_(i)
        events.append(("refresh", i))

    def run():
        events.append(("run", float(buf[0])))
        return buf * 2

    seen = []
    t = benchmark(run, refresh, backend, cfg, lambda i, out: seen.append((i, float(out[0]))))
    assert t.reps == 7
    timed = [e for e in events if e[0] == "refresh" and e[1] >= 0]
    assert [e[1] for e in timed] == list(range(7))
    # Each timed run saw the contents its refresh wrote, and every output reached on_output.
    assert seen == [(i, 2.0 * i) for i in range(7)]
    warm = [e for e in events if e[0] == "refresh" and -10**9 < e[1] < 0]
    assert len(warm) == 2
    # No untimed cross-check repetitions on the CPU (no lead-in there to hide work in).
    assert not [e for e in events if e[0] == "refresh" and e[1] <= -10**9]


def test_hidden_work_rule():
    honest = Timing(median_ms=2.0, iqr_ms=0, mean_ms=2, min_ms=2, reps=100, wall_median_ms=2.05)
    hidden = Timing(median_ms=0.2, iqr_ms=0, mean_ms=0.2, min_ms=0.2, reps=100, wall_median_ms=2.0)
    assert not hidden_work(honest)
    assert hidden_work(hidden)


def test_cross_checks_see_work_the_lead_in_would_hide():
    """Work that runs while the lead-in spins (another stream, on a GPU) is in neither clock of a
    timed repetition; the untimed repetitions without a lead-in see it on the host clock."""
    import time

    class LeadHidesWork(type(get_backend("cpu"))):
        lead_pending = False

        def busy_wait(self, ms):
            self.lead_pending = True

    backend = LeadHidesWork()

    def run():
        if not backend.lead_pending:
            time.sleep(0.003)  # the "side-stream" work, visible when nothing overlaps it
        backend.lead_pending = False
        return torch.zeros(1)

    cfg = TimingConfig(warmup_calls=1, warmup_ms=0, min_reps=10, min_time_ms=0, flush_cache=False)
    t = benchmark(run, lambda i: None, backend, cfg)
    assert t.median_ms < 1.0 and t.wall_median_ms > 2.5 and hidden_work(t)


class _RowSum:
    """A problem's two methods that repeat_check uses: inputs from a seed."""

    def make_inputs(self, seed, device):
        torch.manual_seed(seed)
        return [torch.randn(8, 33)]


class _Racy(torch.nn.Module):
    """Right but on call `wrong_at` (a wrong tile now and then); with `order`, sums in a new order."""

    def __init__(self, wrong_at=0, order=False):
        super().__init__()
        self.calls, self.wrong_at, self.order = 0, wrong_at, order

    def forward(self, x):
        self.calls += 1
        cols = torch.randperm(x.shape[1]) if self.order else torch.arange(x.shape[1])
        out = x[:, cols].sum(dim=1)
        if self.calls == self.wrong_at:
            out[3] += 1.0
        return out


def test_repeated_calls_hand_the_judge_the_output_that_differs():
    import random
    from evo_kernels.harness.timing import repeat_check
    cfg = TimingConfig(repeat_calls=50, repeat_ms=10_000)
    backend = get_backend("cpu")
    assert repeat_check(_Racy(), _RowSum(), cfg, random.Random(0), backend) == []  # deterministic: nothing
    sent = repeat_check(_Racy(wrong_at=17), _RowSum(), cfg, random.Random(0), backend)
    assert [what for _, _, _, what in sent] == ["call 1 of 17 on the same inputs",
                                                "call 17 on the same inputs, whose output differs from call 1's"]
    (seed, how, first, _), (seed2, _, wrong, _) = sent
    x = _RowSum().make_inputs(seed, "cpu")[0]
    assert seed == seed2 and how == "standard" and torch.equal(first, x.sum(1))
    assert float((wrong - first).abs().max()) == 1.0  # the wrong call's output, a copy
    # a race past the calls asked for is not seen; neither is anything with the check off
    assert repeat_check(_Racy(wrong_at=60), _RowSum(), cfg, random.Random(0), backend) == []
    assert repeat_check(_Racy(wrong_at=2), _RowSum(), TimingConfig(repeat_calls=0), random.Random(0), backend) == []
    # a sum in a varying order differs in its last bits: both outputs go to the judge
    assert len(repeat_check(_Racy(order=True), _RowSum(), cfg, random.Random(0), backend)) == 2


def test_same_bits_compares_bits_nans_included():
    from evo_kernels.harness.checks import same_bits
    a = torch.tensor([1.0, float("nan"), -0.0])
    assert same_bits(a, a.clone()) and not same_bits(a, torch.tensor([1.0, float("nan"), 0.0]))
    assert not same_bits(a, a.double()) and not same_bits(a, a[:2])
    assert same_bits(a[::2], torch.tensor([1.0, -0.0]))  # a strided view against a contiguous copy
