"""torch.distributed: 2 gloo processes through torchrun match one process; folds merge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import train
from models.mmer import MMERModel
from utils.experiment import load_experiment

from .conftest import TINY, cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ddp_setup(corpus, tmp_path_factory):
    # A loss that decomposes over utterances (CE only; CTC sums and the contrastive losses
    # compare utterances within a batch), no dropout, random (not length-bucketed) batches
    # so that rank r's k-th batch is half of the single process's k-th batch, and a pad
    # width fixed by the quantum (the group-norm CNN sees the padding).
    tmp = tmp_path_factory.mktemp("ddp")
    no_dropout = {k: 0.0 for k in ("hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout", "layerdrop")}  # fmt: skip
    config = tmp / "ddp.yaml"
    config.write_text(yaml.safe_dump({
        "model": {**TINY, "hidden_dropout": 0.0, "attention_dropout": 0.0, "ctc_dropout": 0.0,
                  "audio_encoder_overrides": no_dropout, "use_ctc": False, "use_scl": False, "use_acl": False},
        "data": {"bucket": False, "pad_quantum": 32000},
        "train": {"epochs": 2, "batch_size": 4, "accum_iter": 2, "lr": 1e-3, "selection": "last", "precision": "fp32"},
    }))  # fmt: skip
    common = ["--config", str(config), "--csv_path", str(corpus["csv"]),
              "--data_path_audio", str(corpus["wav"]), "--data_path_roberta", str(corpus["emb"]),
              "--data_path_audio_augmented", str(corpus["aug"]),
              "--data_path_roberta_augmented", str(corpus["emb_aug"]), "--sessions", "1"]  # fmt: skip
    proc = subprocess.run(
        torchrun(common, tmp / "ddp"),
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terminate called" not in proc.stderr
    return {"config": config, "common": common, "ddp": tmp / "ddp"}


ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def torchrun(common: list[str], save: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            str(ROOT / "train.py"), *common, "--save_path", str(save), "--batch_size", "2", *extra]  # fmt: skip


def weights(run: Path) -> dict:
    return load_file(str(run / "fold1" / "best" / "model.safetensors"))


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(ddp_setup, tmp_path):
    assert train.main([*ddp_setup["common"], "--save_path", str(tmp_path / "single")]) == 0
    single, ddp = weights(tmp_path / "single"), weights(ddp_setup["ddp"])
    torch.manual_seed(0)
    init = MMERModel(load_experiment(ddp_setup["config"]).model).state_dict()
    diff = sum((single[k] - ddp[k]).norm() ** 2 for k in single) ** 0.5
    update = sum((single[k] - init[k]).norm() ** 2 for k in single) ** 0.5
    # Adam turns float-rounding noise in near-zero gradients (e.g. attention key biases, whose
    # exact gradient is 0) into lr-sized steps, so compare against the size of the update.
    assert update > 0 and diff / update < 1e-2, (diff / update).item()
    results = [
        json.loads((r / "results.json").read_text())
        for r in (tmp_path / "single", ddp_setup["ddp"])
    ]
    assert results[0]["folds"]["1"]["test"]["n"] == results[1]["folds"]["1"]["test"]["n"] == 8


def test_ddp_run_killed_mid_epoch_resumes_to_identical_weights(ddp_setup, tmp_path):
    save = tmp_path / "killed"
    cmd = torchrun(ddp_setup["common"], save, "--save_every_steps", "1")
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while (
        not (save / "fold1" / "state.pt").exists()
        and proc.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.005)
    # torchrun starts its workers in their own sessions: kill every process of this run
    subprocess.run(["pkill", "-9", "-f", f"save_path {save}"], check=False)
    proc.wait()
    time.sleep(0.5)
    assert not (save / "results.json").exists(), "the kill came too late to test anything"
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "resuming at epoch" in proc.stdout + proc.stderr
    resumed, uninterrupted = weights(save), weights(ddp_setup["ddp"])
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_folds_trained_as_separate_jobs_merge_into_one_table(reference_run, tmp_path):
    for k in (1, 2):  # as if `--sessions k` had run in its own job directory
        job = tmp_path / f"job{k}"
        shutil.copytree(reference_run / f"fold{k}", job / f"fold{k}")
        shutil.copy(reference_run / "config.yaml", job / "config.yaml")
    assert train.main(["--merge_results", str(tmp_path / "job1"), str(tmp_path / "job2"),
                       "--save_path", str(tmp_path / "merged")]) == 0  # fmt: skip
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    original = json.loads((reference_run / "results.json").read_text())
    assert merged["mean"] == original["mean"] and merged["pooled"] == original["pooled"]
    assert (tmp_path / "merged" / "results.md").exists()


def test_merge_refuses_runs_with_different_configs(reference_run, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(reference_run / "fold1", a / "fold1")
    shutil.copy(reference_run / "config.yaml", a / "config.yaml")
    shutil.copytree(reference_run / "fold2", b / "fold2")
    other = yaml.safe_load((reference_run / "config.yaml").read_text())
    other["train"]["lr"] = 0.5
    (b / "config.yaml").write_text(yaml.safe_dump(other))
    code = train.main(["--merge_results", str(a), str(b), "--save_path", str(tmp_path / "m")])
    assert code == 1 and "different configurations" in capsys.readouterr().err


def test_ddp_with_layerdrop_and_every_loss_completes(corpus, tmp_path):
    # wav2vec2-base trains with LayerDrop: a skipped layer gets no gradient in that step,
    # which plain DDP reports as an error in the next iteration.
    args = [
        *cli(corpus, tmp_path / "ld", "--epochs", "1"),
        "--set",
        "model.audio_encoder_overrides={layerdrop: 0.5}",
    ]
    args[args.index("--sessions") + 1 : args.index("--sessions") + 3] = ["1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "train.py"), *args, "--batch_size", "2"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = json.loads((tmp_path / "ld" / "fold1" / "log.jsonl").read_text().splitlines()[0])
    assert set(log["train"]) == {"loss", "ce", "ctc", "scl", "acl"}
