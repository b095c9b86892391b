"""Side-by-side speed benchmark: this project's fast defaults vs the published pipeline.

    python bench/bench.py                      # reference vs fast, CPU or CUDA, a few minutes
    python bench/bench.py --modes reference,fast,fast-b8 --steps 16 --json bench.json

Workload (issue 7): full-size MMER (wav2vec2-base shape, random weights), IEMOCAP-like
lengths (log-normal, median 3.6 s, sigma 0.6), 12 text tokens, augmented view in training.
Each mode runs in its own subprocess (so peak RSS is per mode) and the modes run in
lockstep, one micro-batch or utterance each in turn, so that load from other processes
hits them alike; with `--repeats` > 1 the median of each figure is reported.
Figures: train_audio_s_per_s (audio seconds of both views per wall second), infer_rtf
(batch 1, wall seconds per audio second), infer_rtf_batched, peak_rss_mb, padding_fraction
(share of padded samples over one IEMOCAP-sized epoch of batches, both views).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench import workload  # noqa: E402
from bench.flops import batch_flops, peak_flops  # noqa: E402
from models.audio_encoder import load_encoder_config  # noqa: E402
from models.config import MMERConfig  # noqa: E402
from models.mmer import MMERModel  # noqa: E402
from training.evaluation import to_inference_precision  # noqa: E402
from utils.precision import autocast, resolve_device, resolve_precision  # noqa: E402

EPOCH_UTTERANCES = 5531  # IEMOCAP-4: the pool the sampler batches (and padding is measured on)
FIGURES = ("train_audio_s_per_s", "infer_rtf", "infer_rtf_batched", "peak_rss_mb")


@dataclass(frozen=True)
class Mode:
    precision: str  # "fp32", or "auto" (bf16 where the hardware runs it natively)
    attention: str  # MMERConfig.attention_implementation
    bucket: bool  # length-bucketed batches (else random)
    quantum: int  # pad audio up to a multiple of this many samples (1 = exact batch max)
    batch_size: int
    accumulation: int
    inference_mode: bool  # torch.inference_mode (else no_grad)
    fused_adamw: bool
    fast_dropout: bool  # MMERConfig.fast_dropout (cheaper dropout masks on CPU)
    padding: str  # MMERConfig.audio_padding ("exact" or the authors' "published")
    onnx: bool = False  # inference through the exported ONNX graph in onnxruntime (CPU, fp32)


REFERENCE = Mode("fp32", "eager", False, 1, 2, 4, False, False, False, "published")
FAST = Mode("auto", "auto", True, 4000, 2, 4, True, True, True, "exact")
MODES = {
    "reference": REFERENCE,
    "fast": FAST,
    # Batch 8 changes the loss (SCL/ACL are computed within a batch): not a drop-in default.
    "fast-b8": replace(FAST, batch_size=8, accumulation=1),
    # Ablations: the fast mode with one lever put back to the reference's choice.
    "fast-fp32": replace(FAST, precision="fp32"),
    "fast-sdpa": replace(FAST, attention="sdpa"),  # SDPA on CPU too
    "fast-random": replace(FAST, bucket=False, quantum=1),
    "fast-exact": replace(FAST, quantum=1),
    "fast-unfused": replace(FAST, fused_adamw=False),
    "fast-torchdropout": replace(FAST, fast_dropout=False),
    "fast-published": replace(FAST, padding="published"),  # what padding-exactness costs
    # Serving: `infer.py export` + onnxruntime for inference (its training figures are fast's).
    "fast-onnx": replace(FAST, onnx=True),
}


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads do not help GEMMs)."""
    try:
        cores, current = set(), {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
            if not line.strip():
                cores.add((current.get("physical id"), current.get("core id")))
                current = {}
        return max(1, min(len(cores), len(os.sched_getaffinity(0))))
    except (OSError, AttributeError):
        return os.cpu_count() or 1


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's with its family/model and bf16 instruction sets: a
    virtual machine often reports only "AMD EPYC", and generations differ ~1.5x in bf16."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    info: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    if "model name" not in info:
        return platform.processor()
    isa = [f for f in ("avx512_bf16", "amx_bf16") if f in info.get("flags", "").split()]
    return (
        f"{info['model name']} (family {info.get('cpu family', '?')} model {info.get('model', '?')}, "
        f"{physical_cores()} cores{', ' + ', '.join(isa) if isa else ''})"
    )


class Timer:
    """Wall seconds, synchronising CUDA so queued kernels are counted."""

    def __init__(self, device: torch.device):
        self.device = device

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


class ModeRunner:
    """One mode's model, optimizer and workload; measures one unit of work per call."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.mode, self.args = name, MODES[name], args
        mode = self.mode
        self.device = resolve_device(args.device)
        if self.device.type == "cpu":
            torch.set_num_threads(physical_cores())
        self.precision = resolve_precision(mode.precision, self.device)
        torch.manual_seed(0)
        self.cfg = MMERConfig(
            audio_encoder="facebook/wav2vec2-base",
            audio_encoder_pretrained=False,
            attention_implementation=mode.attention,
            fast_dropout=mode.fast_dropout,
            audio_padding=mode.padding,
        )
        self.enc = load_encoder_config(self.cfg.audio_encoder)
        self.model = MMERModel(self.cfg).to(self.device)
        # inference runs the precision's inference model (bf16 weights), as infer.py does
        self.infer_model = to_inference_precision(copy.deepcopy(self.model), self.precision).eval()
        self.infer_dtype = next(self.infer_model.parameters()).dtype
        self.onnx = None
        if mode.onnx:  # the graph `infer.py export` writes, run the way `infer.py predict` does
            from inference.onnx import OnnxBackend, export_onnx
            from models.checkpoint import CheckpointInfo

            path = Path(tempfile.mkdtemp(prefix="mmer-bench-")) / "model.onnx"
            export_onnx(copy.deepcopy(self.model).cpu(), CheckpointInfo(), path)
            self.onnx, self.infer_dtype = OnnxBackend(path), torch.float32
        self.timer = Timer(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=5e-5, fused=mode.fused_adamw)

        # Training draws batches from one IEMOCAP-sized epoch; the same number of utterances
        # in every mode (`--steps` micro-batches of 2 after `--warmup` of them).
        self.lengths = workload.utterance_lengths(EPOCH_UTTERANCES, args.seed)
        self.aug = workload.augmented_lengths(self.lengths, args.seed)
        self.batches = workload.batch_order(self.lengths, mode.batch_size, mode.bucket, args.seed)
        self.padding = workload.padding_fraction(
            self.batches, [self.lengths, self.aug], mode.quantum
        )
        self.train_warmup = max(1, round(2 * args.warmup / mode.batch_size))
        self.train_units = self.train_warmup + max(1, round(2 * args.steps / mode.batch_size))

        # Inference: batch 1 at exact lengths (padding changes wav2vec2-base's output), and
        # batched at `--infer-batch` with the mode's batching; 2 extra utterances warm up.
        self.infer = workload.utterance_lengths(args.utterances + 2, args.seed + 1)
        self.singles = [[i] for i in range(len(self.infer))]
        groups = workload.batch_order(self.infer[2:], args.infer_batch, mode.bucket, args.seed)
        self.groups = [[0, 1]] + [[i + 2 for i in g] for g in groups]
        self.totals = {k: 0.0 for k in ("train_s", "train_audio", "flops", "b1_s", "bn_s")}

    def train_unit(self, i: int) -> None:
        """Micro-batch i (an optimizer step after every `accumulation`-th)."""
        if i >= self.train_units:
            return
        mode, model, idx = self.mode, self.model, self.batches[i]
        model.train()
        batch = workload.make_batch(self.lengths[idx], self.aug[idx], mode.quantum, seed=i)
        batch = batch.to(self.device)
        start = self.timer.now()
        with autocast(self.device, self.precision):
            obj = model.compute_objectives(batch)
        (obj.loss / mode.accumulation).backward()
        if (i + 1) % mode.accumulation == 0:
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        elapsed = self.timer.now() - start
        if i + 1 == self.train_warmup and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)  # peak of steady-state training
        if i >= self.train_warmup:
            counts = [*self.lengths[idx], *self.aug[idx]]
            self.totals["train_s"] += elapsed
            self.totals["train_audio"] += sum(counts) / workload.SAMPLE_RATE
            self.totals["flops"] += batch_flops(
                counts, workload.TEXT_TOKENS, self.enc, self.cfg, training=True
            )

    def infer_unit(self, kind: str, i: int) -> None:
        """Inference on single utterance i (`kind` "b1") or on batch i (`kind` "bn")."""
        groups, quantum, skip = (
            (self.singles, 1, 2) if kind == "b1" else (self.groups, self.mode.quantum, 1)
        )
        if i >= len(groups):
            return
        view = workload.make_view(list(self.infer[groups[i]]), quantum, seed=i).to(self.device)
        view = view.astype(self.infer_dtype)
        grad_off = torch.inference_mode if self.mode.inference_mode else torch.no_grad
        start = self.timer.now()
        with grad_off():
            if self.onnx is not None:
                self.onnx(view.to("cpu"))
            else:
                self.infer_model(view, with_ctc=False).logits.float()
        if i >= skip:
            self.totals[f"{kind}_s"] += self.timer.now() - start

    def result(self) -> dict:
        t, args = self.totals, self.args
        infer_audio = self.infer[2:].sum() / workload.SAMPLE_RATE
        out = {
            "mode": self.name,
            **asdict(self.mode),
            "precision": self.precision,
            "device": device_name(self.device),
            "train_audio_s_per_s": t["train_audio"] / t["train_s"],
            "train_tflops_per_s": t["flops"] / t["train_s"] / 1e12,
            "infer_rtf": t["b1_s"] / infer_audio,
            "infer_rtf_batched": t["bn_s"] / infer_audio,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "padding_fraction": self.padding,
        }
        if self.device.type == "cuda":
            out["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            peak = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(out["device"])
            out["mfu"] = t["flops"] / t["train_s"] / peak if peak else None
            out["matmul_tflops_per_s"] = measured_matmul_peak(self.device) / 1e12
            out["mfu_measured"] = t["flops"] / t["train_s"] / (out["matmul_tflops_per_s"] * 1e12)
        return out


def measured_matmul_peak(device: torch.device, n: int = 8192, repeats: int = 20) -> float:
    """FLOP/s of large bf16 matmuls on this GPU: what its clocks and power limit give,
    the ceiling MFU is also reported against (datasheet peaks assume boost clocks)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    end.synchronize()
    return 2 * n**3 * repeats / (start.elapsed_time(end) / 1000)


def serve(name: str, args: argparse.Namespace) -> None:
    """Worker loop: one command per stdin line ("train 3", "b1 0", "bn 1", "result")."""
    runner = ModeRunner(name, args)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "result":
            print(json.dumps(runner.result()), flush=True)
            return
        if cmd == "train":
            runner.train_unit(int(rest[0]))
        else:
            runner.infer_unit(cmd, int(rest[0]))
        print(json.dumps({"ok": True}), flush=True)


class Worker:
    """A mode in its own interpreter (so peak RSS is per mode), driven in lockstep."""

    def __init__(self, name: str):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--worker", name]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.reply()

    def reply(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"benchmark worker exited with code {self.proc.wait()}")

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.reply()


def run_interleaved(names: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """All modes side by side: unit k of every mode runs before unit k+1 of any, so load
    from other processes on the machine hits the modes alike."""
    workers = {}
    for name in names:  # started one after another: model building is not timed
        print(f"starting {name} ...", file=sys.stderr, flush=True)
        workers[name] = Worker(name)
    units = args.warmup + args.steps  # micro-batches of the smallest batch size, 2
    plan = [f"train {i}" for i in range(units)]
    plan += [f"b1 {i}" for i in range(args.utterances + 2)]
    plan += [f"bn {i}" for i in range(args.utterances + 2)]
    for k, command in enumerate(plan):
        print(f"\r{k + 1}/{len(plan)} {command:<10}", end="", file=sys.stderr, flush=True)
        for worker in workers.values():
            worker.ask(command)
    print(file=sys.stderr)
    return {name: worker.ask("result") for name, worker in workers.items()}


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Median of each figure over repeats, plus speedups against `reference`."""
    out = {}
    for name, results in runs.items():
        row = dict(results[0])
        for key in (*FIGURES, "train_tflops_per_s", "mfu", "peak_gpu_mem_mb", "mfu_measured",
                    "matmul_tflops_per_s"):  # fmt: skip
            values = [r[key] for r in results if r.get(key) is not None]
            if values:
                row[key] = statistics.median(values)
        row["repeats"] = len(results)
        out[name] = row
    if "reference" in out:
        ref = out["reference"]
        for row in out.values():
            row["train_speedup"] = row["train_audio_s_per_s"] / ref["train_audio_s_per_s"]
            row["infer_rtf_ratio"] = row["infer_rtf"] / ref["infer_rtf"]
            row["infer_rtf_batched_ratio"] = row["infer_rtf_batched"] / ref["infer_rtf_batched"]
    return out


def print_table(summary: dict[str, dict]) -> None:
    first = next(iter(summary.values()))
    print(f"\ndevice: {first['device']} | torch {torch.__version__}")
    if first.get("matmul_tflops_per_s"):
        print(f"measured bf16 matmul peak: {first['matmul_tflops_per_s']:.0f} TFLOP/s")
    head = (
        f"{'mode':<13}{'prec':>5}{'train a-s/s':>12}{'x ref':>7}{'RTF b1':>8}{'x ref':>7}"
        f"{'RTF b8':>8}{'x ref':>7}{'RSS MB':>8}{'pad %':>7}{'TFLOP/s':>9}{'MFU':>7}"
        f"{'MFU meas':>9}{'GPU MB':>8}"
    )
    print(head + "\n" + "-" * len(head))
    for name, r in summary.items():
        mfu = f"{r['mfu']:.1%}" if r.get("mfu") else "-"
        print(
            f"{name:<13}{r['precision']:>5}{r['train_audio_s_per_s']:>12.3f}"
            f"{r.get('train_speedup', 1):>7.2f}{r['infer_rtf']:>8.3f}{r.get('infer_rtf_ratio', 1):>7.2f}"
            f"{r['infer_rtf_batched']:>8.3f}{r.get('infer_rtf_batched_ratio', 1):>7.2f}"
            f"{r['peak_rss_mb']:>8.0f}{100 * r['padding_fraction']:>7.1f}"
            f"{r['train_tflops_per_s']:>9.3f}{mfu:>7}"
            f"{format(r['mfu_measured'], '.1%') if r.get('mfu_measured') else '-':>9}"
            f"{format(r['peak_gpu_mem_mb'], '.0f') if r.get('peak_gpu_mem_mb') else '-':>8}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--modes", default="reference,fast", help=f"comma list of {sorted(MODES)}")
    p.add_argument("--steps", type=int, default=8, help="timed training micro-batches of 2")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed micro-batches of 2 (default 2 on CPU, 20 on CUDA: cuDNN\n"
                   "autotuning and the caching allocator settle over many new shapes)")  # fmt: skip
    p.add_argument("--utterances", type=int, default=20, help="timed inference utterances")
    p.add_argument("--infer-batch", type=int, default=8, help="batch size of batched inference")
    p.add_argument("--repeats", type=int, default=1, help="interleaved runs of all modes")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU peak for MFU")
    p.add_argument("--json", default=None, help="write per-mode figures and speedups here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.warmup is None:
        cuda = args.device.startswith("cuda") or (
            args.device == "auto" and torch.cuda.is_available()
        )
        args.warmup = 20 if cuda else 2
    if args.worker:
        serve(args.worker, args)
        return
    names = args.modes.split(",")
    unknown = [n for n in names if n not in MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for name, result in run_interleaved(names, args).items():
            runs[name].append(result)
    summary = summarise(runs)
    print_table(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
