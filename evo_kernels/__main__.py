"""`python -m evo_kernels` is `evo-kernels` (the GPU machine runs the project from PYTHONPATH)."""
import sys

from .cli import main

sys.exit(main())
