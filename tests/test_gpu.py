"""GPU checks (run on a CUDA machine: `python3 -m pytest -m gpu`). CI has no GPU and skips them."""
import contextlib
import copy
import textwrap

import pytest
import torch

from conftest import ROOT, run_cli

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_bench_example_on_cuda():
    code, out, err = run_cli("bench", "examples/gemm_bias_gelu.py", "examples/gemm_bias_gelu_fused.py",
                             "--device", "cuda", "--json")
    assert code == 0, err
    assert out["status"] == "ok" and out["speedup"] > 0
    assert out["eager"] / out["candidate"] > 1.0  # fusing the bias and GELU beats eager
    # Eager's noise (eager timed twice) is not bounded here: on a shared H200 this 0.22 ms problem
    # read 2% and 53% seconds apart (experiments/RESULTS.md); what the harness does with a noisy
    # measurement is tested without a GPU (test_repeated_baselines_keep_each_baseline_at_its_fastest).
    # each of the measurement's two parts (timing.repeats) at least half of min_reps (100)
    assert out["timings"]["candidate"]["reps"] >= 50 and len(out["timings"]["candidate"]["attempts_ms"]) == 2


def test_illegal_memory_access_is_a_crash_and_the_worker_recovers():
    from evo_kernels.model.candidate import Candidate
    from evo_kernels.config import Config
    from evo_kernels.harness.evaluator import Evaluator
    cfg = Config(device="cuda", baselines=["eager"])
    cfg.timing.min_reps = 20
    problem = ROOT / "examples" / "gemm_bias_gelu.py"
    wild = (ROOT / "experiments" / "candidates" / "illegal_memory_access.py").read_text()
    good = (ROOT / "examples" / "gemm_bias_gelu_fused.py").read_text()
    with Evaluator("cuda", cfg) as ev:
        pid = ev.defendant.proc.pid
        bad = ev.evaluate(problem, Candidate(source=wild), timed=False)
        assert bad.status == "crash" and "illegal memory access" in bad.reason
        assert ev.defendant.proc.pid != pid
        after = ev.evaluate(problem, Candidate(source=good))
        assert after.status == "ok" and after.speedup > 1.0


def test_project_timing_agrees_with_do_bench():
    import triton.testing

    from evo_kernels.harness import precision
    from evo_kernels.harness.backends import get_backend
    from evo_kernels.config import TimingConfig
    from evo_kernels.model.problem import load_problem
    from evo_kernels.harness.timing import benchmark
    precision.set_strict_precision()
    backend = get_backend("cuda")
    p = load_problem(ROOT / "experiments" / "problems" / "level1" / "06_Conv2d_3x3.py")
    model = p.make_model(p.Model, 0, "cuda")
    bufs = p.make_inputs(1, "cuda")

    def run():
        with torch.no_grad():
            return model(*bufs)

    def refresh(i):
        for b, f in zip(bufs, p.make_inputs(2 + i, "cuda")):
            b.copy_(f)

    ours = benchmark(run, refresh, backend, TimingConfig()).median_ms
    ref = triton.testing.do_bench(run, warmup=100, rep=1000, return_mode="median")
    assert abs(ours / ref - 1) < 0.05, (ours, ref)


def _reference_and_candidate(problem, module):
    """The problem's model with random parameters (away from a norm's 1 and 0), and the candidate
    holding the same ones, on the GPU."""
    ref = problem.make_model(problem.Model, 0, "cuda")
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn_like(p))
        new = problem.make_model(module.ModelNew, 1, "cuda")
        new.load_state_dict(ref.state_dict())
    return ref, new


@contextlib.contextmanager
def _strict_precision():
    """Full fp32 (the harness's strict switches) inside, the switches as they were after."""
    from evo_kernels.harness import precision
    saved = precision.read_switches()
    precision.set_strict_precision()
    try:
        yield
    finally:
        precision.apply(saved)


