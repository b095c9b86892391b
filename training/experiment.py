"""The experiment configuration: `configs/*.yaml` with sections `model`, `data`, `train`.

`model` is `models.config.MMERConfig`; `data` and `train` are defined here. Command-line
flags override the file, and the effective result is written next to every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.config import ConfigError, MMERConfig, check_fields
from training.corpus import CORPORA, Corpus
from utils.audio import MAX_AUDIO_SAMPLES

SELECTIONS = ("val", "heldout", "last")
LR_SCHEDULES = ("constant", "cosine", "linear")
# The config hash (Experiment.hash) covers what defines the numbers. Never hashed: where the
# files are, which device and kernels compute them, loader workers, the save cadence, and
# which folds a run covers.
_NOT_HASHED = {
    "model": {"attention_implementation", "fast_dropout"},
    "data": {"csv_path", "audio_dir", "text_dir", "augmented_audio_dir", "augmented_text_dir"},
    "train": {"device", "num_workers", "save_every_steps", "sessions"},
}
# The keys the first runs hashed, frozen: always hashed. Any other key (every one added since,
# and every one added later, with no edit here) is hashed only where it differs from its
# absence value, the value that does what runs made before it existed did: its default, unless
# _ABSENT_AS says otherwise. So a new setting whose default keeps the earlier behaviour
# changes no existing run's hash.
_FIRST_HASHED = {
    "model": frozenset({
        "apply_spec_augment", "attention_dropout", "audio_encoder", "audio_encoder_overrides",
        "audio_encoder_pretrained", "ctc_dropout", "ctc_vocab_size", "freeze_feature_encoder",
        "hidden_dropout", "hidden_size", "intermediate_size", "lambda_aux", "layer_norm_eps",
        "modalities", "num_attention_heads", "num_classes", "pooled_feature_norm",
        "temperature", "text_dim", "use_acl", "use_ctc", "use_scl",
    }),
    "data": frozenset({"bucket", "cache_audio", "max_audio_samples", "on_bad_input", "pad_quantum"}),
    "train": frozenset({
        "accum_iter", "batch_size", "epochs", "eval_batch_size", "lr", "max_bad_steps",
        "precision", "seed", "selection", "val_fraction", "weight_decay",
    }),
}  # fmt: skip
# Runs made before `audio_padding` existed were trained with the published padding, not the
# default "exact": that value hashes as the key's absence, so those runs resume only when asked
# for it by name. Changing the default of a key that is not in _FIRST_HASHED needs the same:
# its old default here, or runs that relied on it would resume under the new one.
_ABSENT_AS = {("model", "audio_padding"): "published"}


@dataclass
class DataConfig:
    corpus: str = "iemocap"  # training.corpus.CORPORA: classes, labels, groups, protocol
    csv_path: str = "data/iemocap.csv"
    audio_dir: str = "data/iemocap"
    text_dir: str = "data/roberta"
    augmented_audio_dir: str | None = "data/iemocap_augmented"
    augmented_text_dir: str | None = "data/roberta_augmented"
    max_audio_samples: int = MAX_AUDIO_SAMPLES  # the authors' cut: 13.125 s at 16 kHz
    pad_quantum: int = 4000  # pad batches to a multiple of this many samples (0.25 s)
    bucket: bool = True  # length-bucketed batches (False: the reference's random batches)
    cache_audio: bool = False  # keep decoded audio in memory across epochs
    on_bad_input: str = "error"  # "error" or "skip" (counted and reported)


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 2
    accum_iter: int = 4  # optimizer step every accum_iter batches (and at epoch end)
    lr: float = 5e-5
    # Learning rate per optimizer step (training.schedule.scheduled_lr, a pure function of the
    # step count, so a resumed run gets the same rates): "constant" (the published pipeline),
    # or "cosine" / "linear" decay from lr to min_lr_ratio * lr over the whole run. Warmup
    # (any schedule): linear from lr / n to lr over the first n optimizer steps, n given either
    # as warmup_steps or as warmup_fraction of all steps; setting both is an error.
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    min_lr_ratio: float = 0.0
    # Share of training utterances whose text embeddings are zeroed (drawn per batch from the
    # seed, epoch and batch index): the model has to classify those from the audio alone, so
    # the audio path keeps learning after the text has fitted the training set. 0: off (the
    # published training). The augmented view and evaluation are unchanged; single-modality
    # runs (model.modalities audio / text) ignore it.
    text_dropout_utterances: float = 0.0
    weight_decay: float = 0.01  # torch AdamW's default, as the reference used
    seed: int = 0
    sessions: list = field(default_factory=lambda: [1, 2, 3, 4, 5])  # test sessions (folds)
    selection: str = "val"  # "val", "heldout" (the reference's protocol) or "last"
    val_fraction: float = 0.1  # of the training sessions, stratified by class
    eval_batch_size: int = 8
    precision: str = "auto"  # auto / fp32 / bf16 / fp16
    device: str = "auto"
    num_workers: int = -1  # -1 auto: up to 8 per process on a GPU, 0 on the CPU (training/data.py)
    save_every_steps: int = 0  # also save the resumable state every N optimizer steps
    max_bad_steps: int = 20  # non-finite losses tolerated (skipped) before stopping

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ConfigError(
                f"train.selection must be one of {SELECTIONS}, got {self.selection!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"train.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}"
            )
        if self.warmup_steps < 0 or not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(
                "train.warmup_steps must be >= 0 and train.warmup_fraction in [0, 1), got "
                f"{self.warmup_steps} and {self.warmup_fraction}"
            )
        if self.warmup_steps and self.warmup_fraction:
            raise ConfigError(
                "train.warmup_steps and train.warmup_fraction are two spellings of one warmup "
                f"length; set one, got {self.warmup_steps} and {self.warmup_fraction}"
            )
        if not 0.0 <= self.text_dropout_utterances < 1.0:
            raise ConfigError(
                "train.text_dropout_utterances must be in [0, 1), got "
                f"{self.text_dropout_utterances}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not self.sessions:
            raise ConfigError("train.sessions must name at least one test session")


@dataclass
class Experiment:
    model: MMERConfig = field(default_factory=MMERConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.data.corpus not in CORPORA:
            raise ConfigError(
                f"data.corpus must be one of {sorted(CORPORA)}, got {self.data.corpus!r}"
            )
        groups = self.corpus.groups
        if self.corpus.protocol == "leave_one_group_out":
            bad = [s for s in self.train.sessions if s not in groups]
            if bad:
                raise ConfigError(
                    f"train.sessions must be {self.corpus.name} groups {list(groups)}, got "
                    f"{self.train.sessions}"
                )

    @property
    def corpus(self) -> Corpus:
        return CORPORA[self.data.corpus]

    @property
    def folds(self) -> tuple:
        """What a run trains and tests: the chosen sessions, or the corpus' one partition."""
        if self.corpus.protocol == "partition":
            return self.corpus.folds
        return tuple(self.train.sessions)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """A short hash of everything that defines the numbers (not paths, devices or kernels:
        which attention kernel or dropout-mask generator runs is a speed choice). A key added
        after the first runs counts only where it differs from its absence value."""
        d: dict[str, dict[str, Any]] = {}
        for section, values in self.to_dict().items():
            fields = {f.name: f for f in dataclasses.fields(getattr(self, section))}
            d[section] = {
                k: v
                for k, v in values.items()
                if k not in _NOT_HASHED[section]
                and (k in _FIRST_HASHED[section] or v != _absence_value(section, fields[k]))
            }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SECTIONS = {"model": MMERConfig, "data": DataConfig, "train": TrainConfig}


def _absence_value(section: str, f: dataclasses.Field) -> Any:
    """What a key that runs made before it existed did not have: _ABSENT_AS, else its default."""
    if (section, f.name) in _ABSENT_AS:
        return _ABSENT_AS[section, f.name]
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def load_experiment(
    path: str | Path | None, overrides: dict[str, dict[str, Any]] | None = None
) -> Experiment:
    """Read a YAML experiment and apply `overrides` ({section: {key: value}})."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected sections {sorted(SECTIONS)}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; valid: {sorted(SECTIONS)}")
    parts = {}
    for name, cls in SECTIONS.items():
        values = {**(raw.get(name) or {}), **((overrides or {}).get(name) or {})}
        parts[name] = cls(**check_fields(cls, values, f"{path or 'config'} [{name}]"))
    return Experiment(**parts)
