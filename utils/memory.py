"""Keeping freed memory in the process, so large tensors are not faulted in afresh each step.

glibc's malloc serves large blocks (above a threshold that adapts up to 32 MiB) with their own
`mmap` and returns them to the kernel on `free`, and trims the heap's free top. A training step
or a prediction frees and allocates the same large activations again and again (the CNN's
first-layer output of a 4 s utterance is 11-40 MB), so each time the kernel maps fresh zeroed
pages: one fault per 4 KiB. On the 2-core development VM a fault costs ~1.3 us, and the first
conv layer of a batch-1 prediction spent two thirds of its time in them (docs/performance.md).

`retain_freed_memory()` tells malloc to take every block from its heap and to keep what is
freed for reuse. The cost is that the process holds on to its peak heap until it exits, which
is what a training or serving process reaches in its first steps anyway. Only glibc (Linux)
has these settings; elsewhere it does nothing. `MMER_RETAIN_FREED_MEMORY=0` switches it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_MAX = -4
INT_MAX = 2**31 - 1  # mallopt takes a C int

_applied = False


def retain_freed_memory() -> bool:
    """Apply the setting for this process (and the workers it forks); True where it is on."""
    global _applied
    if _applied:
        return True
    switched_off = os.environ.get("MMER_RETAIN_FREED_MEMORY", "1") == "0"
    if switched_off or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own C library
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc (musl, ...): other knobs
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # No block of its own mmap (so none is unmapped on free), and never trim the heap's top.
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, INT_MAX))
    return _applied
