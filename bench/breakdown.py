"""Where the time of the real loop goes: one mode's training epochs and batch-1 predictions,
split by component with wall-clock hooks (no profiler: torch.profiler inflates oneDNN
convolutions and copies on this kind of machine several-fold, so its per-op times misled).

    python -m bench.breakdown                          # base workload, the fast mode
    python -m bench.breakdown --mode reference --epochs 2 --utterances 20

The mode is built as `python -m bench.bench` builds it (bench/runner.py: the real
`FoldTrainer` and `Predictor` over a generated corpus on disk). Training is split into data
(loading, decoding, collate: the epoch minus the steps), the forward pass (both views and
the losses) with its audio encoder's parts (frozen CNN, positional convolution, transformer
layers), the backward pass and the optimizer step; prediction into the same forward parts
and the rest (decoding, resampling, softmax). Nested parts are included in their parents.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from bench.bench import parse_args as bench_args
from bench.bench import workload_corpus
from bench.machine import device_name
from bench.modes import MODES
from bench.runner import WARMUP_UTTERANCES, ModeRunner
from bench.workload import WORKLOADS
from models.batch import Batch


class Clock:
    """Seconds spent inside named modules' forward calls (summed over calls)."""

    def __init__(self):
        self.seconds: Counter[str] = Counter()
        self.handles = []

    def watch(self, module: torch.nn.Module, name: str, when=lambda args: True) -> None:
        started: list[float] = []

        def pre(m, args):
            if when(args):
                started.append(time.perf_counter())

        def post(m, args, out):
            if when(args) and started:
                self.seconds[name] += time.perf_counter() - started.pop()

        self.handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def watch_encoder(self, model: torch.nn.Module) -> None:
        enc = model.audio_encoder
        self.watch(enc, "  audio encoder")
        if hasattr(enc, "feature_extractor"):
            self.watch(enc.feature_extractor, "    CNN feature encoder")
        inner = getattr(enc, "encoder", None)
        if inner is not None:
            if hasattr(inner, "pos_conv_embed"):
                self.watch(inner.pos_conv_embed, "    positional convolution")
            for layer in getattr(inner, "layers", []):
                self.watch(layer, "    transformer layers")

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def timed(counter: Counter, name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            counter[name] += time.perf_counter() - start

    return wrapper


def training(runner: ModeRunner, epochs: int) -> tuple[float, Counter]:
    trainer = runner.trainer
    clock = Clock()
    clock.watch(trainer.model, "forward (both views, losses)",
                when=lambda args: bool(args) and isinstance(args[0], Batch))  # fmt: skip
    clock.watch_encoder(trainer.model)
    steps: Counter[str] = Counter()
    trainer.forward_backward = timed(steps, "step", trainer.forward_backward)
    trainer.optimizer_step = timed(steps, "optimizer step", trainer.optimizer_step)
    runner.train_unit(0)  # untimed warm-up epoch
    clock.seconds.clear()
    steps.clear()
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        runner.train_unit(epoch)
    total = time.perf_counter() - start
    clock.remove()
    parts = Counter(clock.seconds)
    forward = parts["forward (both views, losses)"]
    parts["backward"] = steps["step"] - forward
    parts["optimizer step"] = steps["optimizer step"]
    parts["data, bookkeeping"] = total - steps["step"] - steps["optimizer step"]
    return total / epochs, Counter({k: v / epochs for k, v in parts.items()})


def prediction(runner: ModeRunner) -> tuple[float, float, Counter]:
    """Batch-1 predictions of the runner's timed held-out utterances (after the untimed
    warm-up ones): (seconds, audio seconds, parts)."""
    model = runner._ensure_predictor().backend.model  # a torch mode's (main() offers no ONNX)
    clock = Clock()
    clock.watch(model, "forward")
    clock.watch_encoder(model)
    for i in range(WARMUP_UTTERANCES):
        runner.infer_unit("b1", i)
    clock.seconds.clear()
    before = runner.totals["b1_s"]
    for i in range(WARMUP_UTTERANCES, WARMUP_UTTERANCES + len(runner.timed_rows)):
        runner.infer_unit("b1", i)
    total = runner.totals["b1_s"] - before
    clock.remove()
    parts = Counter(clock.seconds)
    parts["decoding, preparation, softmax"] = total - parts["forward"]
    return total, sum(runner.timed_set().lengths) / 16000, parts


def print_split(title: str, total: float, parts: Counter, unit: str) -> None:
    print(f"\n{title}: {total:.2f} s {unit}")
    for name, seconds in parts.items():
        print(f"  {name:<34} {seconds:7.3f} s  {100 * seconds / total:5.1f} %")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workload", default="base", choices=sorted(WORKLOADS))
    torch_modes = sorted(name for name, mode in MODES.items() if not mode.onnx)
    p.add_argument("--mode", default="fast", choices=torch_modes)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs, after one untimed")
    p.add_argument("--train-utterances", type=int, default=None,
                   help="utterances per training epoch (default: the workload's)")  # fmt: skip
    p.add_argument("--utterances", type=int, default=20, help="timed batch-1 predictions")
    p.add_argument("--device", default="auto")
    p.add_argument("--work-dir", default=None, help="keep the corpus here (default: temporary)")
    own = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmer-breakdown-") as tmp:
        work = Path(own.work_dir or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        args = bench_args(["--workload", own.workload, "--utterances", str(own.utterances),
                           "--device", own.device, "--work-dir", str(work)])  # fmt: skip
        args.train_utterances = own.train_utterances or WORKLOADS[own.workload].train_utterances
        args.corpus_dir = str(workload_corpus(own.workload, args))
        args.warmup, args.epochs = 1, own.epochs
        runner = ModeRunner(own.mode, args)
        print(f"{own.workload} / {own.mode} on {device_name(runner.device)}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}")  # fmt: skip
        epoch, parts = training(runner, own.epochs)
        print_split("training, per epoch", epoch, parts, f"({args.train_utterances} utterances)")
        total, audio, parts = prediction(runner)
        print_split("batch-1 prediction", total, parts, f"for {audio:.1f} s of audio "
                    f"(RTF {total / audio:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
