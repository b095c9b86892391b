"""Leave-one-session-out MMER training: folds, the epoch loop, model selection, resume.

    results = run_loso(load_experiment("configs/mmer.yaml"), "exp/mmer")

Layout of a run directory (`save_path`):
    config.yaml                effective experiment (with the CLI overrides), its hash + data hash
    fold<k>/state.pt           resumable training state (model, optimizer, epoch, sampler, RNG)
    fold<k>/best/              selected model: model.safetensors + config.json (infer.sh loads it)
    fold<k>/log.jsonl          one JSON line per epoch
    fold<k>/result.json        test metrics of the selected model (marks the fold as done)
    fold<k>/predictions.csv    per-utterance predictions on the held-out session
    fold<k>/confusion.png
    tb/fold<k>/                TensorBoard scalars
    results.json, results.md, confusion_pooled.png
Re-running the same command resumes: finished folds are read back, an unfinished fold
continues from its last saved state (end of epoch, or every `save_every_steps` steps).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from models.batch import Batch
from models.checkpoint import CheckpointInfo, load_model, save_model
from models.mmer import MMERModel
from models.objectives import active_losses
from models.text_encoder import read_info as read_text_encoder_info
from training.checkpointer import Checkpointer, CudaRNG, TorchRNG
from training.data import MMERDataset, build_loader, loader_settings, set_epoch
from training.evaluation import Predictions, gather_predictions, predict
from training.experiment import Experiment
from training.manifest import DataError, format_skipped, read_manifest
from training.schedule import scheduled_lr
from utils.distributed import DistContext, all_max, barrier
from utils.errors import TrainingError
from utils.io import remove_stale_temporaries, write_json_atomic, write_text_atomic
from utils.metrics import compute_metrics, summarize_folds
from utils.precision import autocast, resolve_precision
from utils.reporting import plot_confusion, write_predictions_csv, write_results_md

SELECTION_NOTES = {
    "val": "best epoch by UA on validation data that is not the test data (a stratified split "
    "of the training sessions, or the release's development set); the test data are used "
    "once, at the end",
    "heldout": "best epoch by UA on the test session itself (the published protocol; "
    "optimistic, for reproduction only)",
    "last": "the model after the last epoch",
}


class Interrupted(Exception):
    """Ctrl-C / SIGTERM: the state was saved; re-running the same command resumes."""


@dataclass
class FoldState:
    """The fold's counters: with the weights, optimizer and RNG, everything needed to continue
    exactly where it stopped (the sampler's position is (epoch, batches_done))."""

    epoch: int = 0  # epoch in progress (or next to start)
    batches_done: int = 0  # batches of `epoch` already trained on
    optimizer_steps: int = 0
    bad_steps: int = 0
    best_ua: float = -1.0
    best_epoch: int = -1
    running: dict[str, float] = field(default_factory=dict)  # sums of loss parts this epoch
    running_count: int = 0
    history: list[dict] = field(default_factory=list)  # one record per finished epoch

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restored = FoldState(**state)  # in place: the checkpointer holds this object
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(restored, f.name))

    def next_epoch(self) -> None:
        """Count the epoch as done: the next one starts at its first batch, with fresh sums."""
        self.epoch += 1
        self.batches_done = 0
        self.running, self.running_count = {}, 0

    def mean_losses(self) -> dict[str, float]:
        """The epoch's mean loss parts over its finite micro-batches so far."""
        return {k: v / max(1, self.running_count) for k, v in self.running.items()}


class MicroBatch(NamedTuple):
    """What `forward_backward` leaves for the end of the accumulation window, still on the
    device (read back once per window)."""

    record: torch.Tensor  # (1 + parts,) float64: non-finite flag, then the loss parts
    names: tuple[str, ...]  # the parts' names: "loss", "ce", the auxiliary losses


