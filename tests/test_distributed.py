"""torch.distributed: 2 gloo processes through torchrun match one process; folds merge;
the CUDA paths (device-aware process group, collectives on the rank's device, one agreed
all-reduce per optimizer step) checked on CPU with fakes for what only a GPU has."""

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
import torch.distributed as dist
import yaml
from safetensors.torch import load_file

import train
from models.mmer import MMERModel
from training.experiment import load_experiment
from training.trainer import Interrupted, run_loso
from utils import distributed
from utils.distributed import DistContext, DistributedError, all_max, init_distributed

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
              "--data_path_roberta_augmented", str(corpus["emb_aug"]), "--sessions", "1",
              "--device", "cpu"]  # fmt: skip
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
           str(ROOT / "train.py"), *args, "--batch_size", "2", "--device", "cpu"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = json.loads((tmp_path / "ld" / "fold1" / "log.jsonl").read_text().splitlines()[0])
    assert set(log["train"]) == {"loss", "ce", "ctc", "scl", "acl"}


# -- CUDA paths without a GPU -----------------------------------------------------------------
@pytest.fixture
def fake_gpus(monkeypatch):
    """A launcher's rank on a machine with `n` fake GPUs; records the backend and GPU chosen."""
    seen: dict = {}

    def setup(n: int, local_rank: int) -> dict:
        for k, v in {
            "RANK": str(local_rank),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": str(local_rank),
        }.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "set_device", lambda d: seen.__setitem__("gpu", d))
        monkeypatch.setattr(dist, "is_initialized", lambda: False)
        monkeypatch.setattr(
            dist, "init_process_group", lambda backend: seen.__setitem__("backend", backend)
        )
        return seen

    return setup


@pytest.mark.parametrize("spec", ["auto", "cuda", "cuda:0"])
def test_every_cuda_spec_gives_the_local_ranks_gpu_and_a_group_that_also_serves_cpu(
    fake_gpus, spec
):
    # NCCL has no CPU backend: an NCCL-only group fails at the first CPU collective
    seen = fake_gpus(n=2, local_rank=1)
    ctx, device = init_distributed(spec)
    assert device == ctx.device == torch.device("cuda:1") and seen["gpu"] == 1
    assert seen["backend"] == "cpu:gloo,cuda:nccl"


def test_cpu_spec_under_a_launcher_stays_on_gloo(fake_gpus):
    seen = fake_gpus(n=2, local_rank=1)
    ctx, device = init_distributed("cpu")
    assert device == ctx.device == torch.device("cpu") and seen == {"backend": "gloo"}


@pytest.mark.parametrize("gpus", [0, 1])
def test_a_local_rank_without_a_gpu_is_one_clear_error(fake_gpus, gpus):
    seen = fake_gpus(n=gpus, local_rank=1)
    with pytest.raises(DistributedError) as err:
        init_distributed("cuda" if gpus == 0 else "auto")
    assert f"LOCAL_RANK 1 has no GPU: this machine has {gpus}" in str(err.value)
    assert "\n" not in str(err.value) and "gpu" not in seen


def test_all_max_puts_its_tensor_on_the_ranks_device(monkeypatch):
    # NCCL's rule, simulated: a collective's tensors must live on the rank's device (a GPU
    # there; the meta device here, which no CPU tensor can pass for)
    ctx = DistContext(0, 2, 0, torch.device("meta"))
    seen = []
    monkeypatch.setattr(dist, "all_reduce", lambda t, op=None: seen.append(t.device))
    out = all_max(torch.zeros(3), ctx)
    assert seen == [ctx.device] and out.device == ctx.device


@pytest.fixture
def rank0_of_2(monkeypatch):
    """This process as rank 0 of a 2-process run: a real one-member gloo group for DDP, and
    torch.distributed's collectives replaced by fakes that check their tensors' device and
    record the reduced flags. `peer_stops_at` plays the other rank receiving SIGTERM."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    ctx = DistContext(0, 2, 0, torch.device("cpu"))
    calls: list[torch.Tensor] = []
    peer = {"stops_at": None}

    def all_reduce(t, op=None):
        assert isinstance(t, torch.Tensor) and t.device == ctx.device, t.device
        calls.append(t.clone())
        if peer["stops_at"] == len(calls):
            t[-1] = 1.0  # the other rank's stop request, combined by max

    def all_gather_object(out, obj, group=None):
        out[:] = [obj] * len(out)

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    monkeypatch.setattr(distributed.dist, "barrier", lambda *a, **k: None)
    yield ctx, calls, peer
    dist.destroy_process_group()


def _experiment(corpus, **train_overrides):
    overrides = {"model": {}, "data": {"csv_path": str(corpus["csv"]), "audio_dir": str(corpus["wav"]),
                 "text_dir": str(corpus["emb"]), "augmented_audio_dir": str(corpus["aug"]),
                 "augmented_text_dir": str(corpus["emb_aug"])},
                 "train": {"sessions": [1], "batch_size": 2, "accum_iter": 2, "device": "cpu",
                           **train_overrides}}  # fmt: skip
    return load_experiment(corpus["config"], overrides)


def test_one_all_reduce_per_optimizer_step_on_the_ranks_device(corpus, tmp_path, rank0_of_2):
    ctx, calls, _ = rank0_of_2
    exp = _experiment(corpus, epochs=1)
    run_loso(exp, tmp_path / "run", ctx, torch.device("cpu"))
    state = torch.load(tmp_path / "run" / "fold1" / "state.pt", weights_only=True)
    steps = state["fold"]["optimizer_steps"]
    assert steps >= 2 and len(calls) == steps  # not one per micro-batch
    # each: the non-finite flags of the window's micro-batches (accum_iter 2, or 1 at the
    # epoch's end) and the stop flag
    assert all(2 <= c.numel() <= 3 for c in calls)


def test_a_stop_on_another_rank_stops_this_one_at_the_same_step(corpus, tmp_path, rank0_of_2):
    ctx, calls, peer = rank0_of_2
    peer["stops_at"] = 2  # the peer got SIGTERM before the second step; this rank did not
    exp = _experiment(corpus, epochs=2)
    with pytest.raises(Interrupted):
        run_loso(exp, tmp_path / "run", ctx, torch.device("cpu"))
    state = torch.load(tmp_path / "run" / "fold1" / "state.pt", weights_only=True)
    assert state["fold"]["optimizer_steps"] == 2 and len(calls) == 2
