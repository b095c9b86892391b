"""Check that the installed torch is the build TORCH_SPEC asked for (run by the Makefile).

    python scripts/check_torch.py "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"

A spec naming a CUDA index (`.../whl/cuXYZ`) must give a torch with CUDA X.Y (torch.version.cuda):
pip keeps an installed `2.13.0+cpu` for `torch==2.13.0`, whatever the index.
"""

from __future__ import annotations

import re
import sys


def cuda_of_spec(spec: str) -> str | None:
    """'12.6' for a spec naming a `.../whl/cu126` index; 'any' for PyPI named explicitly
    (its Linux x86_64 torch wheels are CUDA builds: 2.13.0 is CUDA 13.0); else None."""
    match = re.search(r"/whl/cu(\d+)(\d)\b", spec)
    if match:
        return f"{match.group(1)}.{match.group(2)}"
    return "any" if "pypi.org/simple" in spec else None


def torch_build_problem(spec: str, torch_version: str, torch_cuda: str | None) -> str | None:
    """Why the installed torch (version, torch.version.cuda) does not fit `spec`, or None."""
    wanted = cuda_of_spec(spec)
    if wanted is None or torch_cuda == wanted or (wanted == "any" and torch_cuda):
        return None
    return (
        f"TORCH_SPEC {spec!r} asks for CUDA {wanted}, but the installed torch {torch_version} "
        f"has CUDA {torch_cuda}. Remove .venv (or run `make clean`) and run make again."
    )


def main(argv: list[str]) -> int:
    import torch

    problem = torch_build_problem(" ".join(argv), torch.__version__, torch.version.cuda)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (CPU build)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