# -- entry point ---------------------------------------------------------------------------
def run_loso(
    exp: Experiment,
    save_path: str | Path,
    ctx: DistContext | None = None,
    device: torch.device | None = None,
) -> dict:
    """Train and test every fold of `exp.folds` (the chosen IEMOCAP sessions, or a corpus'
    test partition); write and return results.json's content."""
    ctx = ctx or DistContext()
    device = device or torch.device("cpu")
    save_path = Path(save_path)
    check_data_paths(exp)
    if ctx.is_main:
        remove_stale_temporaries(save_path)  # an earlier run killed mid-write
    skipped: list[tuple[str, str]] = []
    manifest = read_manifest(
        exp.data.csv_path, on_bad_input=exp.data.on_bad_input, skipped=skipped, corpus=exp.corpus
    )
    _write_effective_config(exp, save_path, ctx, data_hash(manifest))
    folds = {}
    for fold in exp.folds:
        fold_dir = save_path / exp.corpus.fold_dir_name(fold)
        done = fold_dir / "result.json"
        if done.exists():
            _log(ctx, f"fold {fold}: already done ({done}), reading it back")
            folds[fold] = json.loads(done.read_text())
            continue
        folds[fold] = FoldTrainer(
            exp, manifest, fold, fold_dir, ctx, device, save_path / "tb"
        ).run()
    results = _summarize(exp, folds, save_path, skipped, ctx.is_main)
    if ctx.is_main:
        write_json_atomic(save_path / "results.json", results)
        print(write_results_md(results, save_path / "results.md"))
        _report_skipped(results)
        _log(ctx, f"results: {save_path / 'results.json'}, {save_path / 'results.md'}")
    barrier(ctx)
    return results


PREPARE_HINT = (
    "Prepare the data first (README, 'Training on IEMOCAP'):\n"
    "  python data_prep/prepare_iemocap.py --corpus data/IEMOCAP_full_release "
    "--out_csv data/iemocap.csv --out_wav_dir data/iemocap\n"
    "  python data_prep/embed_text.py --csv data/iemocap.csv --out_dir data/roberta "
    "--aug_out_dir data/roberta_augmented"
)


def check_data_paths(exp: Experiment) -> None:
    """The manifest and the data directories a run needs exist (after every override)."""
    d = exp.data
    needed = [("manifest CSV", d.csv_path, Path.is_file)]
    if exp.model.uses_audio:
        needed.append(("audio directory", d.audio_dir, Path.is_dir))
    if exp.model.uses_text:
        needed.append(("text-embedding directory", d.text_dir, Path.is_dir))
    for what, path, exists in needed:
        if not exists(Path(path)):
            raise DataError(f"{what} not found: {Path(path).resolve()}\n{PREPARE_HINT}")


