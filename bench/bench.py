"""Side-by-side speed benchmark of the real training loop and the real Predictor: this
project's defaults against the published pipeline's choices, and the share of the machine.

    python -m bench.bench                                  # base workload, reference vs fast
    python -m bench.bench --workload base,demo             # what `make bench` runs
    python -m bench.bench --modes reference,fast,fast-onnx --repeats 2 --json bench.json

For each workload (bench/workload.py) a small corpus is written to disk in the real formats
(bench/corpus.py: 16 kHz wavs, TTS-view wavs, .npy embeddings, manifest). Each mode
(bench/modes.py) runs in its own process (so peak RSS is per mode) and builds a
`FoldTrainer` and, after training, a `Predictor` (bench/runner.py). The modes run in
lockstep, one epoch or one utterance each in turn, so that load from other processes hits
them alike; `--repeats` > 1 reports medians. The machine's fp32 and bf16 matmul peak is
measured in the same run (bench/machine.py), before and after the modes (the best counts),
and each mode's achieved FLOP/s (bench/flops.py) is reported as a share of the peak of
its precision.

Figures: train_audio_s_per_s (audio seconds of both views fed to the model per wall second
of `train_epoch`), infer_rtf (batch 1, wall seconds per audio second), infer_rtf_batched,
GFLOP/s and share of peak of each, peak_rss_mb, padding (share of padded samples over one
IEMOCAP-sized epoch of the mode's batches, both views).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench.corpus import write_corpus
from bench.flops import peak_flops
from bench.machine import device_name, load_average, matmul_peak, physical_cores
from bench.modes import MODES
from bench.workload import WORKLOADS
from training.experiment import load_experiment
from utils.precision import resolve_device, resolve_precision

ROOT = Path(__file__).resolve().parent.parent
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
FIGURES = ("train_audio_s_per_s", "train_gflops_per_s", "infer_rtf", "infer_rtf_batched",
           "infer_b1_gflops_per_s", "infer_batched_gflops_per_s", "peak_rss_mb",
           "peak_gpu_mem_mb")  # fmt: skip


def serve(args: argparse.Namespace) -> None:
    """Worker loop: one command per stdin line ("train 3", "b1 0", "bn 1", "result"). The
    replies go to the original stdout; everything else the code prints goes to stderr."""
    from bench.runner import ModeRunner

    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    runner = ModeRunner(args.worker, args)
    print(json.dumps({"ready": True}), file=reply, flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "result":
            print(json.dumps(runner.result()), file=reply, flush=True)
            return
        if cmd == "train":
            runner.train_unit(int(rest[0]))
        else:
            runner.infer_unit(cmd, int(rest[0]))
        print(json.dumps({"ok": True}), file=reply, flush=True)


class Worker:
    """A mode in its own interpreter (so peak RSS is per mode), driven in lockstep."""

    def __init__(self, name: str, workload: str, args: argparse.Namespace, corpus: Path):
        self.log = Path(args.work_dir) / f"{workload}-{name}.log"
        cmd = [sys.executable, "-m", "bench.bench", *args.argv, "--worker", name,
               "--workload", workload, "--corpus-dir", str(corpus), "--work-dir", args.work_dir]  # fmt: skip
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
        self.reply()

    def reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace").replace("\r", "\n").splitlines()[-15:]
            raise RuntimeError(
                f"benchmark worker exited with code {self.proc.wait()}; the end of {self.log}:\n"
                + "\n".join(tail)
            )
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.reply()


def run_interleaved(workload: str, names: list[str], args: argparse.Namespace,
                    corpus: Path) -> dict[str, dict]:  # fmt: skip
    """All modes side by side: unit k of every mode runs before unit k+1 of any, so load
    from other processes on the machine hits the modes alike."""
    workers = {}
    for name in names:  # started one after another: building is not timed
        print(f"{workload}: starting {name} ...", file=sys.stderr, flush=True)
        workers[name] = Worker(name, workload, args, corpus)
    plan = [f"train {i}" for i in range(args.warmup + args.epochs)]
    plan += [f"b1 {i}" for i in range(args.utterances + 2)]
    plan += ["bn 0", "bn 1"]
    for k, command in enumerate(plan):
        print(f"\r{workload}: {k + 1}/{len(plan)} {command:<10}", end="", file=sys.stderr,
              flush=True)  # fmt: skip
        for worker in workers.values():
            worker.ask(command)
    print(file=sys.stderr)
    return {name: worker.ask("result") for name, worker in workers.items()}


def workload_corpus(workload: str, args: argparse.Namespace) -> Path:
    """The workload's corpus: session 1 held out for inference (2 warm-up + `--utterances`),
    `--train-utterances` spread over sessions 2-5; the TTS view as wavs (ACL trains on it)."""
    w = WORKLOADS[workload]
    out = Path(args.work_dir) / f"corpus-{workload}"
    train = [args.train_utterances // 4 + (i < args.train_utterances % 4) for i in range(4)]
    sizes = [args.utterances + 2, *train]
    text_dim = load_experiment(ROOT / w.config).model.text_dim
    write_corpus(out, sum(sizes), text_dim, augmented_audio=True, seed=args.seed, workload=w,
                 session_sizes=sizes, tokens=w.tokens)  # fmt: skip
    return out


def precisions_used(workloads: list[str], names: list[str], device: torch.device) -> set[str]:
    """The precisions the modes train and predict in (the peaks to measure)."""
    used = {"fp32"}
    for workload in workloads:
        configured = load_experiment(ROOT / WORKLOADS[workload].config).train.precision
        for name in names:
            mode = MODES[name]
            used.add(resolve_precision(mode.precision or configured, device))
            if not mode.onnx:
                used.add(resolve_precision(mode.inference_precision, device))
    return used


def measure_peaks(device: torch.device, precisions: set[str], n: int | None) -> dict[str, float]:
    """GFLOP/s of large matmuls per precision, with the modes' thread count."""
    if device.type == "cpu":
        torch.set_num_threads(physical_cores())
    return {p: matmul_peak(device, DTYPES[p], n) / 1e9 for p in sorted(precisions)}


