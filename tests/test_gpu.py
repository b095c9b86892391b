"""What only a GPU machine would show, checked on CPU: the precision choice, the venv's torch
build, and the first-GPU validation script's dry run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scripts.check_torch import torch_build_problem
from utils.precision import resolve_precision

ROOT = Path(__file__).resolve().parent.parent

CU126 = "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp16")])
def test_auto_precision_takes_bf16_only_where_the_gpu_runs_it_natively(
    monkeypatch, native, expected
):
    # pre-Ampere cards (V100, T4) emulate bf16: slower than their fp16
    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert resolve_precision("auto", torch.device("cuda")) == expected


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_another_torch_spec_rebuilds_the_venv(tmp_path):
    venv = tmp_path / "venv"  # as `make venv` leaves it, with the default (CPU) spec
    venv.mkdir()
    (venv / ".torch-spec").write_text("torch==2.13.0\n")
    (venv / ".installed").touch()

    def dry_run(*spec: str) -> str:
        cmd = ["make", "-n", "-C", str(ROOT), f"VENV={venv}", *spec, "venv"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    assert "pip install" not in dry_run()
    plan = dry_run(f"TORCH_SPEC={CU126}")
    assert "pip uninstall -q -y torch" in plan and f"pip install -q {CU126}" in plan
    assert "check_torch.py" in plan and f"echo '{CU126}' > {venv}/.torch-spec" in plan


def test_a_cuda_index_must_give_a_cuda_torch():
    assert "asks for CUDA 12.6" in torch_build_problem(CU126, "2.13.0+cpu", None)
    assert "has CUDA 12.8" in torch_build_problem(CU126, "2.13.0+cu128", "12.8")
    assert torch_build_problem(CU126, "2.13.0+cu126", "12.6") is None
    assert torch_build_problem("torch==2.13.0", "2.13.0+cpu", None) is None
    pypi = "torch==2.13.0 --index-url https://pypi.org/simple"
    assert "asks for CUDA any" in torch_build_problem(pypi, "2.13.0+cpu", None)
    assert torch_build_problem(pypi, "2.13.0", "13.0") is None


def test_gpu_check_dry_run_writes_every_figure(tmp_path):
    # the first GPU session's script, on the CPU with a tiny model and corpus (the benchmark
    # has its own tests and takes minutes on a CPU at full size)
    out = tmp_path / "out"
    cmd = ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cpu", "--out", str(out),
           "--utterances", "24", "--skip", "bench"]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["versions"]["torch"] == torch.__version__
    assert summary["sdpa_vs_eager"]["max_abs_logit_diff_fp32"] < 1e-4
    assert 0 <= summary["bf16_weights"]["argmax_agreement"] <= 1
    for w in (0, 8):
        assert summary[f"epoch_w{w}"]["audio_s_per_s_whole_run"] > 0
    assert (out / "infer_session1.csv").exists() and summary["ddp"]["skipped"]
