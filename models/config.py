"""MMERConfig: every architectural number of the model in one place.

The experiment YAML (`configs/*.yaml`) has a `model:` section with exactly these keys;
a checkpoint directory stores them as `config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.errors import MMERError

MODALITIES = ("both", "audio", "text")
AUDIO_PADDING = ("exact", "published")  # see models/audio_encoder.py
ATTENTION_IMPLEMENTATIONS = ("auto", "sdpa", "eager")


class ConfigError(MMERError, ValueError):
    """A config file or override has an unknown key or a value of the wrong type."""


@dataclass
class MMERConfig:
    # Audio encoder: HF hub id, local HF directory, or a fairseq wav2vec 2.0 `.pt` file.
    audio_encoder: str = "facebook/wav2vec2-base"
    # True: load the encoder's pretrained weights. False: build it from its config only
    # (offline; the weights then come from an MMER checkpoint).
    audio_encoder_pretrained: bool = True
    freeze_feature_encoder: bool = True  # the CNN, as in the reference
    apply_spec_augment: bool = False  # the reference turns SpecAugment off
    # Extra Wav2Vec2Config overrides (e.g. {"layerdrop": 0.0}).
    audio_encoder_overrides: dict[str, Any] = field(default_factory=dict)
    # "exact": an utterance's frames (and logits) are those of its unpadded batch-1 forward,
    # whatever it is batched or padded with. "published": a group-norm encoder (wav2vec2-base)
    # sees the batch's zero padding, as in the authors' training code.
    audio_padding: str = "exact"

    text_dim: int = 768  # width of the precomputed token embeddings (RoBERTa-base: 768)
    hidden_size: int = 768  # fusion width; text is projected to it only if text_dim differs
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1  # text input dropout and the BERT blocks' hidden dropout
    attention_dropout: float = 0.1
    ctc_dropout: float = 0.1  # on encoder frames, before the CTC head only
    # "auto": torch SDPA on GPUs, plain matmul-softmax-matmul on CPU (faster there, see
    # models/attention.py); "sdpa" or "eager" (the reference's) force one everywhere.
    attention_implementation: str = "auto"
    # Dropout masks from a cheaper random generator on CPU (models/dropout.py; same keep
    # probability to 1/32768, ~3x faster); false: torch's F.dropout, as the reference.
    fast_dropout: bool = True
    # Affine-free LayerNorm on each pooled feature (not in the paper; helps tiny encoders
    # trained from scratch generalise to unseen voices). Off for the paper configuration.
    pooled_feature_norm: bool = False

    num_classes: int = 4
    ctc_vocab_size: int = 32
    modalities: str = "both"  # "both", "audio" (audio-only ablation) or "text"

    # Objective: CE + lambda_aux * sum(weight * loss) over models/objectives.py's auxiliary
    # losses; the paper's three (CTC + SCL + ACL, weight 1 each) have their own switches.
    lambda_aux: float = 0.1
    temperature: float = 0.07
    use_ctc: bool = True
    use_scl: bool = True  # supervised contrastive over the batch
    use_acl: bool = True  # contrastive against the augmented view
    auxiliary_losses: dict[str, float] = field(
        default_factory=lambda: {"ctc": 1.0, "scl": 1.0, "acl": 1.0}
    )

    def __post_init__(self) -> None:
        if self.modalities not in MODALITIES:
            raise ConfigError(f"modalities must be one of {MODALITIES}, got {self.modalities!r}")
        if self.audio_padding not in AUDIO_PADDING:
            raise ConfigError(
                f"audio_padding must be one of {AUDIO_PADDING}, got {self.audio_padding!r}"
            )
        if self.attention_implementation not in ATTENTION_IMPLEMENTATIONS:
            raise ConfigError(
                f"attention_implementation must be one of {ATTENTION_IMPLEMENTATIONS}, "
                f"got {self.attention_implementation!r}"
            )
        from .objectives import AUXILIARY_LOSSES  # the registry imports this module

        unknown = sorted(set(self.auxiliary_losses) - set(AUXILIARY_LOSSES))
        if unknown:
            raise ConfigError(
                f"auxiliary_losses: unknown loss(es) {unknown}; registered: "
                f"{sorted(AUXILIARY_LOSSES)} (models/objectives.py)"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                f"{self.num_attention_heads}"
            )

    @property
    def uses_audio(self) -> bool:
        return self.modalities in ("both", "audio")

    @property
    def uses_text(self) -> bool:
        return self.modalities in ("both", "text")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> MMERConfig:
        return cls(**check_fields(cls, values, source))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, path: str | Path) -> MMERConfig:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f), source=str(path))

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def check_fields(cls: type, values: dict[str, Any], source: str) -> dict[str, Any]:
    """Validate `values` against the dataclass `cls`: known keys, right types.

    Ints are accepted for float fields; everything else must match exactly so that a
    typo such as `lambda_aux: "0.1"` fails loudly instead of training something else.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {unknown}. Valid keys: {', '.join(sorted(known))}"
        )
    out = {}
    for key, value in values.items():
        expected = hints[key]
        if not _matches(value, expected):
            raise ConfigError(
                f"{source}: {key} must be {_type_name(expected)}, got {value!r} "
                f"({type(value).__name__})"
            )
        out[key] = float(value) if expected is float else value
    return out


def _matches(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is Any:
        return True
    if origin is not None:
        return isinstance(value, origin)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", str(expected))