def summarise(runs: dict[str, list[dict]], peaks: dict[str, float], device: torch.device,
              peak_tflops: float | None) -> dict[str, dict]:  # fmt: skip
    """Median of each figure over repeats, shares of the measured peak, speedups against
    `reference`."""
    out = {}
    for name, results in runs.items():
        row = dict(results[0])
        for key in FIGURES:
            values = [r[key] for r in results if r.get(key) is not None]
            if values:
                row[key] = statistics.median(values)
        row["repeats"] = len(results)
        if row.get("train_gflops_per_s") is not None:
            row["train_peak_share"] = row["train_gflops_per_s"] / peaks[row["train_precision"]]
        for kind in ("b1", "batched"):
            row[f"infer_{kind}_peak_share"] = (
                row[f"infer_{kind}_gflops_per_s"] / peaks[row["infer_precision"]]
            )
        if device.type == "cuda" and row.get("train_gflops_per_s") is not None:
            sheet = peak_tflops * 1e12 if peak_tflops else peak_flops(row["device"])
            row["mfu_datasheet"] = row["train_gflops_per_s"] * 1e9 / sheet if sheet else None
        out[name] = row
    if "reference" in out:
        ref = out["reference"]
        for row in out.values():
            if row.get("train_audio_s_per_s") is not None:
                row["train_speedup"] = row["train_audio_s_per_s"] / ref["train_audio_s_per_s"]
            row["infer_rtf_ratio"] = row["infer_rtf"] / ref["infer_rtf"]
            row["infer_rtf_batched_ratio"] = row["infer_rtf_batched"] / ref["infer_rtf_batched"]
    return out


def _f(value, spec: str, width: int) -> str:
    return f"{'-' if value is None else format(value, spec):>{width}}"


