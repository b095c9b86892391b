"""The benchmark's modes: named sets of configuration choices, each run through the real
trainer (`training.trainer.FoldTrainer`) and the real `inference.Predictor`.

A mode changes only what it names; everything else is the workload's experiment as shipped
(`configs/mmer.yaml` or `configs/demo.yaml`). `fast` is therefore this project's defaults,
and `reference` the published pipeline's choices: fp32, eager attention, random batches
padded to the batch maximum, the authors' padding behaviour, torch dropout, torch's default
(unfused) AdamW and glibc's default allocator behaviour. The batch size stays the
experiment's (the paper's 2 x 4 in configs/mmer.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bench.workload import Workload
from training.experiment import Experiment, load_experiment

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mode:
    # train.precision, and the Predictor's (None: the experiment's for training and infer.py's
    # default, "auto", for inference)
    precision: str | None = None
    attention: str | None = None  # model.attention_implementation
    bucket: bool | None = None  # data.bucket: length-bucketed batches (else random)
    quantum: int | None = None  # data.pad_quantum (1: pad to the batch maximum)
    batch_size: int | None = None  # train.batch_size
    accumulation: int | None = None  # train.accum_iter
    fast_dropout: bool | None = None  # model.fast_dropout (cheaper CPU dropout masks)
    padding: str | None = None  # model.audio_padding ("exact", or the authors' "published")
    # False: torch's default AdamW (a for-loop over tensors on CPU), as the published code
    # used, in place of the trainer's fused one (the same update)
    fused_adamw: bool = True
    onnx: bool = False  # inference through `infer.py export`'s graph in onnxruntime; no training
    # train.py and infer.py keep freed memory in the process (utils/memory.py); False: glibc's
    # default, which returns large blocks to the kernel on free, as the published scripts ran
    retain_memory: bool = True

    def overrides(self) -> dict[str, dict]:
        """{section: {key: value}} for `load_experiment`, only what this mode sets."""
        sections = {
            "model": {"attention_implementation": self.attention, "fast_dropout": self.fast_dropout,
                      "audio_padding": self.padding},
            "data": {"bucket": self.bucket, "pad_quantum": self.quantum},
            "train": {"precision": self.precision, "batch_size": self.batch_size,
                      "accum_iter": self.accumulation},
        }  # fmt: skip
        return {s: {k: v for k, v in d.items() if v is not None} for s, d in sections.items()}

    @property
    def inference_precision(self) -> str:
        return self.precision or "auto"


REFERENCE = Mode(precision="fp32", attention="eager", bucket=False, quantum=1,
                 fast_dropout=False, padding="published", fused_adamw=False,
                 retain_memory=False)  # fmt: skip
FAST = Mode()
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
    "fast-malloc": replace(FAST, retain_memory=False),  # glibc's default allocator behaviour
    # Serving: `infer.py export` + onnxruntime (no training figures: its training is fast's).
    "fast-onnx": replace(FAST, onnx=True),
}


def experiment(
    workload: Workload, mode: Mode, corpus: dict[str, Path], epochs: int, device: str
) -> Experiment:
    """The workload's experiment with the mode's choices, on the generated corpus: fold 1
    (session 1 held out), no model selection (no evaluation pass inside the timed epochs)."""
    o = mode.overrides()
    overrides = {
        "model": {**workload.model_overrides, **o["model"]},
        "data": {**o["data"], "csv_path": str(corpus["csv"]), "audio_dir": str(corpus["wav"]),
                 "text_dir": str(corpus["emb"]), "augmented_audio_dir": str(corpus["wav_aug"]),
                 "augmented_text_dir": str(corpus["emb_aug"])},
        "train": {**o["train"], "epochs": epochs, "sessions": [1], "selection": "last",
                  "device": device},
    }  # fmt: skip
    return load_experiment(ROOT / workload.config, overrides)
