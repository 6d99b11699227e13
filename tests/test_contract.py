"""The accuracy contract (harness/contract.py) and the trials (harness/trials.py), in-process: errors
against a float64 oracle, the bound max(floor, m x eager's), exact dtypes, chunks; trial plans,
widened inputs and fresh weights made the same way in any process."""
import random

import pytest
import torch
from torch import nn

from evo_kernels.harness import contract, trials


def _case(scale: float, n: int = 20000, seed: int = 0):
    """An oracle, eager at a realistic fp32 error, and a candidate `scale` times as far off."""
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(n, dtype=torch.float64, generator=g)
    e = torch.randn(n, dtype=torch.float64, generator=g) * 1e-5 * o.abs()
    ref = (o + e).float()
    cand = (o + scale * torch.randn(n, dtype=torch.float64, generator=g) * 1e-5 * o.abs()).float()
    return o, ref, cand


def _judge(o, ref, cand, floor=1e-6, m=2.0):
    mask = contract._finite_mask(ref, o)
    sample = contract.sample_positions(ref.numel(), mask, 0)
    c, b = contract.measure(cand, o, mask, sample), contract.measure(ref, o, mask, sample)
    return contract.violation(c, b, contract.bound(b, floor, m), m, floor), c, b


def test_a_candidate_as_accurate_as_eager_passes_and_three_times_worse_fails():
    assert _judge(*_case(1.0))[0] is None
    why, cand, base = _judge(*_case(3.0))
    assert why is not None and "float64 oracle" in why and cand.norm > 2 * base.norm


def test_the_floor_lets_rounding_through_where_eager_is_exact():
    o = torch.linspace(-3, 3, 1000, dtype=torch.float64)
    exact = o.float()  # eager: fp32 rounding of the exact value, nothing more
    off_by_an_ulp = torch.nextafter(exact, torch.full_like(exact, 10.0))
    assert _judge(o, exact, off_by_an_ulp)[0] is None
    assert _judge(o, exact, exact * (1 + 1e-4))[0] is not None  # 100 x the floor: not rounding


def test_a_few_elements_at_ten_ulp_pass_the_tails_floor_and_the_same_error_everywhere_fails_the_norm():
    # An honest reordering (a long sum in another order): a handful of elements tens of ulp off
    # (above the norm's floor, elementwise), the rest as eager; the same error on every element is a
    # lower precision, not an order.
    o = torch.linspace(1, 2, 20000, dtype=torch.float64)
    exact = o.float()
    tail = exact.clone()
    tail[::1000] *= 1 + 5e-6  # ~40 ulp on 20 elements (0.1%): scaled error ~2.5e-6
    assert _judge(o, exact, tail)[0] is None
    everywhere = exact * (1 + 5e-6)
    why = _judge(o, exact, everywhere)[0]
    assert why is not None and why.startswith("relative error norm")
    far_tail = exact.clone()
    far_tail[::5000] *= 1 + 5e-5  # ten times more on four elements: not rounding
    why = _judge(o, exact, far_tail)[0]
    assert why is not None and why.startswith("largest scaled error") and "floor 1e-05" in why


def test_exact_dtypes_count_differing_elements():
    o = torch.arange(100)
    assert _judge(o, o.clone(), o.clone())[0] is None
    wrong = o.clone()
    wrong[7] = 0
    why = _judge(o, o.clone(), wrong)[0]
    assert why is not None and "1 elements differ" in why


def test_chunks_give_the_same_errors(monkeypatch):
    o, ref, cand = _case(1.5, n=5000)
    whole = _judge(o, ref, cand)[1]
    monkeypatch.setattr(contract, "_CHUNK", 333)
    assert _judge(o, ref, cand)[1] == pytest.approx(whole)


def test_non_finite_positions_are_left_out_of_the_measures():
    o, ref, cand = _case(1.0, n=1000)
    ref[3], cand[3], o[3] = float("nan"), float("nan"), float("nan")
    ref[5], cand[5] = float("inf"), float("inf")
    assert _judge(o, ref, cand)[0] is None


def test_the_plan_covers_both_modes_autograd_fresh_weights_and_wide_inputs():
    plan = trials.plan(6, random.Random(1), ["train", "eval"], trials.WIDENED)
    assert plan == trials.plan(6, random.Random(1), ["train", "eval"], trials.WIDENED)
    assert {t.mode for t in plan} == {"train", "eval"} and any(t.grad for t in plan)
    assert plan[0].weights is None and plan[0].inputs == "standard" and any(t.weights is not None for t in plan)
    assert {t.inputs for t in plan} - {"standard"}
    assert all(t.inputs == "standard" for t in trials.plan(6, random.Random(1), ["eval"], ()))


def test_input_domain_narrows_the_widened_inputs():
    class Mod:
        pass
    m = Mod()
    assert trials.allowed_inputs(m) == trials.WIDENED
    m.INPUT_DOMAIN = "standard"
    assert trials.allowed_inputs(m) == ()
    m.INPUT_DOMAIN = ["scale10"]
    assert trials.allowed_inputs(m) == ("scale10",)
    m.INPUT_DOMAIN = ["huge"]
    with pytest.raises(ValueError, match="INPUT_DOMAIN"):
        trials.allowed_inputs(m)


def test_widened_inputs_leave_integers_alone_and_are_reproducible():
    x, idx = torch.randn(50), torch.arange(5)
    for how in trials.WIDENED:
        a, b = trials.widen([x, idx, 3], how, 7), trials.widen([x, idx, 3], how, 7)
        assert torch.equal(a[0], b[0]) and not torch.equal(a[0], x) and a[1] is idx and a[2] == 3
    assert float(trials.widen([x], "scale100", 0)[0].abs().max()) > 50


def test_fresh_weights_are_the_same_for_the_same_class_and_seed():
    def net():
        return nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.LayerNorm(8))
    a, b = net(), net()
    trials.fresh_weights(a, 5)
    trials.fresh_weights(b, 5)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    bn = a[1]
    assert not torch.allclose(bn.weight, torch.ones(8)) and not torch.allclose(bn.bias, torch.zeros(8))
    assert bool((bn.running_var > 0).all()) and int(bn.num_batches_tracked) == 0
