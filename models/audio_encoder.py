"""Build the audio encoder named by `MMERConfig.audio_encoder`.

`audio_encoder` may be
- a Hugging Face hub id (`facebook/wav2vec2-base`, `microsoft/wavlm-base-plus`, ...),
- a local HF directory (a `config.json`, and weights when `audio_encoder_pretrained`),
- a fairseq wav2vec 2.0 checkpoint (`*.pt`), converted on load.
With `audio_encoder_pretrained: false` only the architecture is built; the hub ids of the
architectures shipped in `configs/encoders/` then resolve offline.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import AttentionInterface, AutoConfig, AutoModel, PretrainedConfig
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from .attention import plain_attention, use_sdpa
from .config import MMERConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ENCODERS = REPO_ROOT / "configs" / "encoders"
# Hub ids whose architecture ships with the project (built offline from config alone).
SHIPPED_ALIASES = {"facebook/wav2vec2-base": "wav2vec2-base"}


# `attention_implementation: auto` inside the HF encoder: an attention function registered
# with transformers that picks SDPA or the plain kernel by the tensors' device at call time
# (so a model built on CPU and moved to a GPU, or back, always takes the faster kernel).
AUTO_ATTENTION = "mmer_auto"


def _auto_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kw):
    if use_sdpa("auto", query.device):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kw
        )
    fast = getattr(module.config, "mmer_fast_dropout", True)  # set by build_audio_encoder
    context = plain_attention(query, key, value, attention_mask, dropout, scaling, fast)
    return context.transpose(1, 2).contiguous(), None


AttentionInterface.register(AUTO_ATTENTION, _auto_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(AUTO_ATTENTION, sdpa_mask)  # boolean, None if no padding
HF_ATTENTION = {"auto": AUTO_ATTENTION, "sdpa": "sdpa", "eager": "eager"}


class EncoderError(ValueError):
    """The audio encoder cannot be found or built."""


def resolve_encoder_path(name: str) -> str:
    """A local directory for shipped architectures or existing paths; else `name` unchanged."""
    if Path(name).exists():
        return name
    in_repo = REPO_ROOT / name  # "configs/encoders/x" as a run saved it, from another cwd
    if not Path(name).is_absolute() and in_repo.is_dir():
        return str(in_repo)
    if name in SHIPPED_ALIASES:
        return str(SHIPPED_ENCODERS / SHIPPED_ALIASES[name])
    if (SHIPPED_ENCODERS / name).is_dir():
        return str(SHIPPED_ENCODERS / name)
    return name


def build_audio_encoder(config: MMERConfig) -> nn.Module:
    """An HF speech encoder (Wav2Vec2Model or compatible) with the MMER settings applied."""
    name = config.audio_encoder
    overrides = {
        "apply_spec_augment": config.apply_spec_augment,
        "attn_implementation": HF_ATTENTION[config.attention_implementation],
        **config.audio_encoder_overrides,
    }
    if name.endswith(".pt"):
        from .fairseq_wav2vec2 import load_fairseq_wav2vec2

        encoder = load_fairseq_wav2vec2(
            name,
            apply_spec_augment=config.apply_spec_augment,
            config_overrides={
                "_attn_implementation": overrides["attn_implementation"],
                **config.audio_encoder_overrides,
            },
        )
    elif config.audio_encoder_pretrained:
        try:
            encoder = AutoModel.from_pretrained(name, **overrides)
        except OSError as err:
            raise EncoderError(
                f"could not load pretrained audio encoder {name!r}: {err}\n"
                "Offline? Point `audio_encoder` at a local directory, or set "
                "`audio_encoder_pretrained: false` when a checkpoint provides the weights."
            ) from None
    else:
        attn = overrides.pop("attn_implementation")
        encoder = AutoModel.from_config(
            load_encoder_config(name, **overrides), attn_implementation=attn
        )
    if config.freeze_feature_encoder:
        encoder.freeze_feature_encoder()
    if not config.apply_spec_augment and getattr(encoder, "masked_spec_embed", None) is not None:
        encoder.masked_spec_embed.requires_grad_(False)  # only SpecAugment uses it
    encoder.config.mmer_fast_dropout = config.fast_dropout  # read by _auto_attention
    return encoder


def load_encoder_config(name: str, **overrides) -> PretrainedConfig:
    path = resolve_encoder_path(name)
    try:
        return AutoConfig.from_pretrained(path, **overrides)
    except OSError as err:
        raise EncoderError(
            f"no encoder architecture found for {name!r} ({err}). Use a local HF directory "
            f"with a config.json, or one of the shipped ones: "
            f"{sorted(p.name for p in SHIPPED_ENCODERS.iterdir() if p.is_dir())}"
        ) from None


def encoder_takes_attention_mask(encoder: nn.Module) -> bool:
    """wav2vec2-base (group-norm CNN) was trained on zero-padded audio without a mask;
    layer-norm variants (large-lv60, ...) expect one, as their feature extractor says."""
    return getattr(encoder.config, "feat_extract_norm", "group") == "layer"