def _template_matches(tmp_path, path, rule, configs, tag, random_params=True, equal_nan=False, oracle=False):
    """The problem at `path`, its candidate under the graph rule compiled by Triton (not interpreted)
    at each configuration, against the reference on the GPU (random parameters unless told): close to
    it, or with `oracle`, no less accurate than it against a float64 copy (the harness's contract,
    for long chains whose fp32 roundings differ by more than a fixed tolerance); and no kernel it
    compiled with a wgmma register hazard in its SASS (harness/wgmma_hazards.py). Returns the
    candidate's source."""
    from evo_kernels.harness.wgmma_hazards import module_hazards
    from evo_kernels.model.problem import import_file, load_problem
    from evo_kernels.model.tunables import bake
    from evo_kernels.proposers import fusion
    problem = load_problem(path)
    source, _ = fusion.build(problem, [rule] if isinstance(rule, str) else rule)
    for i, params in enumerate(configs):
        cand = tmp_path / f"{tag}_{i}.py"
        cand.write_text(bake(source, params) if params else source)
        module = import_file(cand, f"gpu_{tag}_{i}")
        if random_params:
            ref, new = _reference_and_candidate(problem, module)
        else:
            ref, new = problem.make_model(problem.Model, 0, "cuda"), problem.make_model(module.ModelNew, 1, "cuda")
        ref64 = copy.deepcopy(ref).double() if oracle else None
        # Two calls on fresh inputs: the first compiles each kernel through Triton, the second launches
        # the compiled kernels _launch kept.
        for call, seed in enumerate((3, 4)):
            with torch.no_grad():
                x = problem.make_inputs(seed, "cuda")
                want, got = ref(*x), new(*x)
            assert got.dtype == want.dtype and got.shape == want.shape, tag
            if oracle:
                with torch.no_grad():
                    want64 = ref64(*[t.double() for t in x])
                err = lambda y: float((y.double() - want64).norm() / want64.norm())  # noqa: E731
                assert err(got) <= 2 * err(want) + 1e-7, \
                    f"{tag} {params} call {call}: error vs float64 {err(got):.2e}, the reference's {err(want):.2e}"
            else:
                torch.testing.assert_close(got, want, atol=2e-5, rtol=2e-5, equal_nan=equal_nan,
                                           msg=lambda m: f"{tag} {params} call {call}: {m}")
        assert module._LAUNCHES, f"{tag} {params}: no launch kept"
        found = module_hazards(module)  # a race the comparison above would catch only now and then
        assert not found, f"{tag} {params}: wgmma register hazards: " + "; ".join(
            f"{name}: {hs[0]} (and {len(hs) - 1} more)" for name, hs in found.items())
    return source


def test_reduce_template_compiles_and_matches_on_cuda(tmp_path):
    """templates/reduce.py compiled by Triton (not interpreted): every kind of tests/test_reduce_template.py,
    at its defaults, with small split tiles, unsplit, and normalizations split among groups of
    programs of 32 elements each, against the reference on the GPU."""
    from test_reduce_template import CASES, COOP, MODULES, PARAMS, UNSPLIT, _problem
    for name in list(CASES) + list(MODULES):
        _template_matches(tmp_path, _problem(tmp_path, name), "triton_reduce", ({}, PARAMS, UNSPLIT, COOP),
                          f"reduce_{name}")


@pytest.mark.parametrize("body, shape", [
    ("nn.GroupNorm(8, 64)", (48, 64, 96, 96)),  # 384 rows of 73728: groups of 18 programs
    ("nn.InstanceNorm2d(64, affine=True)", (32, 64, 100, 100)),  # 2048 groups of 3, a partial last chunk
])
def test_cooperative_norm_many_groups_against_float64(tmp_path, body, shape):
    """Many more groups of waiting programs than fit on the device at once (the ticket order keeps
    them from deadlocking), at real sizes: the result within fp32 rounding of a float64 reference,
    from the cooperative kernel alone."""
    from evo_kernels.model.problem import import_file, load_problem
    from evo_kernels.proposers import fusion
    path = tmp_path / "norm.py"
    path.write_text("import torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n    def __init__(self):\n"
                    f"        super().__init__()\n        self.m = {body}\n    def forward(self, x):\n"
                    f"        return self.m(x)\n\ndef get_inputs():\n    return [torch.randn{shape} * 3.0 + 5.0]\n\n"
                    "def get_init_inputs():\n    return []\n")
    problem = load_problem(path)
    source, _ = fusion.build(problem, ["triton_reduce"])
    cand = tmp_path / "cand.py"
    cand.write_text(source)
    module = import_file(cand, f"gpu_coop_{shape[0]}")
    ref, new = _reference_and_candidate(problem, module)
    with torch.no_grad():
        x = problem.make_inputs(3, "cuda")[0]
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            got = new(x)
            torch.cuda.synchronize()
        oracle = ref.double()(x.double())
    names = {e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA}
    assert any("_coop" in n for n in names) and not any("_apply" in n or "_stats" in n for n in names), names
    err = (got.double() - oracle).norm() / oracle.norm()
    assert err < 1e-6, err


