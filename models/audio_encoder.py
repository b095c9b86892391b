"""Build the audio encoder named by `MMERConfig.audio_encoder`.

`audio_encoder` may be
- a Hugging Face hub id (`facebook/wav2vec2-base`, `microsoft/wavlm-base-plus`, ...),
- a local HF directory (a `config.json`, and weights when `audio_encoder_pretrained`),
- a fairseq wav2vec 2.0 checkpoint (`*.pt`), converted on load.
With `audio_encoder_pretrained: false` only the architecture is built; the hub ids of the
architectures shipped in `configs/encoders/` then resolve offline.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, AutoConfig, AutoModel, PretrainedConfig
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import (
    ALL_MASK_ATTENTION_FUNCTIONS,
    bidirectional_mask_function,
    sdpa_mask,
)

from utils.errors import MMERError

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


def _key_padding_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    kv_offset: int = 0,
    mask_function=bidirectional_mask_function,
    attention_mask: torch.Tensor | None = None,
    allow_is_bidirectional_skip: bool = False,
    use_vmap: bool = False,
    **kw,
) -> torch.Tensor | None:
    """The encoder's padding mask as (batch, 1, 1, keys) booleans (True = attend), or None
    where nothing is padded. Every query row of a bidirectional padding mask is the same, so
    it broadcasts over queries: the (batch, 1, T, T) mask `sdpa_mask` materialises costs a full
    pass over the scores per layer to invert and apply. Any other mask goes to `sdpa_mask`."""
    plain = mask_function is bidirectional_mask_function and not use_vmap and kv_offset == 0
    if not plain or attention_mask is None or attention_mask.shape[-1] != kv_length:
        return sdpa_mask(
            batch_size, q_length, kv_length, kv_offset=kv_offset, mask_function=mask_function,
            attention_mask=attention_mask, allow_is_bidirectional_skip=allow_is_bidirectional_skip,
            use_vmap=use_vmap, **kw,
        )  # fmt: skip
    keys = attention_mask.bool()
    tracing = torch.compiler.is_compiling() or torch.compiler.is_exporting()
    if allow_is_bidirectional_skip and not tracing and bool(keys.all()):
        return None
    return keys[:, None, None, :]


AttentionInterface.register(AUTO_ATTENTION, _auto_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(AUTO_ATTENTION, _key_padding_mask)
HF_ATTENTION = {"auto": AUTO_ATTENTION, "sdpa": "sdpa", "eager": "eager"}


class EncoderError(MMERError, ValueError):
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
    _normalise_valid_frames_only(encoder)
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


# -- padding-exact encoding ------------------------------------------------------------------
# An utterance's frames must not depend on what it is batched or padded with. Zero padding
# reaches the frames of a group-norm encoder (wav2vec2-base, HuBERT/WavLM base) in three
# places: the first conv layer's GroupNorm statistics (over all time steps), the positional
# conv, and self-attention. The conv stack itself is padding-free, so a valid output frame
# only sees valid samples. `padding="exact"` therefore normalises the first conv layer over
# each utterance's valid frames only, and passes the attention mask, with which the HF
# encoder zeroes padded frames before the positional conv and masks them out of attention.
# The result equals the unpadded batch-1 forward, which is how the authors scored utterances.
# `padding="published"` calls a group-norm encoder without a mask, as their training did.


class ValidFrameGroupNorm(nn.GroupNorm):
    """GroupNorm over time whose statistics cover each utterance's first `valid_frames[i]`
    frames only (`valid_frames`, (batch,) int, is set for one forward call by
    `valid_frames_only`). Padded frames come out as zeros. With `valid_frames` None it is a
    plain GroupNorm. The parameters are GroupNorm's, so state dicts are unchanged."""

    valid_frames: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (batch, channels, frames)
        if self.valid_frames is None:
            return super().forward(x)
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return self._masked(x, self.valid_frames)  # a graph without data-dependent shapes
        if x.shape[0] == 1 and int(self.valid_frames[0]) >= x.shape[-1]:
            return super().forward(x)  # one unpadded utterance: the plain call is that kernel
        out = torch.empty_like(x)  # written once: valid frames normalised, the rest zeros
        for i, n in enumerate(self.valid_frames.tolist()):  # one host sync per batch
            # the very kernel the unpadded utterance goes through, on its valid frames
            out[i, :, :n] = F.group_norm(x[i : i + 1, :, :n], self.num_groups, self.weight,
                                         self.bias, self.eps)[0]  # fmt: skip
            out[i, :, n:] = 0
        return out

    def _masked(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The same statistics as masked sums (equal to float rounding, several passes)."""
        batch, channels, frames = x.shape
        per_group = channels // self.num_groups
        mask = (torch.arange(frames, device=x.device)[None] < valid[:, None]).to(x.dtype)
        grouped = x.reshape(batch, self.num_groups, per_group, frames)
        m = mask[:, None, None, :]
        count = (valid.to(x.dtype) * per_group).clamp(min=1)[:, None, None, None]
        mean = (grouped * m).sum((2, 3), keepdim=True) / count
        var = (((grouped - mean) * m) ** 2).sum((2, 3), keepdim=True) / count
        y = ((grouped - mean) * torch.rsqrt(var + self.eps)).reshape(batch, channels, frames)
        return (y * self.weight[:, None] + self.bias[:, None]) * mask[:, None, :]


def _first_conv_layer(encoder: nn.Module) -> nn.Module | None:
    extractor = getattr(encoder, "feature_extractor", None)
    layers = getattr(extractor, "conv_layers", None)
    return layers[0] if layers else None


def _normalise_valid_frames_only(encoder: nn.Module) -> None:
    """Swap the first conv layer's GroupNorm (group-norm encoders) for `ValidFrameGroupNorm`."""
    layer = _first_conv_layer(encoder)
    norm = getattr(layer, "layer_norm", None)
    if type(norm) is nn.GroupNorm:
        exact = ValidFrameGroupNorm(norm.num_groups, norm.num_channels, norm.eps, norm.affine)
        exact.load_state_dict(norm.state_dict())
        exact.requires_grad_(norm.weight.requires_grad)  # frozen with the CNN, or not
        layer.layer_norm = exact.to(norm.weight.device, norm.weight.dtype)


@contextmanager
def valid_frames_only(encoder: nn.Module, audio_lengths: torch.Tensor):
    """Within the block, the first conv layer's GroupNorm (if any) sees valid frames only."""
    layer = _first_conv_layer(encoder)
    norm = getattr(layer, "layer_norm", None)
    if not isinstance(norm, ValidFrameGroupNorm):
        yield
        return
    kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
    norm.valid_frames = ((audio_lengths - kernel) // stride + 1).clamp(min=0)
    try:
        yield
    finally:
        norm.valid_frames = None


def encode_audio(
    encoder: nn.Module,
    audio: torch.Tensor,
    audio_lengths: torch.Tensor,
    padding: str = "exact",
    audio_lengths_host: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """audio (batch, samples), zero-padded -> frames (batch, frames, hidden), frame_lengths.

    padding "exact": each utterance's valid frames equal its unpadded batch-1 forward.
    "published": group-norm encoders see the zero padding (no mask), as the authors trained.
    `audio_lengths_host`: the same counts on the CPU, if at hand (saves a device sync).
    """
    frame_lengths = encoder._get_feat_extract_output_lengths(audio_lengths)
    exact = padding == "exact"
    mask = None
    if exact or encoder_takes_attention_mask(encoder):
        mask = torch.arange(audio.shape[1], device=audio.device)[None] < audio_lengths[:, None]
        mask = mask.long()
    if exact:
        host = audio_lengths if audio_lengths_host is None else audio_lengths_host
        with valid_frames_only(encoder, host):
            frames = encoder(audio, attention_mask=mask).last_hidden_state
    else:
        frames = encoder(audio, attention_mask=mask).last_hidden_state
    return frames, frame_lengths.clamp(max=frames.shape[1])
