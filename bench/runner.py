"""One mode of one workload: the real trainer and Predictor, timed one unit of work at a time.

Training: a `FoldTrainer` built as `run_loso` builds it, over the generated corpus on disk
(fold 1: sessions 2-5 train); one unit is `trainer.train_epoch()`, the loop train.py runs
(data loading and decoding, collate and padding, autocast, the loss scaler, accumulation,
the learning-rate schedule, the optimizer). What it was fed is read off the model's input
(`FedBatches`). Inference: the trained model saved with `save_model` and loaded with
`Predictor.load`, as `infer.py` does; batch 1 through `Predictor.predict` on wav files,
batched through `Predictor.evaluate` over a loader of the held-out session (`infer.py
evaluate`). Text embeddings come from the corpus' .npy files in both: the text encoder's
own forward (RoBERTa-base or MiniLM over ~12 tokens) is not timed.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from bench.flops import inference_flops, training_flops
from bench.machine import device_name, physical_cores
from bench.modes import MODES, experiment
from bench.workload import WORKLOADS, epoch_padding
from inference.predictor import Predictor
from models.batch import Batch
from models.checkpoint import CheckpointInfo, save_model
from training.data import MMERDataset, build_loader, load_embedding
from training.manifest import read_manifest, select_groups
from training.trainer import FoldTrainer
from utils.distributed import DistContext
from utils.memory import retain_freed_memory
from utils.precision import resolve_device, resolve_precision

WARMUP_UTTERANCES = 2  # of the held-out session, untimed, before batch-1 and batched inference


class Timer:
    """Wall seconds, synchronising CUDA so queued kernels are counted."""

    def __init__(self, device: torch.device):
        self.device = device

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


class FedBatches:
    """What the trainer feeds its model, seen by a forward pre-hook: per training batch and
    view, the true audio lengths (after the dataset's crop), the padded width and the text
    masks. Kept as tensors until `take()` so that reading them never syncs a GPU mid-epoch."""

    def __init__(self, model: torch.nn.Module):
        self.records: list[list[tuple]] = []
        self.handle = model.register_forward_pre_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], Batch):  # the training call (views come in as Views)
            batch = args[0]
            views = [batch.view] + ([batch.augmented] if batch.augmented is not None else [])
            self.records.append([
                (v.audio_lengths_host if v.audio_lengths_host is not None else v.audio_lengths,
                 v.audio.shape[1], v.text_mask)
                for v in views
            ])  # fmt: skip

    def take(self) -> list[list[tuple[list[int], int, list[int]]]]:
        """[[(samples, padded width, tokens) per view] per batch] since the last call."""
        out = [
            [(lengths.tolist(), width, mask.sum(-1).tolist()) for lengths, width, mask in views]
            for views in self.records
        ]
        self.records = []
        return out


class CorpusEmbeddings:
    """Stands in for the Predictor's text encoder: a transcript's token embeddings read from
    the corpus (what `infer.py evaluate` feeds), so batch-1 prediction times the audio path."""

    def __init__(self, rows, text_dir: Path, text_dim: int):
        names, sentences = rows.FileName, rows.Sentences
        self.paths = {s: Path(text_dir) / f"{n}.npy" for n, s in zip(names, sentences, strict=True)}
        self.text_dim = text_dim

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        return [load_embedding(self.paths[t], self.text_dim)[None] for t in texts]  # (1, T, D)


class ModeRunner:
    """One mode's trainer and Predictor; measures one unit of work per call."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.mode, self.args = name, MODES[name], args
        if self.mode.retain_memory:
            retain_freed_memory()  # as train.py and infer.py do at start
        self.workload = WORKLOADS[args.workload]
        self.device = resolve_device(args.device)
        if self.device.type == "cpu":
            torch.set_num_threads(physical_cores())
        self.timer = Timer(self.device)
        corpus = {k: Path(args.corpus_dir) / k for k in ("wav", "emb", "emb_aug", "wav_aug")}
        corpus["csv"] = Path(args.corpus_dir) / "manifest.csv"
        self.work = Path(args.work_dir) / f"{args.workload}-{name}"
        self.exp = exp = experiment(
            self.workload, self.mode, corpus, args.warmup + args.epochs, args.device
        )
        self.train_precision = resolve_precision(exp.train.precision, self.device)
        manifest = read_manifest(exp.data.csv_path, corpus=exp.corpus)
        self.trainer = FoldTrainer(
            exp, manifest, 1, self.work / "fold1", DistContext(), self.device, self.work / "tb"
        )
        if not self.mode.fused_adamw:  # the published code's optimizer, the same update
            t = exp.train
            params = [p for g in self.trainer.optimizer.param_groups for p in g["params"]]
            self.trainer.optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        self.fed = FedBatches(self.trainer.model)
        self.enc = self.trainer.model.audio_encoder.config
        self.cfg = exp.model

        # inference: the held-out session, WARMUP_UTTERANCES untimed, then the timed ones
        held_out = select_groups(manifest, [1])
        self.warm_rows = held_out.iloc[:WARMUP_UTTERANCES].reset_index(drop=True)
        self.timed_rows = held_out.iloc[WARMUP_UTTERANCES:].reset_index(drop=True)
        self.embeddings = CorpusEmbeddings(held_out, exp.data.text_dir, exp.model.text_dim)
        self.checkpoint_info = CheckpointInfo(
            max_audio_samples=exp.data.max_audio_samples,
            pad_quantum=exp.data.pad_quantum,
            experiment=exp.to_dict(),
        )
        self.predictor: Predictor | None = None
        if self.mode.onnx:  # the graph `infer.py export` writes (of the untrained model)
            from inference.onnx import export_onnx

            export_onnx(self.trainer.model.cpu(), self.checkpoint_info, self.work / "model.onnx")
        self.infer_precision = "fp32" if self.mode.onnx else resolve_precision(
            self.mode.inference_precision, self.device
        )  # fmt: skip
        self.totals = {k: 0.0 for k in ("train_s", "train_audio", "train_flops", "real", "padded",
                                        "b1_s", "bn_s")}  # fmt: skip
        self.epochs_timed = 0

    # -- training --------------------------------------------------------------------------
    def train_unit(self, epoch: int) -> None:
        """Epoch `epoch` (the first `args.warmup` untimed: oneDNN plans, allocations)."""
        if self.mode.onnx:
            return
        trainer, timed = self.trainer, epoch >= self.args.warmup
        if timed and self.epochs_timed == 0 and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)  # peak of steady-state training
        self.fed.take()
        start = self.timer.now()
        trainer.train_epoch()
        elapsed = self.timer.now() - start
        trainer.state.next_epoch()  # as the trainer's epoch loop does after train_epoch
        batches = self.fed.take()
        if not timed:
            return
        self.epochs_timed += 1
        t = self.totals
        t["train_s"] += elapsed
        for views in batches:
            for samples, width, _ in views:
                t["train_audio"] += sum(samples) / 16000
                t["real"] += sum(samples)
                t["padded"] += width * len(samples)
            t["train_flops"] += training_flops(
                [(samples, tokens) for samples, _, tokens in views], self.enc, self.cfg
            )

    # -- inference -------------------------------------------------------------------------
    def _ensure_predictor(self) -> Predictor:
        """The trained model as `infer.py` loads it (native checkpoint or ONNX graph)."""
        if self.predictor is None:
            if self.mode.onnx:
                path = self.work / "model.onnx"
            else:
                path = save_model(self.trainer.model, self.work / "best", self.checkpoint_info)
            self.trainer = None  # training is over: free its model, optimizer and data
            self.predictor = Predictor.load(
                path, device=self.args.device, precision=self.mode.inference_precision,
                batch_size=self.args.infer_batch, log=lambda msg: None,
            )  # fmt: skip
            self.predictor.text_encoder = self.embeddings
        return self.predictor

    def infer_unit(self, kind: str, i: int) -> None:
        """Batch-1 prediction of held-out utterance i (`kind` "b1"; the first
        WARMUP_UTTERANCES untimed), or (`kind` "bn") evaluation of the warm-up utterances
        (i 0, untimed) or of the timed ones (i 1) at batch `--infer-batch`."""
        predictor = self._ensure_predictor()
        if kind == "b1":
            rows = self.warm_rows if i < WARMUP_UTTERANCES else self.timed_rows
            j = i if i < WARMUP_UTTERANCES else i - WARMUP_UTTERANCES
            if j >= len(rows):
                return
            path = Path(self.exp.data.audio_dir) / f"{rows.FileName[j]}.wav"
            start = self.timer.now()
            predictor.predict(path, text=rows.Sentences[j])
            elapsed = self.timer.now() - start
        else:
            if i > 1:
                return
            loader = self._eval_loader(self.warm_rows if i == 0 else self.timed_rows)
            start = self.timer.now()
            predictor.evaluate(loader)
            elapsed = self.timer.now() - start
        if i >= (WARMUP_UTTERANCES if kind == "b1" else 1):
            self.totals[f"{kind}_s"] += elapsed

    def _eval_loader(self, rows):
        """`infer.py evaluate`'s loader (the mode's batching: random batches keep the
        manifest's order, bucketed ones are sorted by length)."""
        d, info = self.exp.data, self._ensure_predictor().info
        dataset = MMERDataset(rows, d.audio_dir, d.text_dir, text_dim=self.cfg.text_dim,
                              max_audio_samples=info.max_audio_samples, log=lambda msg: None)  # fmt: skip
        return build_loader(dataset, self.args.infer_batch, bucket=d.bucket,
                            pad_quantum=info.pad_quantum)  # fmt: skip

    # -- figures ---------------------------------------------------------------------------
    def timed_set(self) -> MMERDataset:
        """The timed held-out utterances as the data code reads them (lengths after the cut)."""
        d = self.exp.data
        return MMERDataset(self.timed_rows, d.audio_dir, d.text_dir, text_dim=self.cfg.text_dim,
                           max_audio_samples=d.max_audio_samples, log=lambda msg: None)  # fmt: skip

    def result(self) -> dict:
        t, d = self.totals, self.exp.data
        timed = self.timed_set()
        tokens = [
            load_embedding(Path(d.text_dir) / f"{n}.npy", self.cfg.text_dim).shape[0]
            for n in timed.names
        ]
        infer_audio = sum(timed.lengths) / 16000
        infer_flops = inference_flops(timed.lengths, tokens, self.enc, self.cfg)
        out = {
            "mode": self.name,
            "workload": self.args.workload,
            **asdict(self.mode),
            "train_precision": None if self.mode.onnx else self.train_precision,
            "infer_precision": self.infer_precision,
            "batch_size": self.exp.train.batch_size,
            "accum_iter": self.exp.train.accum_iter,
            "device": device_name(self.device),
            "threads": torch.get_num_threads(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "infer_utterances": len(timed),
            "infer_audio_s": infer_audio,
            "infer_rtf": t["b1_s"] / infer_audio,
            "infer_rtf_batched": t["bn_s"] / infer_audio,
            "infer_b1_gflops_per_s": infer_flops / t["b1_s"] / 1e9,
            "infer_batched_gflops_per_s": infer_flops / t["bn_s"] / 1e9,
            "padding_fraction_epoch": epoch_padding(
                self.workload, self.exp.train.batch_size, d.bucket, d.pad_quantum, self.args.seed
            ),
        }
        if self.epochs_timed:
            out.update({
                "train_epochs_timed": self.epochs_timed,
                "train_audio_s": t["train_audio"],
                "train_s": t["train_s"],
                "train_audio_s_per_s": t["train_audio"] / t["train_s"],
                "train_gflops_per_s": t["train_flops"] / t["train_s"] / 1e9,
                "train_gflop_per_audio_s": t["train_flops"] / t["train_audio"] / 1e9,
                "padding_fraction_fed": 1.0 - t["real"] / t["padded"],
            })  # fmt: skip
        if self.device.type == "cuda":
            out["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        return out
