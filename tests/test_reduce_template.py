"""The reduce template (templates/reduce.py) on every kind it claims, under Triton's interpreter:
reductions over a run of dims (sum, mean, amax, amin, argmax, argmin, with and without keepdim, over
all dims), softmax and log-softmax over a middle dim and over a long last dim, LayerNorm over several
trailing dims, GroupNorm, InstanceNorm with affine parameters. Tiles are made small so that each
reduction is split into several chunks (the combine path) and has a partial last tile."""

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import import_file, load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion

from interpreted import check_pairs, launches, launches_and_programs

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"

CASES = {
    "sum_middle": ("return x.sum(dim=1)", "torch.randn(3, 37, 5)"),
    "mean_keepdim_run": ("return torch.mean(x, dim=(1, 2), keepdim=True)", "torch.randn(2, 9, 7, 6)"),
    "amax_leading": ("return torch.amax(x, dim=(0, 1))", "torch.randn(4, 13, 5)"),
    "amin_first": ("return x.amin(0)", "torch.randn(45, 6)"),
    "sum_all": ("return x.sum()", "torch.randn(5, 41)"),
    "argmax_middle": ("return torch.argmax(x, dim=1)", "torch.randn(3, 70, 4)"),
    "argmin_keepdim": ("return torch.argmin(x, dim=2, keepdim=True)", "torch.randn(3, 4, 66)"),
    "softmax_middle": ("return torch.softmax(x, dim=1)", "torch.randn(2, 53, 6)"),
    "log_softmax_first": ("return F.log_softmax(x * 3.0, dim=0)", "torch.randn(40, 5)"),
    "softmax_long_row": ("return torch.softmax(x, dim=-1)", "torch.randn(2, 70000)"),
}
MODULES = {
    "layer_norm_3d": ("nn.LayerNorm((4, 5, 6))", "torch.randn(3, 4, 5, 6)"),
    "group_norm": ("nn.GroupNorm(3, 6)", "torch.randn(2, 6, 7, 5)"),
    "instance_norm_affine": ("nn.InstanceNorm2d(5, affine=True)", "torch.randn(2, 5, 9, 7)"),
}
# A mean 2000 times the spread: a variance from sums of squares would lose every digit (fp32's
# rounding of E[x^2] = 1e6 is 0.06, a quarter of the variance).
OFFSET = {"group_norm_offset": ("nn.GroupNorm(2, 4)", "torch.randn(3, 4, 6, 5) * 0.5 + 1000.0")}
# Small tiles: chunks of a few tiles, several chunks per reduction (the two-pass path); and no split
# at all (RED_WAVES 0: one program per row, a norm folded and applied in one kernel).
# Neither splits a normalization's rows among cooperating programs (RED_COOP_CHUNK 0), so on a GPU
# they take these paths too. The defaults do (RED_COOP_CHUNK 4096): here each norm's row in one
# program. COOP splits them in chunks of 32, groups of 2-8 programs that wait for each other: on a GPU
# only (tests/test_gpu.py), as the interpreter runs one program at a time.
PARAMS = {"RED_TILE": 16, "RED_BLOCK_B": 4, "RED_WARPS": 4, "RED_WAVES": 8, "RED_COOP_CHUNK": 0}
UNSPLIT = {"RED_TILE": 16, "RED_BLOCK_B": 4, "RED_WARPS": 4, "RED_WAVES": 0, "RED_COOP_CHUNK": 0}
COOP = {"RED_COOP_CHUNK": 32}
# The long row (70000) at tiles of 16 is ~13000 interpreted tile steps: larger tiles still split it
# into 14 chunks with a partial last tile, in a fraction of the time.
OWN = {"softmax_long_row": {"RED_TILE": 1024}}

def _problem(tmp_path, name: str) -> str:
    if name in CASES or name in SHORT_REDUCTIONS:
        body, inp = {**CASES, **SHORT_REDUCTIONS}[name]
        src = f"class Model(nn.Module):\n    def forward(self, x):\n        {body}\n"
    else:
        mod, inp = {**MODULES, **OFFSET, **SHORT_ROWS}[name]
        src = (f"class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
               f"        self.m = {mod}\n    def forward(self, x):\n        return self.m(x)\n")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + src + f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
    return str(path)


def test_each_kind_is_claimed_and_computes_the_reference(tmp_path):
    pairs = []
    for name in list(CASES) + list(MODULES):
        path = _problem(tmp_path, name)
        built = fusion.build(load_problem(path), ["triton_reduce"])
        assert built is not None, name
        source, spaces = built
        assert spaces == ["reduce"] and "_red_0_stats" in source, name
        assert check_source(source) == [], (name, [str(v) for v in check_source(source)])
        for i, params in enumerate((PARAMS, UNSPLIT) + (({},) if name in MODULES else ())):
            cand = tmp_path / f"{name}_candidate_{i}.py"
            cand.write_text(bake(source, {**params, **OWN.get(name, {})}))
            pairs += [path, str(cand)]
    check_pairs(pairs, tol=2e-5, random_params=True)


