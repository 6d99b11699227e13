"""What the GPU probes of template drafts share: the run's setup, and a draft built, written and
loaded with its model and inputs on the GPU."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evo_kernels.config import Config  # noqa: E402
from evo_kernels.harness import precision  # noqa: E402
from evo_kernels.model.problem import Problem, import_file, load_problem  # noqa: E402
from evo_kernels.model.tunables import bake  # noqa: E402
from evo_kernels.proposers.fusion import emit as fusion  # noqa: E402

PROBLEMS = ROOT / "experiments" / "problems"


def start(out: str) -> Path:
    """The output folder (made), PyTorch's default precision flags (as users run), the device named."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    precision.apply(precision.run_flags("as_run", Config().baseline_flags))
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}; precision as_run", flush=True)
    return out_dir


def load_draft(name: str, rules: list[str], config: dict[str, Any], path: Path, module_name: str,
               edit: Callable[[str], str] | None = None) -> tuple[Problem, Any, torch.nn.Module, list[Any]] | None:
    """experiments/problems/`name`'s draft under `rules`, `config` baked in (and `edit` applied to its
    text), written to `path` and imported: (problem, module, ModelNew on the GPU, inputs), or None
    where the rules build no draft."""
    prob = load_problem(PROBLEMS / f"{name}.py")
    built = fusion.build(prob, rules)
    if built is None:
        print(f"{name} {rules}: no candidate", flush=True)
        return None
    source = bake(built[0], config)
    path.write_text(edit(source) if edit else source)
    module = import_file(path, module_name)
    torch.manual_seed(0)
    return prob, module, prob.make_model(module.ModelNew, 0, "cuda"), prob.make_inputs(1, "cuda")
