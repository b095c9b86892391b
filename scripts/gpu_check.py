"""The first GPU run's checks, each figure written into one folder (`scripts/gpu_check.sh`
installs what is missing and calls this).

    python -m scripts.gpu_check --out OUT [--device cuda] [--utterances 5531]

Steps (a failing step is recorded in summary.json and the next one runs):
  versions        python, torch, CUDA, cuDNN, transformers, GPUs, nvidia-smi
  sync_count      bf16 forward+backward+step of the full-size model (wav2vec2-base shape,
                  random weights) under torch.cuda.set_sync_debug_mode("warn"): host syncs
  sdpa_vs_eager   SDPA against eager attention: logits of the same weights
  bf16_weights    bf16-weight inference against fp32: logits and argmax agreement
  bench           python -m bench.bench --device DEV
  epoch_wN        one epoch of fold 1, paper configuration, generated IEMOCAP-sized corpus,
                  with 0 and 8 loader workers: wall time, audio-s/s, GPU use (nvidia-smi)
  infer           infer.sh on that fold
  ddp             2-process DDP smoke run (more than one GPU only)
`--device cpu` is the dry run (tiny model and corpus, a minute or two): tests/test_gpu.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

# The dry run's model: the tests' tiny shapes (full size: configs/mmer.yaml as it is).
TINY = {
    "audio_encoder": "configs/encoders/wav2vec2-tiny",
    "hidden_size": 32,
    "num_attention_heads": 4,
    "intermediate_size": 64,
}


def _random_view(lengths, g: torch.Generator):
    """Random unit-variance audio zero-padded like `collate` (quantum 4000), 12 random
    768-d tokens each."""
    from models.batch import View
    from training.data import padded_width

    audio = torch.zeros(len(lengths), padded_width(lengths, 4000))
    for i, n in enumerate(lengths):
        audio[i, :n] = torch.randn(int(n), generator=g)
    text = torch.randn(len(lengths), 12, 768, generator=g)
    mask = torch.ones(len(lengths), 12, dtype=torch.bool)
    return View(audio, torch.as_tensor(lengths, dtype=torch.int64), text, mask)


class Check:
    def __init__(self, out: Path, device: str, utterances: int, python: str):
        self.out, self.device, self.python = out, torch.device(device), python
        self.tiny = self.device.type == "cpu"
        self.utterances = utterances
        self.summary: dict = {"device": device, "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    # -- helpers ---------------------------------------------------------------------------
    def model_overrides(self) -> dict:
        return {"audio_encoder_pretrained": False, **(TINY if self.tiny else {})}

    def build_model(self, **extra):
        from models.config import MMERConfig
        from models.mmer import MMERModel
        from training.experiment import load_experiment

        cfg = load_experiment(ROOT / "configs/mmer.yaml", {"model": self.model_overrides()}).model
        torch.manual_seed(0)
        cfg_dict = {**vars(cfg), **extra}
        return MMERModel(MMERConfig(**cfg_dict)).to(self.device)

    def batch(self, n: int = 2, seed: int = 0):
        """A random training batch of `n` IEMOCAP-like utterances (both views, quantum 4000)."""
        from bench import workload
        from models.batch import Batch

        lengths = workload.utterance_lengths(n, seed)
        aug = workload.augmented_lengths(lengths, seed)
        g = torch.Generator().manual_seed(seed)
        chars = [max(1, round(int(k) / 16000 * 14)) for k in lengths]  # ~14 characters a second
        ctc = torch.full((n, max(chars)), -100, dtype=torch.int64)
        for i, c in enumerate(chars):
            ctc[i, :c] = torch.randint(4, 32, (c,), generator=g)
        labels = torch.randint(0, 4, (n,), generator=g)
        return Batch(_random_view(lengths, g), labels, ctc, [f"utt{i}" for i in range(n)],
                     _random_view(aug, g))  # fmt: skip

    def run(self, name: str, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        log = self.out / f"{name}.log"
        with log.open("w") as f:
            proc = subprocess.run(
                cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, text=True, **kw
            )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}; see {log}")
        return proc

    def train_args(self, corpus: dict, save: Path, workers: int, sessions=("1",)) -> list[str]:
        sets = [f"model.{k}={v}" for k, v in self.model_overrides().items()]
        args = ["--config", "configs/mmer.yaml", "--csv_path", str(corpus["csv"]),
                "--audio_dir", str(corpus["wav"]), "--text_dir", str(corpus["emb"]),
                "--augmented_audio_dir", str(corpus["wav_aug"]),
                "--augmented_text_dir", str(corpus["emb_aug"]),
                "--sessions", *sessions, "--epochs", "1", "--num_workers", str(workers),
                "--device", str(self.device), "--save_path", str(save), "--no-resume"]  # fmt: skip
        for s in sets:
            args += ["--set", s]
        return args

    # -- steps -----------------------------------------------------------------------------
    def versions(self) -> dict:
        import transformers

        info = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "transformers": transformers.__version__,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "bf16_native": torch.cuda.is_bf16_supported(including_emulation=False)
            if torch.cuda.is_available()
            else None,
        }
        if shutil.which("nvidia-smi"):
            smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True)
            (self.out / "nvidia-smi.txt").write_text(smi.stdout + smi.stderr)
        return info

    def sync_count(self) -> dict:
        from utils.precision import autocast, resolve_precision

        model = self.build_model()
        precision = resolve_precision("auto" if self.device.type == "cuda" else "fp32", self.device)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], fused=True)
        counts = []
        for step in range(3):  # the first steps autotune and allocate
            batch = (
                self.batch(seed=step).pin_memory()
                if self.device.type == "cuda"
                else self.batch(seed=step)
            )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if self.device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("warn")
                try:
                    with autocast(self.device, precision):
                        obj = model(batch.to(self.device))
                    obj.loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                finally:
                    if self.device.type == "cuda":
                        torch.cuda.set_sync_debug_mode(0)
            syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
            counts.append(len(syncs))
        (self.out / "syncs_last_step.txt").write_text("\n".join(syncs) + "\n")
        return {"precision": precision, "syncs_per_step": counts,
                "note": None if self.device.type == "cuda" else "sync debug mode is CUDA-only"}  # fmt: skip

    def sdpa_vs_eager(self) -> dict:
        sdpa = self.build_model(attention_implementation="sdpa").eval()
        eager = self.build_model(attention_implementation="eager").eval()
        eager.load_state_dict(sdpa.state_dict())
        view = self.batch(n=8, seed=5).view.to(self.device)
        with torch.inference_mode():
            a, b = sdpa(view, with_ctc=False).logits, eager(view, with_ctc=False).logits
        return {"max_abs_logit_diff_fp32": (a - b).abs().max().item()}

    def bf16_weights(self) -> dict:
        from training.evaluation import to_inference_precision

        model = self.build_model().eval()
        view = self.batch(n=16, seed=7).view.to(self.device)
        with torch.inference_mode():
            ref = model(view, with_ctc=False).logits.float()
            low = to_inference_precision(model, "bf16")
            got = low(view.astype(torch.bfloat16), with_ctc=False).logits.float()
        return {
            "max_abs_logit_diff": (ref - got).abs().max().item(),
            "argmax_agreement": (ref.argmax(1) == got.argmax(1)).float().mean().item(),
        }

    def bench(self) -> dict:
        json_out = self.out / "bench.json"
        cmd = [self.python, "-m", "bench.bench", "--device", str(self.device),
               "--json", str(json_out)]  # fmt: skip
        if self.tiny:
            cmd += ["--modes", "fast", "--epochs", "1", "--warmup", "1", "--train-utterances", "2",
                    "--utterances", "1", "--infer-batch", "2"]  # fmt: skip
        self.run("bench", cmd)
        return json.loads(json_out.read_text())

    def corpus(self) -> dict:
        from bench.corpus import write_corpus

        return write_corpus(self.out / "corpus", self.utterances, 768, augmented_audio=True)

    def epoch(self, workers: int) -> dict:
        import pandas as pd
        import soundfile as sf

        corpus = self.corpus()
        save = self.out / f"run_w{workers}"
        smi = None
        if shutil.which("nvidia-smi"):
            smi = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits", "-lms", "500"],
                stdout=(self.out / f"nvidia-smi_w{workers}.csv").open("w"),
            )  # fmt: skip
        start = time.perf_counter()
        try:
            self.run(
                f"epoch_w{workers}",
                [self.python, "train.py", *self.train_args(corpus, save, workers)],
            )
        finally:
            if smi is not None:
                smi.terminate()
                smi.wait()
        wall = time.perf_counter() - start
        rows = pd.read_csv(corpus["csv"])
        train = rows[~rows.FileName.str.startswith("Ses01")]
        audio = sum(sf.info(str(corpus["wav"] / f"{n}.wav")).duration for n in train.FileName)
        out = {"workers": workers, "wall_s": round(wall, 1), "train_utterances": len(train),
               "audio_s_per_s_whole_run": round(2 * audio / wall, 1)}  # fmt: skip
        if smi is not None:
            util, mem = [], []
            for line in (self.out / f"nvidia-smi_w{workers}.csv").read_text().splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 3 and parts[1].isdigit():
                    util.append(int(parts[1]))
                    mem.append(int(parts[2]))
            if util:
                out["gpu_util_mean_pct"] = round(sum(util) / len(util), 1)
                out["gpu_mem_peak_mib"] = max(mem)
        return out

    def infer(self) -> dict:
        corpus = self.corpus()
        best = self.out / "run_w8" / "fold1" / "best"
        if not best.exists():
            best = self.out / "run_w0" / "fold1" / "best"
        preds = self.out / "infer_session1.csv"
        cmd = ["bash", "infer.sh", "1", "configs/mmer.yaml", str(corpus["csv"]), str(corpus["wav"]),
               str(corpus["emb"]), str(best), "--predictions", str(preds),
               "--device", str(self.device)]  # fmt: skip
        start = time.perf_counter()
        self.run("infer", cmd, env={**os.environ, "PYTHON": self.python})
        return {"wall_s": round(time.perf_counter() - start, 1), "predictions": str(preds)}

    def ddp(self) -> dict:
        if torch.cuda.device_count() < 2:
            return {"skipped": f"{torch.cuda.device_count()} GPU(s)"}
        corpus = self.corpus()
        args = self.train_args(corpus, self.out / "run_ddp", workers=4)
        cmd = [self.python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "train.py", *args]  # fmt: skip
        start = time.perf_counter()
        self.run("ddp", cmd)
        return {"wall_s": round(time.perf_counter() - start, 1)}

    def all(self, skip: set[str]) -> dict:
        steps = [("versions", self.versions), ("sync_count", self.sync_count),
                 ("sdpa_vs_eager", self.sdpa_vs_eager), ("bf16_weights", self.bf16_weights),
                 ("bench", self.bench), ("epoch_w0", lambda: self.epoch(0)),
                 ("epoch_w8", lambda: self.epoch(8)), ("infer", self.infer), ("ddp", self.ddp)]  # fmt: skip
        for name, step in steps:
            if name in skip:
                self.summary[name] = {"skipped": "--skip"}
                continue
            start = time.perf_counter()
            try:
                self.summary[name] = step()
            except Exception as err:  # record and go on: one GPU session must give every figure
                self.summary[name] = {"error": f"{type(err).__name__}: {err}"}
                (self.out / f"{name}.error.txt").write_text(traceback.format_exc())
            self.summary[name]["step_s"] = round(time.perf_counter() - start, 1)
            print(f"{name}: {json.dumps(self.summary[name])}", flush=True)
            (self.out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        return self.summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check_out")))
    p.add_argument("--device", default="cuda")
    p.add_argument("--utterances", type=int, default=None, help="corpus size (5531; dry run 40)")
    p.add_argument("--skip", nargs="*", default=[], help="step names to skip")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    utterances = a.utterances or (40 if a.device == "cpu" else 5531)
    summary = Check(a.out, a.device, utterances, sys.executable).all(set(a.skip))
    failed = [k for k, v in summary.items() if isinstance(v, dict) and "error" in v]
    print(f"summary: {a.out / 'summary.json'}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
