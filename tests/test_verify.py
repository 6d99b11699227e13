"""The comparison rules, in-process (the full pipeline through the CLI is in test_cli.py and redteam/)."""
import pytest
import torch

from evo_kernels.config import VerifyConfig
from evo_kernels.harness.audit import (audit, flop_time_ms, flops_by_family, matrix_rate, roofline_ms,
                                       speed_of_light_ms, tf32_by_family)
from evo_kernels.model.devices import units_words
from evo_kernels.harness.backends.base import DeviceInfo
from evo_kernels.harness.checks import Reject, check_not_aliased, compare_tensor, inputs_unchanged, pair_leaves

CFG = VerifyConfig()


def test_zeros_pass_elementwise_but_fail_relative_norm_on_tiny_outputs():
    ref = torch.softmax(torch.rand(4, 32768), dim=-1)
    assert ref.max() < 1e-4 and torch.allclose(torch.zeros_like(ref), ref, atol=1e-4, rtol=1e-4)
    with pytest.raises(Reject) as err:
        compare_tensor(ref, torch.zeros_like(ref), 1e-4, 1e-4, "output")
    assert err.value.reason.startswith("mismatch:") and "relative error norm" in err.value.reason


def test_nan_where_reference_has_none_is_named():
    ref = torch.randn(10)
    out = ref.clone()
    out[3] = float("nan")
    with pytest.raises(Reject, match="nan_mismatch: output: 1 elements NaN"):
        compare_tensor(ref, out, 1e-4, 1e-4, "output")
    both = ref.clone()
    both[3] = float("nan")
    assert compare_tensor(both, both.clone(), 1e-4, 1e-4, "output")[0] == 0.0


def test_rounding_level_differences_pass():
    a = torch.randn(256, 256, dtype=torch.float64)
    b = torch.randn(256, 256, dtype=torch.float64)
    ref = (a @ b).float()
    out = (a.float() @ b.float())
    max_abs, rel = compare_tensor(ref, out, 1e-4, 1e-4, "output")
    assert rel < 1e-5


def test_subclass_shape_dtype_and_aliasing_are_rejected():
    ref = torch.randn(4, 4)

    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True

    liar = ref.clone().as_subclass(Liar)
    with pytest.raises(Reject, match="not_a_tensor"):
        pair_leaves(ref, liar, "t")
    with pytest.raises(Reject, match="shape_mismatch"):
        pair_leaves(ref, ref.reshape(16).clone(), "t")
    with pytest.raises(Reject, match="dtype_mismatch"):
        pair_leaves(ref, ref.double(), "t")
    x = torch.randn(4, 4)
    with pytest.raises(Reject, match="aliasing"):
        check_not_aliased(x[:], [x], "t: output")
    with pytest.raises(Reject, match="structure_mismatch"):
        pair_leaves((ref, ref), ref.clone(), "t")
    with pytest.raises(Reject, match="mismatch: t: output\\[1\\]: 4 != 3"):
        pair_leaves((ref, 3), (ref.clone(), 4), "t")
    assert [label for label, _, _ in pair_leaves((ref, 3), (ref.clone(), 3), "t")] == ["t: output[0]"]


def test_inputs_unchanged_is_nan_aware_and_catches_writes():
    x = torch.randn(8)
    x[0] = float("nan")
    assert inputs_unchanged([x.clone(), 3], [x.clone(), 3])
    y = x.clone()
    y[5] += 1
    assert not inputs_unchanged([x], [y])


def test_audit_holds_implausible_speedups():
    assert audit(1.0, 5.0, 0.1, CFG) is None
    assert audit(0.1, 5.0, 0.01, CFG).startswith("audit: speedup 50.0x")
    assert "speed-of-light" in audit(0.5, 2.0, 1.0, CFG)
    # 1 GB read at 1000 GB/s is at least 1 ms; products of 100 ms at the fastest unit, /4 for fast
    # algorithms, 25 ms; none when reduced precision is allowed.
    assert speed_of_light_ms(10**9, 1000, 0.0, False) == pytest.approx(1.0)
    assert speed_of_light_ms(0, 1000, 100.0, False) == pytest.approx(25.0)
    assert speed_of_light_ms(0, 1000, 100.0, True) == 0.0


def _info(**peaks: float) -> DeviceInfo:
    return DeviceInfo(kind="cuda", name="gpu", hardware="gpu", memory_bytes=0, sm_count=1, l2_bytes=0,
                      bandwidth_gbs=1000.0, **peaks)


def test_the_roofline_bounds_products_by_the_fastest_unit_the_precision_admits():
    families = flops_by_family({"aten.convolution": 4e12, "aten.convolution_backward": 1e12, "aten.mm": 3e12,
                                "aten._scaled_dot_product_efficient_attention": 3e12})
    assert families == {"conv": 5e12, "matmul": 6e12}
    # PyTorch's defaults admit TF32 for convolutions only; "high" matmul precision admits it for products.
    defaults = {"cudnn_allow_tf32": True, "matmul_allow_tf32": False, "float32_matmul_precision": "highest"}
    assert tf32_by_family(defaults) == {"conv": True, "matmul": False}
    assert tf32_by_family({**defaults, "float32_matmul_precision": "high"}) == {"conv": True, "matmul": True}
    assert tf32_by_family({**defaults, "cudnn_allow_tf32": False, "matmul_allow_tf32": True}) == \
        {"conv": False, "matmul": True}
    gpu = _info(peak_tflops_fp32=50.0, peak_tflops_tf32=400.0, peak_tflops_fp16=800.0)
    # PyTorch's defaults: TF32 convolutions, fp32 products, which tf32x3 matches at TF32 / 3.
    ms, units = flop_time_ms(families, gpu, {"conv": True, "matmul": False}, half=False)
    assert units == {"conv": "tf32", "matmul": "tf32x3"}
    assert ms == pytest.approx(5e12 / 400e12 * 1e3 + 6e12 / (400e12 / 3) * 1e3)
    # Strict: no TF32 anywhere; 16-bit data: fp16 tensor cores.
    assert flop_time_ms(families, gpu, {}, half=False)[1] == {"conv": "tf32x3", "matmul": "tf32x3"}
    assert flop_time_ms(families, gpu, {}, half=True)[1] == {"conv": "fp16", "matmul": "fp16"}
    # Where TF32 / 3 is slower than fp32 FMA, or no TF32 was measured (a CPU), fp32 bounds it.
    assert matrix_rate(_info(peak_tflops_fp32=50.0, peak_tflops_tf32=120.0), False, False) == ("fp32", 50.0)
    assert matrix_rate(_info(peak_tflops_fp32=1.0), True, True) == ("fp32", 1.0)
    # A problem without products is bounded by its bytes: 2 GB at 1000 GB/s.
    assert flop_time_ms(flops_by_family({}), gpu, {}, half=False) == (0.0, {})
    assert roofline_ms(2 * 10**9, 1000, 0.0) == pytest.approx(2.0)
    assert roofline_ms(2 * 10**9, 1000, ms) == pytest.approx(ms)
    assert units_words(units) == "tf32 conv, tf32x3 matmul" and units_words({}) == "-"