def test_norm_statistics_stay_accurate_far_from_zero(tmp_path):
    # The inputs themselves are rounded at 6e-5 (fp32 near 1000), so both the candidate and the
    # reference are judged against float64, split and not.
    path = _problem(tmp_path, "group_norm_offset")
    source, _ = fusion.build(load_problem(path), ["triton_reduce"])
    pairs = []
    for i, params in enumerate((PARAMS, UNSPLIT, {})):
        cand = tmp_path / f"offset_candidate_{i}.py"
        cand.write_text(bake(source, params))
        pairs += [path, str(cand)]
    check_pairs(pairs, tol=1e-3, oracle_factor=1.5)


def test_a_norms_rows_are_one_kernel_without_a_statistics_pass(tmp_path):
    # At the defaults a GroupNorm's rows (70 elements) fit a tile: several a program, held whole (the
    # rows kernel). Tiles of 64: one cooperative launch (the row fits one program's chunk); without
    # the chunk, the fused fold-and-apply kernel. No statistics pass in any.
    path = _problem(tmp_path, "group_norm")
    source, _ = fusion.build(load_problem(path), ["triton_reduce"])
    names = [f"_red_0_{k}" for k in ("stats", "finish", "apply", "coop", "rows")]
    for params, ran in (({}, "_red_0_rows"), ({"RED_TILE": 64}, "_red_0_coop"),
                        ({"RED_TILE": 64, "RED_COOP_CHUNK": 0}, "_red_0_apply")):
        cand = tmp_path / "counted.py"
        cand.write_text(bake(source, params))
        assert launches(path, str(cand), names) == {"train": {n: int(n == ran) for n in names}}


SHORT_ROWS = {  # rows of a few elements, many of them: several rows a program, a partial last program
    "group_norm_features": ("nn.GroupNorm(8, 64)", "torch.randn(200, 64) * 2.0 + 3.0"),
    "group_norm_maps": ("nn.GroupNorm(4, 12)", "torch.randn(40, 12, 3, 5)"),
    "instance_norm_small_maps": ("nn.InstanceNorm1d(6, affine=True)", "torch.randn(90, 6, 7)"),
    "layer_norm_two_dims": ("nn.LayerNorm((3, 10))", "torch.randn(150, 3, 10)"),
    "softmax_middle_unit_tail": ("nn.Softmax(dim=1)", "torch.randn(70, 33, 1) * 4.0"),
    "log_softmax_middle_unit_tail": ("nn.LogSoftmax(dim=1)", "torch.randn(70, 33, 1) * 4.0"),
}


SHORT_REDUCTIONS = {  # reductions ending at the last dim over a few dozen elements a row
    "global_average_pool": ("return x.mean(dim=(2, 3))", "torch.randn(20, 30, 7, 7)"),
    "sum_run_keepdim": ("return x.sum(dim=(1, 2), keepdim=True)", "torch.randn(300, 5, 10)"),
    "amax_run": ("return torch.amax(x, dim=(1, 2))", "torch.randn(200, 6, 9)"),
    "amin_last": ("return x.amin(-1)", "torch.randn(150, 37)"),
    "argmax_ties": ("return torch.argmax(x.round(), dim=-1)", "torch.randn(400, 21)"),  # the first of equals
    "argmin_run_keepdim": ("return torch.argmin(x.round(), dim=2, keepdim=True)", "torch.randn(50, 4, 30)"),
}


# Rows of each short case: the rows kernel must run fewer programs than half as many.
ROWS_OF = {"global_average_pool": 600, "sum_run_keepdim": 300, "amax_run": 200, "amin_last": 150, "argmax_ties": 400,
           "argmin_run_keepdim": 200, "group_norm_features": 1600, "group_norm_maps": 160,
           "instance_norm_small_maps": 540, "layer_norm_two_dims": 150, "softmax_middle_unit_tail": 70,
           "log_softmax_middle_unit_tail": 70}


def _each_in_one_rows_launch(tmp_path, cases, random_params: bool) -> None:
    """Each case's draft at the defaults: one launch of the rows kernel and of no other, several rows
    a program, the reference's outputs (values and indices)."""
    pairs, names = [], [f"_red_0_{k}" for k in ("stats", "finish", "apply", "coop", "rows")]
    for name in cases:
        path = _problem(tmp_path, name)
        source, _ = fusion.build(load_problem(path), ["triton_reduce"])
        cand = tmp_path / f"{name}_candidate.py"
        cand.write_text(source)
        counts, programs = launches_and_programs(path, str(cand), names)
        assert counts == {"train": {n: int(n == "_red_0_rows") for n in names}}, name
        assert 0 < programs["train"]["_red_0_rows"] <= ROWS_OF[name] // 2, (name, programs)
        pairs += [path, str(cand)]
    check_pairs(pairs, tol=2e-5, random_params=random_params)


def test_short_reductions_are_held_several_rows_a_program(tmp_path):
    # A global average pool, sums, extrema and arg-extrema (ties: the first) over short rows
    _each_in_one_rows_launch(tmp_path, SHORT_REDUCTIONS, random_params=False)


