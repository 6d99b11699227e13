import pytest
import torch

from conftest import PROBLEMS
from evo_kernels.model.problem import ProblemError, load_problem


def test_loads_a_good_problem_and_makes_seeded_inputs():
    p = load_problem(PROBLEMS / "tiny_linear_relu.py")
    assert p.constants["batch"] == 8 and p.constants["features"] == 16
    a = p.make_inputs(123, "cpu")
    b = p.make_inputs(123, "cpu")
    c = p.make_inputs(124, "cpu")
    assert a[0].shape == (8, 16)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    m1 = p.make_model(p.Model, 5, "cpu")
    m2 = p.make_model(p.Model, 5, "cpu")
    assert torch.equal(m1.linear.weight, m2.linear.weight)


@pytest.mark.parametrize("name, message", [
    ("missing_get_inputs.py", "missing get_inputs"),
    ("syntax_error.py", "syntax error at line 2"),
    ("raises_on_import.py", "failed to import (line 3): RuntimeError: dataset not found"),
    ("inputs_not_a_list.py", "get_inputs() must return a list, got Tensor(4,):float32"),
    ("input_is_a_string.py", "get_inputs()[1] is a str"),
    ("model_not_a_module.py", "Model must be a subclass of torch.nn.Module"),
])
def test_broken_problem_files_name_the_file_and_the_fault(name, message):
    path = PROBLEMS / "broken" / name
    with pytest.raises(ProblemError) as err:
        load_problem(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(ProblemError, match="not found"):
        load_problem(tmp_path / "nope.py")
    other = tmp_path / "problem.txt"
    other.write_text("x = 1")
    with pytest.raises(ProblemError, match="must be a .py file"):
        load_problem(other)
