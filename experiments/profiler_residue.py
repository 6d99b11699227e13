"""Host time of launches before and after torch.profiler has run in the process. The sandbox workers
profile every timed candidate (and the judge every baseline) after timing it, in processes that go
on to time the next ones; if the profiler leaves CUPTI attached, every later launch pays for it.

In this process: a 3-argument Triton launch, `torch.empty`, the reference's eager call and a draft's
call (issue time back to back, and the project's timing protocol: host / device / wall), measured,
then after one `kernels.profile`, then after a second. Run it with and without TEARDOWN_CUPTI=1
(Kineto then detaches CUPTI when a trace ends). With --sandbox, also the draft evaluated three times
through the Evaluator (each evaluation's two timing parts: the first part of the first evaluation
is the only one before any profile in the defendant), with the workers as built and with
TEARDOWN_CUPTI=1 in their environment.

    python3 experiments/profiler_residue.py OUT [--sandbox]
    TEARDOWN_CUPTI=1 python3 experiments/profiler_residue.py OUT_TEARDOWN
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from experiments.drafts import PROBLEMS, load_draft, start  # noqa: E402
from experiments.host_overhead import issue_ms, protocol_ms  # noqa: E402
from experiments.kept_launches import per_launch  # noqa: E402
from evo_kernels.harness.timing import HIDDEN_WORK_FACTOR, HIDDEN_WORK_MARGIN_MS  # noqa: E402

DRAFT = ("level1/36_ConvTranspose2d_upsample", ["triton_conv_transpose"], {"CONVT_PRECISION": "tf32rn", "CONVT_TMA": True})


@triton.jit
def _scale(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2.0, mask=offs < n)


def measure(small, reference, call, prob, inputs) -> dict[str, float]:
    with torch.no_grad():
        host, device, wall = protocol_ms(call, prob, inputs, True)
        return {"triton_launch_us": per_launch(lambda: _scale[(1,)](small, small, 1024, BLOCK=1024)),
                "empty_us": per_launch(lambda: torch.empty(1024, device="cuda")),
                "eager_issue_ms": issue_ms(lambda: reference(*inputs), 300),
                "draft_issue_ms": issue_ms(call, 300),
                "protocol_host_ms": host, "protocol_device_ms": device, "protocol_wall_ms": wall,
                "bound_ms": HIDDEN_WORK_FACTOR * device + HIDDEN_WORK_MARGIN_MS}


def in_process(out: Path) -> list[dict]:
    from evo_kernels.harness import kernels
    from evo_kernels.harness.backends import get_backend
    name, rules, config = DRAFT
    prob, _, cand, inputs = load_draft(name, rules, config, out / "draft.py", "residue")
    torch.manual_seed(0)
    reference = prob.make_model(prob.Model, 0, "cuda")
    small = torch.empty(1024, device="cuda")
    call = lambda: cand(*inputs)  # noqa: E731
    backend = get_backend("cuda")
    rows = []
    for stage in ("before any profile", "after one profile", "after two profiles"):
        if stage != "before any profile":
            kernels.profile(call, backend)
        row = {"stage": stage, **measure(small, reference, call, prob, inputs)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def sandboxed(out: Path) -> list[dict]:
    from evo_kernels import config as config_mod
    from evo_kernels.harness import sandbox
    from evo_kernels.harness.evaluator import Evaluator
    from evo_kernels.model.candidate import Candidate
    cfg = config_mod.load(Path(__file__).resolve().parent / "suite_bench.yaml")
    source = (out / "draft.py").read_text()
    path = PROBLEMS / f"{DRAFT[0]}.py"
    built_env = sandbox.SandboxWorker._env
    rows = []
    for variant in ("as built", "TEARDOWN_CUPTI=1"):
        if variant != "as built":
            def with_teardown(self, _env=built_env):
                return dict(_env(self), TEARDOWN_CUPTI="1")
            sandbox.SandboxWorker._env = with_teardown
        try:
            with Evaluator("cuda", cfg) as ev:
                base = ev.baselines(path)
                for k in range(3):
                    e = ev.evaluate(path, Candidate(source=source, technique="triton_conv_transpose"))
                    t = e.timing or {}
                    row = {"variant": variant, "evaluation": k + 1, "status": e.status, "reason": e.reason[:200],
                           "parts_ms": t.get("attempts_ms"), "host_ms": t.get("host_median_ms"),
                           "device_ms": t.get("median_ms"), "wall_ms": t.get("wall_median_ms"),
                           "eager_ms": base.eager_ms, "compile_ms": base.compile_ms}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            sandbox.SandboxWorker._env = built_env
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sandbox", action="store_true")
    args = ap.parse_args()
    out = start(args.out)
    print(f"TEARDOWN_CUPTI={os.environ.get('TEARDOWN_CUPTI')!r}", flush=True)
    result = {"teardown": os.environ.get("TEARDOWN_CUPTI"), "in_process": in_process(out)}
    if args.sandbox:
        result["sandbox"] = sandboxed(out)
    (out / "residue.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