def test_cross_entropy_template_compiles_and_matches_on_cuda(tmp_path):
    """templates/cross_entropy.py compiled by Triton: every form of tests/test_cross_entropy_template.py,
    at its defaults, split into chunks and not, against the reference on the GPU."""
    from test_cross_entropy_template import CASES, SPLIT, UNSPLIT, _problem
    for name, (body, n, c, targets) in CASES.items():
        _template_matches(tmp_path, _problem(tmp_path, name, body, n, c, targets), "triton_cross_entropy",
                          ({}, SPLIT, UNSPLIT), f"ce_{name}", random_params=False, equal_nan=True)

def test_depthwise_template_compiles_and_matches_on_cuda(tmp_path):
    """templates/depthwise.py compiled by Triton: every case of tests/test_depthwise_template.py (the
    sliding window and the tile kernel) at its defaults and at small tiles, against the reference on
    the GPU; and the sliding window at a real size with rows and columns cut at the tiles' edges,
    within fp32 rounding of float64."""
    from test_depthwise_template import CASES, _write

    from evo_kernels.model.problem import import_file, load_problem
    from evo_kernels.proposers import fusion
    for name, (mod, ret, inp) in CASES.items():
        _template_matches(tmp_path, _write(tmp_path, name, mod, ret, inp), "triton_depthwise",
                          ({}, {"DW_ROWS": 4, "DW_PER_THREAD": 1, "DW_BLOCK": 64}), f"dw_{name}")
    path = _write(tmp_path, "real", "nn.Conv2d(6, 6, 7, padding=3, groups=6)", "self.c(x)",
                  "torch.randn(16, 6, 203, 517)")  # 517 columns: two 512-wide tiles, the second of 5
    problem = load_problem(path)
    cand = tmp_path / "real_cand.py"
    cand.write_text(fusion.build(problem, ["triton_depthwise"])[0])
    ref, new = _reference_and_candidate(problem, import_file(cand, "gpu_dw_real"))
    with torch.no_grad():
        x = problem.make_inputs(3, "cuda")[0]
        got, oracle = new(x), ref.double()(x.double())
    assert (got.double() - oracle).norm() / oracle.norm() < 1e-6


def test_conv_transpose_template_compiles_and_matches_on_cuda(tmp_path):
    """templates/conv_transpose.py compiled by Triton: every case of
    tests/test_conv_transpose_template.py at its defaults and at small tiles, no less accurate than
    the reference against float64 (tf32x3); and level2/17's geometry at a real size with uneven last
    tiles, within fp32 rounding of float64."""
    from test_conv_transpose_template import CASES, _write
    for name, (mod, ret, inp) in CASES.items():
        _template_matches(tmp_path, _write(tmp_path, name, mod, ret, inp), "triton_conv_transpose",
                          ({}, {"CONVT_TMA": True},
                           {"CONVT_BLOCK_M": 32, "CONVT_BLOCK_N": 16, "CONVT_BLOCK_K": 16, "CONVT_TMA": True}),
                          f"convt_{name}",
                          oracle=True)
    path = _write(tmp_path, "real", "nn.ConvTranspose2d(128, 48, 4, stride=2, padding=1)", "F.gelu(self.c(x))",
                  "torch.randn(6, 128, 37, 45)")
    _template_matches(tmp_path, path, "triton_conv_transpose",
                      ({}, {"CONVT_TMA": True}, {"CONVT_WARPS": 8, "CONVT_BLOCK_K": 64, "CONVT_TMA": True}),
                      "convt_real", oracle=True)


