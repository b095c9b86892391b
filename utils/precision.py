"""Choosing and applying the compute precision (fp32 master weights, autocast for speed)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run ~2x fp32 there; elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.version.cuda is None and Path("/dev/nvidiactl").exists():
            print(f"note: this machine has an NVIDIA GPU, but torch {torch.__version__} is a CPU "
                  "build: running on the CPU (README, 'GPUs': TORCH_SPEC)", file=sys.stderr)  # fmt: skip
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 where the hardware does it natively (Ampere+ GPU, AVX512-BF16 CPU), else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ValueError("fp16 autocast is for GPUs; use bf16 or fp32 on CPU")
        return precision
    if device.type == "cuda":
        # native bf16 only (Ampere+): pre-Ampere cards emulate it, slower than their fp16
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast context for a resolved precision ('fp32' -> no-op)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