def print_table(workload: str, summary: dict[str, dict], args: argparse.Namespace) -> None:
    first = next(iter(summary.values()))
    w = WORKLOADS[workload]
    print(f"\nworkload {workload} ({w.config}): {args.train_utterances} training utterances per "
          f"epoch, {args.epochs} timed epochs after {args.warmup}; {first['infer_utterances']} "
          f"inference utterances ({first['infer_audio_s']:.0f} s), batched at "
          f"{args.infer_batch}")  # fmt: skip
    head = (f"{'mode':<18}{'prec':>10}{'train a-s/s':>12}{'x ref':>7}{'GFLOP/s':>9}{'peak':>7}"
            f"{'RTF b1':>8}{'x ref':>7}{'peak':>7}{f'RTF b{args.infer_batch}':>8}{'x ref':>7}"
            f"{'peak':>7}{'RSS MB':>8}{'pad %':>7}")  # fmt: skip
    cuda = "peak_gpu_mem_mb" in first
    if cuda:
        head += f"{'MFU sheet':>10}{'GPU MB':>8}"
    print(head + "\n" + "-" * len(head))
    for name, r in summary.items():
        prec = f"{r['train_precision'] or '-'}/{r['infer_precision']}"
        line = (
            f"{name:<18}{prec:>10}{_f(r.get('train_audio_s_per_s'), '.3f', 12)}"
            f"{_f(r.get('train_speedup'), '.2f', 7)}{_f(r.get('train_gflops_per_s'), '.1f', 9)}"
            f"{_f(r.get('train_peak_share'), '.1%', 7)}{r['infer_rtf']:>8.3f}"
            f"{_f(r.get('infer_rtf_ratio'), '.2f', 7)}{r['infer_b1_peak_share']:>7.1%}"
            f"{r['infer_rtf_batched']:>8.3f}{_f(r.get('infer_rtf_batched_ratio'), '.2f', 7)}"
            f"{r['infer_batched_peak_share']:>7.1%}{r['peak_rss_mb']:>8.0f}"
            f"{100 * r['padding_fraction_epoch']:>7.1f}"
        )
        if cuda:
            line += (
                f"{_f(r.get('mfu_datasheet'), '.1%', 10)}{_f(r.get('peak_gpu_mem_mb'), '.0f', 8)}"
            )
        print(line)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workload", default="base", help=f"comma list of {sorted(WORKLOADS)}")
    p.add_argument("--modes", default="reference,fast", help=f"comma list of {sorted(MODES)}")
    p.add_argument("--epochs", type=int, default=2, help="timed training epochs")
    p.add_argument("--warmup", type=int, default=1, help="untimed training epochs before them")
    p.add_argument("--train-utterances", type=int, default=None,
                   help="utterances per training epoch (default: the workload's, base 16,\n"
                   "demo 96; x10 on CUDA)")  # fmt: skip
    p.add_argument("--utterances", type=int, default=20, help="timed inference utterances")
    p.add_argument("--infer-batch", type=int, default=8, help="batch size of batched inference")
    p.add_argument("--repeats", type=int, default=1, help="interleaved runs of all modes")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU datasheet peak for MFU")
    p.add_argument(
        "--peak-n",
        type=int,
        default=None,
        help="matrix size of the peak measurement (4096 on CPU, 8192 on CUDA)",
    )
    p.add_argument("--json", default=None, help="write the figures here")
    p.add_argument("--work-dir", default=None,
                   help="corpora, checkpoints and worker logs (default: a temporary folder,\n"
                   "removed at the end)")  # fmt: skip
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--corpus-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    workloads, names = args.workload.split(","), args.modes.split(",")
    for what, given, known in (("workload", workloads, WORKLOADS), ("mode", names, MODES)):
        unknown = [n for n in given if n not in known]
        if unknown:
            raise SystemExit(f"unknown {what}(s) {unknown}; choose from {sorted(known)}")
    precisions = precisions_used(workloads, names, device)
    machine = {"device": device_name(device), "torch": torch.__version__,
               "threads": physical_cores() if device.type == "cpu" else None,
               "load_average_start": load_average()}  # fmt: skip
    print(f"measuring the matmul peak ({', '.join(sorted(precisions))}) ...", file=sys.stderr)
    before = measure_peaks(device, precisions, args.peak_n)
    results: dict[str, dict] = {}
    for workload in workloads:
        w = WORKLOADS[workload]
        default = w.train_utterances * (10 if device.type == "cuda" else 1)
        args.train_utterances = args.train_utterances_given or default
        corpus = workload_corpus(workload, args)
        runs: dict[str, list[dict]] = {n: [] for n in names}
        for _ in range(args.repeats):
            for name, result in run_interleaved(workload, names, args, corpus).items():
                runs[name].append(result)
        results[workload] = (runs, args.train_utterances)
    after = measure_peaks(device, precisions, args.peak_n)
    peaks = {p: max(before[p], after[p]) for p in precisions}
    machine.update(load_average_end=load_average(), matmul_gflops_per_s=peaks,
                   matmul_gflops_per_s_before=before, matmul_gflops_per_s_after=after)  # fmt: skip
    print(f"\ndevice: {machine['device']} | torch {machine['torch']} | threads "
          f"{machine['threads']} | load average {machine['load_average_start']} -> "
          f"{machine['load_average_end']}")  # fmt: skip
    print("matmul peak (best of before/after): " + ", ".join(
        f"{p} {v:.0f} GFLOP/s" for p, v in sorted(peaks.items())))  # fmt: skip
    out = {"machine": machine, "workloads": {}}
    for workload, (runs, train_utterances) in results.items():
        summary = summarise(runs, peaks, device, args.peak_tflops)
        args.train_utterances = train_utterances
        print_table(workload, summary, args)
        out["workloads"][workload] = summary
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        serve(args)
        return
    args.train_utterances_given = args.train_utterances
    with tempfile.TemporaryDirectory(prefix="mmer-bench-") as tmp:
        args.work_dir = str(Path(args.work_dir or tmp).resolve())  # workers run from the root
        Path(args.work_dir).mkdir(parents=True, exist_ok=True)
        out = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
