"""train.py and infer.py keep freed memory for reuse (utils/memory.py): a large tensor freed
and allocated again must not be faulted in afresh, and the setting can be switched off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A step allocates, touches and frees four tensors of 36-64 MB (above the largest size glibc
# would ever keep by default; activations of a long utterance). After 20 untimed steps, report
# the page faults of the next 10 and how much the peak resident memory grew in them.
PROBE = """
import json, resource, sys
import torch
from utils.memory import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else False
SIZES = [9_000_000, 16_000_000, 10_000_000, 12_000_000]  # float32 elements
def step(k):
    tensors = [torch.empty(n).fill_(1.0) for n in SIZES[k % 4:] + SIZES[:k % 4]]
    del tensors
for k in range(20):
    step(k)
before = resource.getrusage(resource.RUSAGE_SELF)
for k in range(10):
    step(k)
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"applied": applied, "faults": after.ru_minflt - before.ru_minflt,
                  "peak_growth_mb": (after.ru_maxrss - before.ru_maxrss) / 1024}))
"""

glibc_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="a glibc malloc setting",
)


def probe(how: str, **env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, how], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **env}, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.splitlines()[-1])


@glibc_linux
def test_freed_memory_is_reused_without_page_faults():
    default = probe("default")
    retained = probe("retain")
    pages = 10 * 4 * 47_000_000 // 4096  # every page of 10 steps faulted in again
    assert retained["applied"]
    assert default["faults"] > pages // 2  # glibc maps and unmaps such blocks every time
    assert retained["faults"] < pages // 50
    assert retained["peak_growth_mb"] < 5  # what is kept is reused: it does not pile up


@glibc_linux
def test_the_setting_can_be_switched_off():
    assert not probe("retain", MMER_RETAIN_FREED_MEMORY="0")["applied"]


@glibc_linux
@pytest.mark.parametrize("script,argv", [
    ("train", ["--config", "no/such/config.yaml"]),
    ("infer", ["predict", "--checkpoint", "no/such/checkpoint", "--wav", "x.wav"]),
])  # fmt: skip
def test_train_and_infer_apply_it_at_start(script, argv):
    code = (f"import {script}, utils.memory as m; rc = {script}.main({argv!r}); "
            "print(rc, m._applied)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    rc, applied = out.stdout.split()[-2:]
    assert rc == "2" and applied == "True", out.stderr[-2000:]