# -- one fold ------------------------------------------------------------------------------
class FoldTrainer:
    """Trains, selects and tests the model of one fold.

    The task-specific part is the model's `compute_objectives` (batch -> `Objectives`); the
    loop here calls named steps: `forward_backward` per micro-batch, `close_window` and
    `optimizer_step` per accumulation window, `evaluate` and `checkpoint` per epoch. The
    resumable state (model, optimizer, scaler, counters, RNG) is registered once with
    `self.checkpointer`.
    """

    def __init__(
        self,
        exp: Experiment,
        manifest: pd.DataFrame,
        fold: int | str,
        fold_dir: Path,
        ctx: DistContext,
        device: torch.device,
        tb_dir: Path,
    ):
        self.exp, self.fold, self.dir, self.ctx, self.device = exp, fold, fold_dir, ctx, device
        self.precision = resolve_precision(exp.train.precision, device)
        self.tb_dir = tb_dir / fold_dir.name
        text_encoder = read_text_encoder_info(exp.data.text_dir) if exp.model.uses_text else None
        # what `fold<k>/best` tells a Predictor about the inputs the model expects
        self.checkpoint_info = CheckpointInfo(
            max_audio_samples=exp.data.max_audio_samples,
            pad_quantum=exp.data.pad_quantum,
            text_encoder=text_encoder.to_dict() if text_encoder else None,
            experiment=exp.to_dict(),
        )
        self._build_data(manifest)
        self._build_model()
        # only where there is audio to fall back on (a text-only ablation trains as configured)
        both = exp.model.uses_audio and exp.model.uses_text
        self.drop_text_share = exp.train.text_dropout_utterances if both else 0.0
        self.state = FoldState()
        self.checkpointer = Checkpointer(self.dir / "state.pt", exp.hash())
        for name, obj in (
            ("model", self.model),
            ("optimizer", self.optimizer),
            ("scaler", self.scaler),
            ("fold", self.state),
            ("torch_rng", TorchRNG()),
            ("cuda_rng", CudaRNG(device)),
        ):
            self.checkpointer.register(name, obj)
        self._stop_requested = False

    def _build_data(self, manifest: pd.DataFrame) -> None:
        """The fold's datasets (train, model selection, test) and their loaders."""
        exp, t, d, ctx, fold = self.exp, self.exp.train, self.exp.data, self.ctx, self.fold
        train_rows, release_select, test_rows = exp.corpus.split(manifest, fold)
        for what, rows in (("training", train_rows), ("test", test_rows)):
            if rows.empty:
                raise DataError(f"fold {fold} of {exp.corpus.name}: no {what} rows in the manifest")
        select_rows = None
        if t.selection == "val":  # the release's development set, or a split of training data
            if release_select is not None and not release_select.empty:
                select_rows = release_select
            else:
                train_rows, select_rows = validation_split(train_rows, t.val_fraction, t.seed)
        elif t.selection == "heldout":
            select_rows = test_rows

        common = dict(
            text_dim=exp.model.text_dim,
            max_audio_samples=d.max_audio_samples,
            seed=t.seed,
            on_bad_input=d.on_bad_input,
            cache_audio=d.cache_audio,
            log=lambda msg: _log(ctx, f"fold {fold}: {msg}"),
        )
        self.train_set = MMERDataset(
            train_rows, d.audio_dir, d.text_dir, training=True, augment="acl" in active_losses(exp.model),
            aug_text_dir=d.augmented_text_dir, aug_audio_dir=d.augmented_audio_dir, **common,
        )  # fmt: skip
        self.test_set = MMERDataset(test_rows, d.audio_dir, d.text_dir, **common)
        self.select_set = None
        if t.selection == "val":
            self.select_set = MMERDataset(select_rows, d.audio_dir, d.text_dir, **common)
        elif t.selection == "heldout":
            self.select_set = self.test_set
        shard = dict(num_replicas=ctx.world_size, rank=ctx.rank, pad_quantum=d.pad_quantum)
        per_node = torch.cuda.device_count() if self.device.type == "cuda" else 1
        feed = loader_settings(self.device, t.num_workers, min(per_node, ctx.world_size))
        self.train_loader = build_loader(
            self.train_set, t.batch_size, bucket=d.bucket, seed=t.seed, **feed, **shard
        )
        self.eval_loaders = {
            name: build_loader(ds, t.eval_batch_size, **feed, **shard)
            for name, ds in (("select", self.select_set), ("test", self.test_set))
            if ds is not None
        }

    def _build_model(self) -> None:
        """The model (DDP-wrapped as `self.ddp` under a launcher), AdamW and the loss scaler."""
        t, device = self.exp.train, self.device
        torch.manual_seed(t.seed)  # identical initial weights on every rank and every run
        self.model = MMERModel(self.exp.model).to(device)
        # fused: one kernel for the whole update (CPU and CUDA); the same AdamW math
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=t.lr,
            weight_decay=t.weight_decay,
            fused=True,
        )
        self.ddp = self.model
        if self.ctx.enabled:
            # wav2vec2's LayerDrop skips whole layers at random: their weights then get no
            # gradient in that step, which DDP must be told to expect.
            encoder = getattr(self.model, "audio_encoder", None)
            layerdrop = getattr(getattr(encoder, "config", None), "layerdrop", 0.0) or 0.0
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=layerdrop > 0,
            )
        # fp16 needs loss scaling against underflowing gradients; bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")

    # -- the fold: epochs, model selection, test -----------------------------------------------
    def run(self) -> dict:
        t, s = self.exp.train, self.state
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.checkpointer.load():
            _log(self.ctx, f"fold {self.fold}: resuming at epoch {s.epoch + 1}, "
                 f"batch {s.batches_done}")  # fmt: skip
        _log(self.ctx, f"fold {self.fold}: train {len(self.train_set)}, "
             f"{t.selection} selection, test {len(self.test_set)} utterances; "
             f"device {self.device}, precision {self.precision}")  # fmt: skip
        writer = _tensorboard(self.tb_dir) if self.ctx.is_main else None
        with _stop_on_signals(self):
            while s.epoch < t.epochs:
                losses = self.train_epoch()
                record = {
                    "epoch": s.epoch + 1,
                    "train": losses,
                    "optimizer_steps": s.optimizer_steps,
                    "lr": self.optimizer.param_groups[0]["lr"],  # of the epoch's last step
                }
                if "select" in self.eval_loaders:
                    record[t.selection] = self.select()
                self.end_epoch(record, writer)
        if t.selection == "last" and self.ctx.is_main:
            s.best_epoch = t.epochs
            save_model(self.model, self.dir / "best", self.checkpoint_info)
        barrier(self.ctx)
        if writer is not None:
            writer.close()
        return self.test()

    def select(self) -> dict:
        """Score the epoch's model on the selection data; keep it in `best/` if it is the best
        so far. Returns the brief metrics for the log."""
        s = self.state
        metrics = self.evaluate("select").metrics()
        if metrics["ua"] > s.best_ua:
            s.best_ua, s.best_epoch = metrics["ua"], s.epoch + 1
            if self.ctx.is_main:
                save_model(self.model, self.dir / "best", self.checkpoint_info)
        return _brief(metrics)

    def end_epoch(self, record: dict, writer: Any) -> None:
        """Count the epoch as done, log it and save the state."""
        s = self.state
        s.next_epoch()
        s.history.append(record)
        if self.ctx.is_main:
            write_text_atomic(
                self.dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in s.history)
            )
            _log_scalars(writer, record)
        self.checkpoint()  # after the best model: a kill in between redoes the epoch end
        barrier(self.ctx)

    def checkpoint(self) -> None:
        """Save the resumable state (`state.pt`); rank 0 writes it for every rank."""
        if self.ctx.is_main:
            self.checkpointer.save()

    # -- one epoch: the steps ------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        """Train on the rest of the current epoch; returns its mean loss parts."""
        s = self.state
        self._start_epoch()
        bar = tqdm(
            total=self.batches_per_epoch, initial=s.batches_done, leave=False,
            desc=f"fold {self.fold} epoch {s.epoch + 1}/{self.exp.train.epochs}",
            disable=not self.ctx.is_main, dynamic_ncols=True,
        )  # fmt: skip
        window: list[MicroBatch] = []  # the current accumulation window's micro-batches
        for batch in self.train_loader:
            index = s.batches_done
            window.append(self.forward_backward(batch, index))
            s.batches_done += 1
            bar.update(1)
            if not self.window_ends(index):
                continue
            stop, skip = self.close_window(window, first=index + 1 - len(window))
            window = []
            if skip:
                self.optimizer.zero_grad(set_to_none=True)  # the window's gradients go unused
            else:
                self.optimizer_step()
            if self._periodic_save_due() or stop:
                self.checkpoint()
            if stop:
                raise Interrupted(
                    f"stopped at epoch {s.epoch + 1}, batch {s.batches_done}; state saved"
                )
            bar.set_postfix({k: f"{v:.3f}" for k, v in s.mean_losses().items()})
        bar.close()
        return s.mean_losses()

    @property
    def batches_per_epoch(self) -> int:
        return len(self.train_loader.batch_sampler)

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the whole run (the schedule's length)."""
        t = self.exp.train
        return t.epochs * math.ceil(self.batches_per_epoch / t.accum_iter)

    def window_ends(self, index: int) -> bool:
        """Whether batch `index` (0-based, of the epoch) closes an accumulation window: every
        `accum_iter` batches, and at the epoch's end."""
        return (index + 1) % self.exp.train.accum_iter == 0 or index + 1 == self.batches_per_epoch

    def _start_epoch(self) -> None:
        """Point the sampler at the current epoch and, on resume, past its finished batches."""
        s = self.state
        set_epoch(self.train_loader, s.epoch)
        self.train_loader.batch_sampler.load_state_dict(
            {"epoch": s.epoch, "batches_consumed": s.batches_done}
        )
        self.ddp.train()

    def forward_backward(self, batch: Batch, index: int) -> MicroBatch:
        """Loss and gradients of micro-batch `index`, scaled for accumulation.

        Text dropout is drawn from (seed, epoch, index); under DDP the gradients are
        all-reduced only at the window's last micro-batch. No host sync.
        """
        t = self.exp.train
        accumulate = self.ctx.enabled and not self.window_ends(index)
        if self.drop_text_share:
            batch = drop_text(batch, self.drop_text_share, (t.seed, self.state.epoch, index))
        with self.ddp.no_sync() if accumulate else contextlib.nullcontext():
            with autocast(self.device, self.precision):
                objectives = self.ddp(batch.to(self.device))  # compute_objectives
            self.scaler.scale(objectives.loss / t.accum_iter).backward()
        parts = objectives.parts()
        bad = ~torch.isfinite(parts["loss"])
        record = torch.stack([bad.double(), *(v.double() for v in parts.values())])
        return MicroBatch(record, tuple(parts))

    def close_window(self, window: list[MicroBatch], first: int) -> tuple[bool, bool]:
        """End of an accumulation window: the one host sync and the one collective of a step.

        The ranks agree (one all-reduce of max) on which micro-batches had a non-finite loss
        anywhere and on whether any rank was asked to stop, so they all skip or take the same
        step and stop at the same one. Finite micro-batches' parts join the running sums.
        Returns (stop, skip the step). `first` is the window's first batch index.
        """
        t, s = self.exp.train, self.state
        records = torch.stack([m.record for m in window])  # (micro-batches, 1 + parts)
        names = window[-1].names
        stop = torch.tensor([float(self._stop_requested)]).to(self.device, non_blocking=True)
        flags = all_max(torch.cat([records[:, 0], stop]), self.ctx)
        host = torch.cat([flags, records[:, 1:].flatten()]).tolist()
        n = len(window)
        bad, stop_agreed, values = host[:n], host[n] > 0, host[n + 1 :]
        for j in range(n):
            if bad[j] > 0:
                s.bad_steps += 1
                _log(self.ctx, f"fold {self.fold}: non-finite loss at epoch {s.epoch + 1} batch "
                     f"{first + j + 1} ({s.bad_steps} so far); its accumulation window is skipped")  # fmt: skip
                continue
            for k, v in zip(names, values[j * len(names) : (j + 1) * len(names)], strict=True):
                s.running[k] = s.running.get(k, 0.0) + v
            s.running_count += 1
        if s.bad_steps > t.max_bad_steps:
            raise TrainingError(
                f"more than {t.max_bad_steps} non-finite losses; check the data (NaN in "
                "embeddings or audio?) or lower the learning rate"
            )
        return stop_agreed, any(b > 0 for b in bad)

    def optimizer_step(self) -> None:
        """Set the scheduled learning rate, step (through the loss scaler), clear gradients."""
        s = self.state
        lr = scheduled_lr(self.exp.train, s.optimizer_steps, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.scaler.step(self.optimizer)
        self.scaler.update()
        s.optimizer_steps += 1
        self.optimizer.zero_grad(set_to_none=True)

    def _periodic_save_due(self) -> bool:
        """`save_every_steps` is due, and the epoch is not over (its end saves anyway)."""
        every, s = self.exp.train.save_every_steps, self.state
        return (
            bool(every)
            and s.optimizer_steps % every == 0
            and s.batches_done < self.batches_per_epoch
        )

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, which: str) -> Predictions:
        """Predictions on "select" or "test", gathered from every rank."""
        preds = predict(self.model, self.eval_loaders[which], self.device, self.precision)
        return gather_predictions(preds, self.ctx)

    def test(self) -> dict:
        """Test the selected model on the held-out session; write the fold's outputs."""
        best = load_model(self.dir / "best", device=self.device)
        self.model.load_state_dict(best.state_dict())
        preds = self.evaluate("test")
        metrics = preds.metrics()
        result = {
            "fold": self.fold,
            **({"session": self.fold} if self.exp.corpus.protocol == "leave_one_group_out" else {}),
            "test": metrics,
            "best_epoch": self.state.best_epoch,
            "selection": self.exp.train.selection,
            "selection_ua": self.state.best_ua if self.exp.train.selection != "last" else None,
            "non_finite_steps": self.state.bad_steps,
            "skipped": [list(x) for x in self.train_set.skipped + self.test_set.skipped],
        }
        if self.ctx.is_main:
            write_predictions_csv(preds, self.dir / "predictions.csv")
            plot_confusion(metrics["confusion"], self.dir / "confusion.png",
                           f"{self.exp.corpus.name} {self.dir.name} (UA {100 * metrics['ua']:.1f})")  # fmt: skip
            write_json_atomic(self.dir / "result.json", result)
            _log(self.ctx, f"fold {self.fold}: test WA {metrics['wa']:.4f} UA {metrics['ua']:.4f} "
                 f"F1 {metrics['macro_f1']:.4f} (epoch {self.state.best_epoch})")  # fmt: skip
        barrier(self.ctx)
        return result


# -- helpers -------------------------------------------------------------------------------
def drop_text(batch: Batch, share: float, key: tuple[int, ...]) -> Batch:
    """`batch` with the text embeddings of about `share` of its utterances zeroed.

    Which ones is drawn from `key` (seed, epoch, batch index) alone, not from the global RNG
    state: a resumed run drops the same utterances as an uninterrupted one.
    """
    rng = np.random.default_rng(list(key))
    drop = torch.from_numpy(rng.random(len(batch)) < share)
    if not drop.any():
        return batch
    text = batch.view.text.clone()
    text[drop] = 0.0
    return dataclasses.replace(batch, view=dataclasses.replace(batch.view, text=text))


def validation_split(
    rows: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded split of the training sessions: (train, validation).

    Each class gives round(fraction * n) utterances, at least one when it has two or more,
    so every class is represented in model selection even on small corpora.
    """
    rng = np.random.default_rng(seed)
    val_idx = []
    for _, group in rows.groupby("label", sort=True):
        n = len(group)
        k = max(1, round(fraction * n)) if n >= 2 else 0
        val_idx += rng.choice(group.index.to_numpy(), size=k, replace=False).tolist()
    val = rows.loc[sorted(val_idx)]
    return rows.drop(index=val.index).reset_index(drop=True), val.reset_index(drop=True)


def _summarize(
    exp: Experiment, folds: dict, save_path: Path, skipped: list, is_main: bool = True
) -> dict:
    fold_metrics = [f["test"] for f in folds.values()]
    pooled_cm = np.sum([np.asarray(m["confusion"]) for m in fold_metrics], axis=0)
    y_true = np.repeat(np.arange(len(pooled_cm)), pooled_cm.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(len(row)), row) for row in pooled_cm])
    pooled = compute_metrics(y_true, y_pred, len(pooled_cm))
    if is_main:
        plot_confusion(pooled["confusion"], save_path / "confusion_pooled.png",
                       f"All folds pooled (UA {100 * pooled['ua']:.1f})")  # fmt: skip
    return {
        "corpus": exp.corpus.name,
        "protocol": exp.corpus.protocol,
        "selection": exp.train.selection,
        "selection_note": SELECTION_NOTES[exp.train.selection],
        "config_hash": exp.hash(),
        "folds": {str(k): v for k, v in folds.items()},
        "mean": summarize_folds(fold_metrics),
        "pooled": pooled,
        "skipped_manifest_rows": [list(x) for x in skipped],
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _report_skipped(results: dict) -> None:
    """List every item skipped under on_bad_input=skip (also in results.json)."""
    items = {tuple(x) for x in results["skipped_manifest_rows"]}
    for fold in results["folds"].values():
        items |= {tuple(x) for x in fold.get("skipped", [])}
    if items:
        print(format_skipped(sorted(items)))


def data_hash(manifest: pd.DataFrame) -> str:
    """A short hash of what a run learns from and is tested on: every utterance's name, class
    and transcript (not the paths, which may move, and not the audio samples, which would mean
    reading the corpus)."""
    rows = manifest[["FileName", "label", "text"]].sort_values("FileName")
    return hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()[:12]


def _write_effective_config(exp: Experiment, save_path: Path, ctx: DistContext, data: str) -> None:
    """config.yaml, headed by the config and data hashes; a run directory that already holds
    trained folds must have been trained with the same configuration on the same data (runs
    made before the data hash was recorded are checked on the configuration alone)."""
    path = save_path / "config.yaml"
    config = f"# config hash {exp.hash()}"
    trained = any(save_path.glob("fold[1-5]/state.pt")) or any(
        save_path.glob("fold[1-5]/result.json")
    )
    if path.exists() and trained:
        old_config, _, old_data = (
            path.read_text(encoding="utf-8").splitlines()[0].partition("; data ")
        )
        if old_config != config:
            raise TrainingError(
                f"{save_path} holds a run with another configuration ({old_config}); use a new "
                "--save_path, or delete it to start over"
            )
        if old_data and old_data != data:
            raise TrainingError(
                f"{save_path} holds a run trained on other data (data hash {old_data}; "
                f"{exp.data.csv_path} gives {data}: utterance names, labels or transcripts "
                "differ); use a new --save_path, or delete it to start over"
            )
    if ctx.is_main:
        write_text_atomic(path, f"{config}; data {data}\n{exp.to_yaml()}")


def _brief(metrics: dict) -> dict:
    return {k: round(metrics[k], 5) for k in ("wa", "ua", "macro_f1")}


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional at run time
        return None
    return SummaryWriter(str(path))


def _log_scalars(writer: Any, record: dict) -> None:
    if writer is None:
        return
    if "lr" in record:
        writer.add_scalar("train/lr", record["lr"], record["epoch"])
    for group, values in record.items():
        if isinstance(values, dict):
            for k, v in values.items():
                writer.add_scalar(f"{group}/{k}", v, record["epoch"])
    writer.flush()


def _log(ctx: DistContext, msg: str) -> None:
    if ctx.is_main:
        tqdm.write(msg)


@contextlib.contextmanager
def _stop_on_signals(trainer: FoldTrainer):
    """First Ctrl-C / SIGTERM: finish the current optimizer step, save, stop. Second: stop now."""

    def request_stop(signum, frame):
        if trainer._stop_requested:
            raise KeyboardInterrupt
        trainer._stop_requested = True
        _log(trainer.ctx, "stopping after this optimizer step (press Ctrl-C again to abort now)")

    try:
        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def merge_runs(run_dirs: list[Path], save_path: Path) -> dict:
    """Combine folds trained as separate jobs (`--sessions k` each) into one results table.

    All runs must share the configuration (same hash); each fold may appear only once.
    """
    from training.experiment import load_experiment

    exps = {d: load_experiment(d / "config.yaml") for d in run_dirs}
    hashes = {e.hash() for e in exps.values()}
    if len(hashes) != 1:
        raise TrainingError(
            f"runs have different configurations ({sorted(hashes)}); refusing to merge"
        )
    folds: dict = {}
    for d in run_dirs:
        for result in sorted(d.glob("*/result.json")):
            fold = json.loads(result.read_text())
            key = fold.get("fold", fold.get("session"))
            if key in folds:
                raise TrainingError(f"fold {key} appears in more than one run ({result})")
            folds[key] = fold
    if not folds:
        raise TrainingError(
            f"no finished folds (fold*/result.json) under {[str(d) for d in run_dirs]}"
        )
    exp = next(iter(exps.values()))
    save_path.mkdir(parents=True, exist_ok=True)
    results = _summarize(exp, dict(sorted(folds.items(), key=lambda kv: str(kv[0]))), save_path, [])
    results["merged_from"] = [str(d) for d in run_dirs]
    write_json_atomic(save_path / "results.json", results)
    print(write_results_md(results, save_path / "results.md"))
    return results