def test_conv_tma_kernel_compiles_and_matches_on_cuda(tmp_path):
    """The conv template's TMA kernel compiled by Triton (on Hopper; elsewhere the pointer kernel runs):
    every case of tests/test_conv_tma.py at its defaults (tf32x3) and at small tiles, no less accurate
    than cuDNN against float64 (which runs these small convolutions in fp32, not TF32: a rounded TF32
    draft is checked on the suite's sizes, by the probes and the harness); and a real size."""
    from test_conv_tma import CASES, SMALL, _write
    for name, (mod, ret, inp) in CASES.items():
        _template_matches(tmp_path, _write(tmp_path, name, mod, ret, inp), "triton_conv", ({}, SMALL), f"tma_{name}",
                          oracle=True)
    path = _write(tmp_path, "real", "nn.Conv2d(64, 8, 3, padding=1)", "F.relu(self.c(x))", "torch.randn(4, 64, 57, 75)")
    _template_matches(tmp_path, path, "triton_conv", ({}, {"CONV_BLOCK_W": 32, "CONV_BLOCK_K": 32}), "tma_real",
                      oracle=True)


def test_conv3d_template_compiles_and_matches_on_cuda(tmp_path):
    """The Conv3d template's kernels compiled by Triton (5-D TMA boxes on Hopper; the pointer kernel
    where the TMA kernel does not apply): every case of tests/test_conv3d_template.py at its defaults
    (tf32x3) and at small tiles, no less accurate than cuDNN against float64; and a real size."""
    from test_conv3d_template import CASES, SMALL, _write
    for name, (mod, ret, inp, _) in CASES.items():
        _template_matches(tmp_path, _write(tmp_path, name, mod, ret, inp), "triton_conv3d", ({}, SMALL),
                          f"conv3d_{name}", oracle=True)
    path = _write(tmp_path, "real", "nn.Conv3d(32, 24, 3, padding=1)", "F.relu(self.c(x))",
                  "torch.randn(2, 32, 9, 30, 37)")
    _template_matches(tmp_path, path, "triton_conv3d", ({}, {"CONV_BLOCK_W": 32}, {"CONV_TMA": False}),
                      "conv3d_real", oracle=True)


def test_gemm_operand_copy_on_cuda():
    """The GEMM template's K-major copy compiled by Triton: transposed, sliced and batched operands at
    sizes that cut its tiles, equal to torch's copy."""
    import tempfile
    from pathlib import Path

    from evo_kernels.model.problem import import_file
    from evo_kernels.proposers.templates.helpers import HELPERS
    from evo_kernels.proposers.templates.gemm import KMAJOR_COPY
    path = Path(tempfile.mkdtemp()) / "kmajor_copy.py"
    path.write_text("import torch\nimport triton\nimport triton.language as tl\n" + HELPERS + KMAJOR_COPY.substitute(name="_c"))
    launch = import_file(path, "gpu_kmajor_copy")._c_launch
    base = torch.randn(3, 1000, 777, device="cuda")
    for view in (base[0].t(), base.transpose(1, 2), base[:, 5:, ::3].transpose(1, 2), base.permute(2, 0, 1)):
        got = launch(view)
        assert got.is_contiguous() and torch.equal(got, view.contiguous())


def test_prologues_in_an_inverted_residual_compile_and_match_on_cuda(tmp_path):
    """An inverted residual's tails applied by the next conv as it loads its input: the first 1x1
    conv's BatchNorm and ReLU6 by the depthwise conv, the depthwise conv's by the last 1x1 conv (each
    producer returns its raw output, scale and shift), compiled, against the reference on the GPU in
    training mode (batch statistics), against float64: channels cut at the K blocks' edge (72 in
    blocks of 64). (Three BatchNorms over random weights: the two fp32 results were 6e-5 apart at 3
    of 229680 outputs, past any fixed tolerance worth the name.)"""
    path = tmp_path / "prologue.py"
    path.write_text("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
                    "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.c0, self.bn0 = nn.Conv2d(40, 72, 1, bias=False), nn.BatchNorm2d(72)\n"
                    "        self.dw = nn.Conv2d(72, 72, 3, padding=1, groups=72, bias=False)\n"
                    "        self.bn = nn.BatchNorm2d(72)\n        self.pw = nn.Conv2d(72, 40, 1)\n"
                    "    def forward(self, x):\n        x = F.relu6(self.bn0(self.c0(x)))\n"
                    "        return self.pw(F.relu6(self.bn(self.dw(x))))\n"
                    "def get_inputs():\n    return [torch.randn(6, 40, 29, 33)]\n"
                    "def get_init_inputs():\n    return []\n")
    with _strict_precision():  # the reference's conv in fp32
        source = _template_matches(tmp_path, path, ["triton_depthwise", "triton_conv"],
                                   ({}, {"CONV_BLOCK_K": 32, "CONV_STAGES": 4, "DW_ROWS": 4}), "prologue",
                                   oracle=True)
    assert source.count("= x  # the producer's output and its deferred tail's operands") == 2


