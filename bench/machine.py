"""What the machine is, and what it can do: its name, its cores, its measured matmul peak."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads do not help GEMMs)."""
    try:
        cores, current = set(), {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
            if not line.strip():
                cores.add((current.get("physical id"), current.get("core id")))
                current = {}
        return max(1, min(len(cores), len(os.sched_getaffinity(0))))
    except (OSError, AttributeError):
        return os.cpu_count() or 1


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's with its family/model and bf16 instruction sets: a
    virtual machine often reports only "AMD EPYC", and generations differ ~1.5x in bf16."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    info: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    if "model name" not in info:
        return platform.processor()
    isa = [f for f in ("avx512_bf16", "amx_bf16") if f in info.get("flags", "").split()]
    return (
        f"{info['model name']} (family {info.get('cpu family', '?')} model {info.get('model', '?')}, "
        f"{physical_cores()} cores{', ' + ', '.join(isa) if isa else ''})"
    )


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int | None = None,
                repeats: int = 3) -> float:  # fmt: skip
    """FLOP/s of the best of `repeats` n x n matmuls in `dtype` (after one untimed): what
    this machine's GEMMs reach with the current thread count, the ceiling a mode's achieved
    FLOP/s is compared with. n: 4096 on a CPU (~1 s per fp32 matmul on 2 cores), 8192 on a GPU."""
    n = n or (8192 if device.type == "cuda" else 4096)
    inner = 10 if device.type == "cuda" else 1  # a GPU matmul takes ~1 ms: time several
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * inner / best


def load_average() -> float | None:
    """The 1-minute load average (the machine may be shared: figures are noisy above ~cores)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