def test_short_rows_are_held_several_a_program(tmp_path):
    # GroupNorm after a Linear (groups of 8 features), InstanceNorm and LayerNorm on small maps, a
    # softmax over a dim with nothing after it; affine weights away from 1 and 0
    _each_in_one_rows_launch(tmp_path, SHORT_ROWS, random_params=True)


def test_a_chunk_of_one_channel_takes_its_affine_weights_as_scalars(tmp_path):
    # InstanceNorm rows of exactly one chunk (4 x 8 = 32): the cooperative kernel's scalar weights
    # (a chunk within one channel), against the reference with weights away from 1 and 0.
    path = tmp_path / "inorm.py"
    path.write_text(HEADER + "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.m = nn.InstanceNorm2d(5, affine=True)\n    def forward(self, x):\n"
                    "        return self.m(x)\ndef get_inputs():\n    return [torch.randn(2, 5, 4, 8)]\n"
                    "def get_init_inputs():\n    return []\n")
    source, _ = fusion.build(load_problem(str(path)), ["triton_reduce"])
    cand = tmp_path / "inorm_candidate.py"
    cand.write_text(bake(source, {**COOP, "RED_TILE": 16}))  # a row a tile would hold goes to the rows kernel
    names = [f"_red_0_{k}" for k in ("stats", "apply", "coop", "rows")]
    assert launches(str(path), str(cand), names) == {"train": {n: int(n == "_red_0_coop") for n in names}}
    check_pairs([str(path), str(cand)], tol=2e-5, random_params=True)


@pytest.mark.parametrize("body", ["return torch.softmax(x, dim=-1)", "return F.layer_norm(x, (300,))",
                                  "return x.sum(-1, keepdim=True) * 2.0"])
def test_short_last_dim_rows_stay_with_the_row_template(tmp_path, body):
    path = tmp_path / "p.py"
    path.write_text(HEADER + f"class Model(nn.Module):\n    def forward(self, x):\n        {body}\n"
                    "def get_inputs():\n    return [torch.randn(4, 300)]\ndef get_init_inputs():\n    return []\n")
    built = fusion.build(load_problem(str(path)), ["triton_reduce", "fuse_chains"])
    assert built is not None and "_red_0_stats" not in built[0] and "rowwise" in built[1]


# A softmax over the channels of a map: (body, input, maps a). R is 20 (a strip of 32 rows, padded); 150
# columns: a partial last strip.
HELD_STRIPS = {
    "softmax_channels_held": ("return torch.softmax(x * 2.0, dim=1)", "torch.randn(3, 20, 150)", 3),
    "log_softmax_channels_held": ("return F.log_softmax(x, dim=1)", "torch.randn(2, 20, 10, 15)", 2),
}
# (configuration, programs per map, held): strips of 64 and of 32 columns held, one program a strip,
# whatever RED_TILE (a held strip takes up to 16384); 16 columns not held (the fold and apply, a
# program per 16 columns); tiles of 256 at 4 columns not held.
STRIP_CASES = [({"RED_TILE": 2048, "RED_BLOCK_B": 64}, 3, True),
               ({"RED_TILE": 256, "RED_BLOCK_B": 32, "RED_WAVES": 0}, 5, True),
               ({"RED_TILE": 8192, "RED_BLOCK_B": 16, "RED_WAVES": 0}, 10, False),
               ({"RED_TILE": 256, "RED_BLOCK_B": 4, "RED_WAVES": 0}, 38, False)]


def _apply_launch(problem, cand) -> dict:
    """The keyword arguments of the candidate's one apply launch (recorded, not run)."""
    module = import_file(cand, f"recorded_{cand.stem}")
    seen = {}

    class Recorder:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: seen.update(kwargs)
    module._red_0_apply = Recorder()
    problem.make_model(module.ModelNew, 1, "cpu")(*problem.make_inputs(1, "cpu"))
    return seen


def test_a_softmax_over_a_strided_dim_holds_its_strips(tmp_path):
    # Held strips: the apply kernel alone, one program per strip, each read once, the reference's
    # values. Strips under 32 columns are not held: the fold-and-apply kernel, a program per tile.
    pairs, names = [], [f"_red_0_{k}" for k in ("stats", "finish", "apply", "coop", "rows")]
    for name, (body, inp, maps) in HELD_STRIPS.items():
        path = tmp_path / f"{name}.py"
        path.write_text(HEADER + f"class Model(nn.Module):\n    def forward(self, x):\n        {body}\n"
                        f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
        source, _ = fusion.build(load_problem(str(path)), ["triton_reduce"])
        for i, (params, per_map, held) in enumerate(STRIP_CASES):
            cand = tmp_path / f"{name}_{i}.py"
            cand.write_text(bake(source, params))
            assert _apply_launch(load_problem(str(path)), cand)["HELD"] == held, (name, params)
            counts, ran = launches_and_programs(str(path), str(cand), names)
            assert counts == {"train": {n: int(n == "_red_0_apply") for n in names}}, name
            assert ran["train"]["_red_0_apply"] == maps * per_map, (name, params, ran)
            pairs += [str(path), str(cand)]
    check_pairs(pairs, tol=2e-5)