def test_pointwise_conv_with_batchnorm_compiles_and_matches_on_cuda(tmp_path):
    """The 1x1 conv's GEMM per image compiled by Triton, a training BatchNorm's statistics chunked
    per image and finalized by one kernel (_bn_finalize), against the reference on the GPU: tiles
    cut at every edge (96 input and 80 output channels), at the defaults and at the TF32 seed's tiles
    in tf32x3. 1665 pixels an image: the pointer kernel; 1584: the TMA kernel on the input as it lies,
    its boxes of 64 channels reaching into the next image's."""
    for tag, (h, w) in (("pointwise", (37, 45)), ("pointwise_tma", (36, 44))):
        path = tmp_path / f"{tag}.py"
        path.write_text("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
                        "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                        "        self.c = nn.Conv2d(96, 80, 1)\n        self.bn = nn.BatchNorm2d(80)\n"
                        "    def forward(self, x):\n        return F.relu6(self.bn(self.c(x)))\n"
                        f"def get_inputs():\n    return [torch.randn(8, 96, {h}, {w})]\n"
                        "def get_init_inputs():\n    return []\n")
        with _strict_precision():  # the reference's conv in fp32 (cuDNN's TF32 errs by 1e-3 here)
            _template_matches(tmp_path, path, "triton_conv", ({}, {"CONV_BLOCK_K": 32, "CONV_STAGES": 4},
                                                              {"CONV_BLOCK_M": 64, "CONV_BLOCK_N": 32, "CONV_WARPS": 4}),
                              tag)


def test_pool_window_template_compiles_and_matches_on_cuda(tmp_path):
    """templates/pool_window.py compiled by Triton: every case of tests/test_pool_template.py's
    sliding window at its defaults and at 2 rows and 1 column a lane, no less accurate than the
    reference against float64; and a 3x3 box filter at a real size (a row of 1000 columns: two tiles)."""
    from test_pool_template import WINDOW_CASES, _write

    for name, (mod, ret, inp) in WINDOW_CASES.items():
        _template_matches(tmp_path, _write(tmp_path, name, mod, ret, inp), "fuse_chains",
                          ({}, {"POOL_ROWS": 2, "POOL_PER_THREAD": 1}), f"pw_{name}", oracle=True)
    path = _write(tmp_path, "real", "nn.AvgPool2d(3, stride=1, padding=1)", "torch.tanh(self.m(x))",
                         "torch.randn(8, 32, 301, 1000)")
    _template_matches(tmp_path, path, "fuse_chains", ({}, {"POOL_ROWS": 32}), "pw_real", oracle=True)


def test_gemm_with_an_eval_mode_batchnorm_folded_compiles_and_matches_on_cuda(tmp_path):
    """The GEMM template with a BatchNorm1d and what follows folded into its store in eval mode
    (running statistics set away from 0 and 1), compiled by Triton: in training then eval mode, the
    outputs no less accurate than the reference's against float64 (tf32x3 products), the running
    statistics updated as the reference updates them; tiles cut at every edge (1000 rows, 200 columns)."""
    from evo_kernels.model.problem import import_file, load_problem
    from evo_kernels.proposers import fusion
    path = tmp_path / "gemm_bn.py"
    path.write_text("import torch\nimport torch.nn as nn\n"
                    "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.linear = nn.Linear(300, 200)\n        self.bn = nn.BatchNorm1d(200)\n"
                    "    def forward(self, x, r):\n        return torch.relu(self.bn(self.linear(x)) + r)\n"
                    "def get_inputs():\n    return [torch.randn(1000, 300), torch.randn(1000, 200)]\n"
                    "def get_init_inputs():\n    return []\n")
    problem = load_problem(path)
    source, _ = fusion.build(problem, ["triton_gemm", "fuse_chains"])
    assert "if FOLD:" in source
    cand = tmp_path / "gemm_bn_cand.py"
    cand.write_text(source)
    module = import_file(cand, "gpu_gemm_bn")
    ref, new = _reference_and_candidate(problem, module)
    with torch.no_grad():
        ref.bn.running_mean.copy_(torch.randn(200) * 3)
        ref.bn.running_var.copy_(torch.rand(200) * 4 + 0.5)
        new.load_state_dict(ref.state_dict())
    for mode in ("train", "eval"):
        ref.train(mode == "train")
        new.train(mode == "train")
        ref64 = copy.deepcopy(ref).double()
        x = problem.make_inputs(4, "cuda")
        with torch.no_grad():
            want, got = ref(*x), new(*x)
            want64 = ref64(*[t.double() for t in x])
        err = lambda y: float((y.double() - want64).norm() / want64.norm())  # noqa: E731
        assert err(got) <= 2 * err(want) + 1e-7, f"{mode}: error vs float64 {err(got):.2e}, eager's {err(want):.2e}"
        for name in ("running_mean", "running_var"):
            torch.testing.assert_close(getattr(new.bn, name), getattr(ref.bn, name), atol=1e-5, rtol=1e-5,
                                       msg=lambda m: f"{mode} {name}: {m}")


