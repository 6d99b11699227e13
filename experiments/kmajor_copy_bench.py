"""The GEMM template's operand copy (templates/gemm.py KMAJOR_COPY) against torch's `.contiguous()` on
the transposed operands of the suite's GEMMs, at tile shapes and warp counts around its defaults; the
bound is the bytes read and written over the measured bandwidth of a plain contiguous copy.

    python3 -m experiments.kmajor_copy_bench

Timing: triton.testing.do_bench (L2 flushed between calls), median ms. Every copy is checked equal.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import triton
from triton.testing import do_bench

from evo_kernels.model.problem import import_file
from evo_kernels.proposers.templates.helpers import HELPERS
from evo_kernels.proposers.templates.gemm import KMAJOR_COPY

VARIANTS = [(64, 64, 4), (32, 32, 4), (64, 64, 8), (32, 128, 4), (128, 32, 4), (128, 64, 8), (64, 128, 8)]


def main() -> None:
    # Triton compiles a kernel from its file: the rendered copy goes to one, imported from there.
    path = Path(tempfile.mkdtemp()) / "kmajor_copy.py"
    path.write_text("import torch\nimport triton\nimport triton.language as tl\n" + HELPERS + KMAJOR_COPY.substitute(name="_copy"))
    launch = import_file(path, "kmajor_copy")._copy_launch
    src = torch.empty(1 << 28, device="cuda")
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / (do_bench(lambda: dst.copy_(src)) * 1e-3)
    del src, dst
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
    print(f"plain copy bandwidth {bandwidth / 1e12:.2f} TB/s\n")
    operands = {  # the suite's operands that are not K-major, as the GEMM sees them
        "level1/03 A^T (512 x 262144, stride (1, 512))": torch.randn(262144, 512, device="cuda").t(),
        "level1/04 B^T (128 x 1024 x 1024, transposed)": torch.randn(128, 1024, 1024, device="cuda").transpose(1, 2),
        "level1/01 B^T (4096 x 4096, transposed)": torch.randn(4096, 4096, device="cuda").t(),
    }
    print("| operand | bound ms | torch .contiguous() ms | " + " | ".join(f"{r}x{c}/{w}w ms" for r, c, w in VARIANTS)
          + " | best share of bound |")
    print("|---|---:|---:|" + "---:|" * len(VARIANTS) + "---:|")
    for name, t in operands.items():
        bound = 2 * t.numel() * 4 / bandwidth * 1e3
        want = t.contiguous()
        cells = [do_bench(lambda: t.contiguous())]
        for r, c, w in VARIANTS:
            got = launch(t, block_r=r, block_c=c, warps=w)
            assert torch.equal(got, want), (name, r, c, w)
            cells.append(do_bench(lambda: launch(t, block_r=r, block_c=c, warps=w)))
        print(f"| {name} | {bound:.4f} | " + " | ".join(f"{ms:.4f}" for ms in cells)
              + f" | {100 * bound / min(cells[1:]):.0f}% |", flush=True)
        del t, want
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
