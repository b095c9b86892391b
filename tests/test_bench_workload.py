"""bench/: its workloads, its FLOP count, and that what it times is the real trainer and
Predictor (no timings are asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import breakdown, workload
from bench.bench import parse_args
from bench.corpus import write_corpus
from bench.flops import inference_flops, training_flops
from bench.modes import MODES, experiment
from bench.runner import ModeRunner
from models.audio_encoder import load_encoder_config
from models.batch import Batch
from models.config import MMERConfig
from models.mmer import MMERModel
from training.manifest import read_manifest
from training.trainer import FoldTrainer
from utils import audio as audio_io
from utils.distributed import DistContext

from .conftest import random_view

ROOT = Path(__file__).resolve().parent.parent


def test_lengths_follow_the_workloads():
    lengths = workload.WORKLOADS["base"].lengths(5531, seed=0)
    assert lengths.min() >= 0.6 * 16000 and lengths.max() <= 210000
    assert abs(np.median(lengths) / 16000 - 3.6) < 0.1
    demo = workload.WORKLOADS["demo"].lengths(400, seed=0)
    assert abs(np.median(demo) / 16000 - 2.2) < 0.15


def test_bucketing_with_quantum_padding_pads_less_than_random_batches():
    base = workload.WORKLOADS["base"]
    bucketed = workload.epoch_padding(base, 2, bucket=True, pad_quantum=4000)
    random = workload.epoch_padding(base, 2, bucket=False, pad_quantum=1)
    assert 0 < bucketed < 0.5 * random < 0.5


def test_epoch_flops_match_the_issue_estimate():
    """Issue 7: an IEMOCAP-sized epoch (both views) is about 1.6 PFLOP of training work."""
    lengths = workload.utterance_lengths(5531, seed=0)
    aug = workload.augmented_lengths(lengths)
    enc = load_encoder_config("facebook/wav2vec2-base")
    tokens = [12] * len(lengths)
    total = training_flops([(lengths, tokens), (aug, tokens)], enc, MMERConfig())
    assert 1.3e15 < total < 2.1e15


@pytest.mark.parametrize("frozen", [True, False])
def test_flop_count_is_what_the_model_runs(frozen):
    """The analytic count against torch's FLOP counter on a real forward (+ backward): the
    frozen CNN forward only, the trained one with its input gradient, both views, the CTC
    head on the original only. (Grouped positional convolution off: the counter overcounts
    a grouped convolution's weight gradient.)"""
    cfg = MMERConfig(audio_encoder="wav2vec2-tiny", audio_encoder_pretrained=False, text_dim=48,
                     hidden_size=32, num_attention_heads=4, intermediate_size=64,
                     freeze_feature_encoder=frozen, attention_implementation="eager",
                     audio_encoder_overrides={"num_conv_pos_embedding_groups": 1})  # fmt: skip
    torch.manual_seed(0)
    model = MMERModel(cfg)
    enc = model.audio_encoder.config
    # equal lengths within a view: the counter counts padding, the analytic count does not
    view = random_view((16000, 16000), (6, 6), 48)
    aug = random_view((12000, 12000), (5, 5), 48, seed=1)
    batch = Batch(view, torch.tensor([1, 0]), torch.tensor([[5, 6, 7], [4, -100, -100]]),
                  ["a", "b"], aug)  # fmt: skip
    with FlopCounterMode(display=False) as counted:
        model.compute_objectives(batch).loss.backward()
    expected = training_flops([([16000] * 2, [6] * 2), ([12000] * 2, [5] * 2)], enc, cfg)
    assert counted.get_total_flops() == pytest.approx(expected, rel=0.02)
    model.eval()
    with FlopCounterMode(display=False) as counted, torch.no_grad():
        model(view, with_ctc=False)
    expected = inference_flops([16000] * 2, [6] * 2, enc, cfg)
    assert counted.get_total_flops() == pytest.approx(expected, rel=0.01)


@pytest.fixture(scope="module")
def demo_bench(tmp_path_factory):
    """The demo workload's bench arguments over a small generated corpus (1 timed epoch of 8
    utterances after 1 warm-up, 1 timed inference utterance)."""
    tmp = tmp_path_factory.mktemp("bench")
    args = parse_args(["--workload", "demo", "--epochs", "1", "--warmup", "1",
                       "--utterances", "1", "--infer-batch", "2", "--work-dir", str(tmp)])  # fmt: skip
    sizes = [3, 2, 2, 2, 2]
    corpus = write_corpus(tmp / "corpus", sum(sizes), 384, augmented_audio=True,
                          workload=workload.WORKLOADS["demo"], session_sizes=sizes)  # fmt: skip
    args.corpus_dir = str(tmp / "corpus")
    return args, corpus


def _trainer_as_run_loso_builds_it(mode: str, args, corpus, save: Path) -> FoldTrainer:
    exp = experiment(workload.WORKLOADS["demo"], MODES[mode], corpus, 2, "cpu")
    manifest = read_manifest(exp.data.csv_path, corpus=exp.corpus)
    return FoldTrainer(exp, manifest, 1, save / "fold1", DistContext(), torch.device("cpu"),
                       save / "tb")  # fmt: skip


def test_bench_training_unit_is_the_trainers_epoch(demo_bench, tmp_path):
    """Two bench epochs change the weights exactly as two `FoldTrainer.train_epoch` calls
    on the same experiment do; the audio counted is what the dataset feeds (both views,
    after the crop)."""
    args, corpus = demo_bench
    runner = ModeRunner("fast", args)
    for epoch in range(2):
        runner.train_unit(epoch)
    trainer = _trainer_as_run_loso_builds_it("fast", args, corpus, tmp_path)
    for _ in range(2):
        trainer.train_epoch()
        s = trainer.state
        s.epoch, s.batches_done, s.running, s.running_count = s.epoch + 1, 0, {}, 0
    got, want = runner.trainer.model.state_dict(), trainer.model.state_dict()
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
    torch.manual_seed(trainer.exp.train.seed)
    initial = MMERModel(trainer.exp.model).state_dict()
    assert any(not torch.equal(initial[k], want[k]) for k in want)  # the epochs did train
    ds = trainer.train_set
    aug = sum(min(audio_io.probe(p).samples_16k, ds.max_audio_samples)
              for n in ds.names for p in ds.aug_audio[n])  # fmt: skip
    assert runner.totals["train_audio"] == pytest.approx((sum(ds.lengths) + aug) / 16000)


def test_reference_mode_runs_the_published_choices(demo_bench):
    args, _ = demo_bench
    runner = ModeRunner("reference", args)
    exp = runner.exp
    assert (exp.train.precision, exp.model.attention_implementation) == ("fp32", "eager")
    assert (exp.data.bucket, exp.data.pad_quantum) == (False, 1)
    assert (exp.model.audio_padding, exp.model.fast_dropout) == ("published", False)
    assert not runner.trainer.optimizer.defaults["fused"]
    assert exp.data.cache_audio  # what the mode does not name stays the experiment's
    for command in ("b1 0", "b1 1", "b1 2", "bn 0", "bn 1"):
        kind, i = command.split()
        runner.infer_unit(kind, int(i))
    assert runner.predictor.info.pad_quantum == 1  # the Predictor pads as the mode trains
    result = runner.result()
    assert result["infer_utterances"] == 1 and result["infer_rtf"] > 0
    assert result["infer_rtf_batched"] > 0 and "train_audio_s_per_s" not in result


def test_breakdown_splits_the_real_loop_into_its_parts(demo_bench):
    """`python -m bench.breakdown`: the parts of a training epoch and of batch-1 prediction
    are timed inside the real trainer and Predictor, and nested parts fit in their parents."""
    args, _ = demo_bench
    runner = ModeRunner("fast", args)
    epoch, parts = breakdown.training(runner, epochs=1)
    assert runner.epochs_timed == 1
    forward, encoder = parts["forward (both views, losses)"], parts["  audio encoder"]
    inner = ("    CNN feature encoder", "    positional convolution", "    transformer layers")
    assert 0 < encoder <= forward and parts["backward"] > 0 and parts["optimizer step"] > 0
    assert all(parts[k] > 0 for k in inner) and sum(parts[k] for k in inner) <= encoder
    top = ("forward (both views, losses)", "backward", "optimizer step", "data, bookkeeping")
    assert parts["data, bookkeeping"] >= 0
    assert sum(parts[k] for k in top) == pytest.approx(epoch)
    total, audio, parts = breakdown.prediction(runner)
    assert 0 < parts["  audio encoder"] <= parts["forward"] <= total
    wav = Path(runner.exp.data.audio_dir) / f"{runner.timed_rows.FileName[0]}.wav"
    assert audio == pytest.approx(audio_io.probe(wav).samples_16k / 16000)


def test_make_bench_quick_run_reports_ratios_and_shares_of_peak(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "bench.bench", "--workload", "demo", "--modes", "reference,fast",
           "--epochs", "1", "--warmup", "1", "--train-utterances", "4", "--utterances", "1",
           "--infer-batch", "2", "--peak-n", "256", "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x ref" in proc.stdout and "matmul peak" in proc.stdout
    figures = json.loads(out.read_text())
    assert set(figures["machine"]["matmul_gflops_per_s"]) >= {"fp32"}
    rows = figures["workloads"]["demo"]
    assert rows["reference"]["train_speedup"] == 1.0
    for row in rows.values():
        assert row["train_audio_s_per_s"] > 0 and row["train_gflops_per_s"] > 0
        assert row["train_peak_share"] > 0 and row["infer_b1_peak_share"] > 0