def test_reduce_template_passes_nan_through_max_and_min_on_cuda(tmp_path):
    """amax and amin of a column holding NaN are NaN, as in torch (Triton's maximum and minimum drop
    NaN unless told not to; the interpreter's numpy keeps it, so only a GPU shows the difference):
    unsplit, split into chunks combined by a second pass, and at the defaults."""
    from test_reduce_template import HEADER, PARAMS, UNSPLIT
    for name, body in (("amax", "return torch.amax(x, dim=1)"), ("amin", "return x.amin(dim=(0, 1))")):
        path = tmp_path / f"nan_{name}.py"
        path.write_text(HEADER + f"class Model(nn.Module):\n    def forward(self, x):\n        {body}\n"
                        "def get_inputs():\n    x = torch.randn(3, 700, 5)\n    x[1, 250, 2] = float('nan')\n"
                        "    x[2, 699, 4] = float('nan')\n    return [x]\ndef get_init_inputs():\n    return []\n")
        _template_matches(tmp_path, path, "triton_reduce", ({}, PARAMS, UNSPLIT), f"nan_{name}", random_params=False,
                          equal_nan=True)


def test_gemm_by_tma_on_cuda(tmp_path):
    """The GEMM template's TMA path (GEMM_TMA, the default; tf32x3 with B split once) compiled by Triton,
    next to the pointer path: a Linear with an epilogue, a bmm with B as it lies and a K split (A^T B,
    A read as it lies by TMA, copied K-major by pointers), with K loops of many steps (the tensor cores' own
    accumulation would drift there), each no less accurate than the reference against float64 and free
    of wgmma register hazards; and infinite inputs giving NaN and inf where fp32 does."""
    from test_gemm_tma import HEADER, INFINITE
    bodies = {
        "tma_linear": "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                      "        self.linear = nn.Linear(2048, 520)\n"
                      "    def forward(self, x):\n        return F.gelu(self.linear(x))\n"
                      "def get_inputs():\n    return [torch.randn(4, 250, 2048)]\n",
        "tma_bmm": "class Model(nn.Module):\n    def forward(self, a, b):\n        return torch.bmm(a, b)\n"
                   "def get_inputs():\n    return [torch.randn(3, 300, 4096), torch.randn(3, 4096, 420)]\n",
        "tma_split_k": "class Model(nn.Module):\n    def forward(self, a, b):\n        return torch.matmul(a.t(), b)\n"
                       "def get_inputs():\n    return [torch.randn(16384, 160), torch.randn(16384, 144)]\n",
    }
    for tag, body in bodies.items():
        path = tmp_path / f"{tag}.py"
        path.write_text(HEADER + body + "def get_init_inputs():\n    return []\n")
        _template_matches(tmp_path, path, "triton_gemm", ({}, {"GEMM_TMA": False}), tag, oracle=True)
    path = tmp_path / "tma_infinite.py"
    path.write_text(HEADER + textwrap.dedent(INFINITE) + "def get_init_inputs():\n    return []\n")
    _template_matches(tmp_path, path, "triton_gemm", ({},), "tma_infinite", random_params=False, equal_nan=True)
