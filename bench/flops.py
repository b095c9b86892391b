"""Analytic model FLOPs of MMER (1 multiply-add = 2 FLOPs): the work achieved FLOP/s count.

Counted on the true (unpadded) lengths, so padding shows up as lost utilisation, and only
what the model runs:
- inference: one forward pass, without the CTC head and the projection heads;
- training: the original view (with the CTC head when CTC is trained, projection head P when
  SCL or ACL is) and, when ACL is trained, the augmented view (no CTC head, head P'); each pass
  forward + backward = 3x forward for everything that trains, except that
  - a frozen CNN feature encoder runs forward only, and the feature projection after it
    computes no gradient for its input (2x);
  - a trained CNN computes the waveform's gradient too (transformers' feature encoder sets
    `requires_grad` on its input in training), so all of it is 3x;
  - LayerDrop skips each transformer layer with probability `layerdrop` (expected value).
Matmuls and convolutions only: norms, activations, softmax and the losses are left out (a few %
at most; tests/test_bench_workload.py checks the count against torch's FLOP counter).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PretrainedConfig

from models.config import MMERConfig
from models.objectives import active_losses

# Dense bf16 peak of one GPU, TFLOP/s (datasheet); override with --peak-tflops. The first key
# found in the device name wins: PCIe and NVL parts before the SXM default of their family
# ("NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA H100 80GB HBM3" = SXM).
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "H200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
}


@dataclass(frozen=True)
class Pass:
    """FLOPs of one forward pass over one utterance, grouped by what its backward does."""

    cnn: int  # the convolutional feature encoder
    feature_projection: int  # its input is the CNN's output
    layers: int  # the encoder's transformer layers (LayerDrop applies)
    rest: int  # positional convolution, fusion, heads

    @property
    def forward(self) -> int:
        return self.cnn + self.feature_projection + self.layers + self.rest


def _attention_block(tq: int, tk: int, d: int, ff: int) -> int:
    """One post-LN block: Q from tq queries, K/V from tk keys, scores + context, out, FFN on tq."""
    proj = 2 * tq * d * d + 2 * 2 * tk * d * d + 2 * tq * d * d
    attn = 2 * 2 * tq * tk * d
    ffn = 2 * 2 * tq * d * ff
    return proj + attn + ffn


def cnn_flops(samples: int, enc: PretrainedConfig) -> tuple[int, int]:
    """(FLOPs, output frames) of the convolutional feature encoder on `samples`."""
    flops, length, c_in = 0, samples, 1
    for c_out, k, s in zip(enc.conv_dim, enc.conv_kernel, enc.conv_stride, strict=True):
        length = (length - k) // s + 1
        flops += 2 * length * c_out * c_in * k
        c_in = c_out
    return flops, length


def forward_pass(
    samples: int, tokens: int, enc: PretrainedConfig, cfg: MMERConfig, *, ctc: bool,
    projection: bool,
) -> Pass:  # fmt: skip
    """One utterance through the audio encoder and the fusion (`modalities: both`)."""
    if cfg.modalities != "both":
        raise ValueError(f"FLOPs are counted for modalities 'both', not {cfg.modalities!r}")
    cnn, t = cnn_flops(int(samples), enc)
    d_a, d, ff = enc.hidden_size, cfg.hidden_size, cfg.intermediate_size
    groups, k = enc.num_conv_pos_embedding_groups, enc.num_conv_pos_embeddings
    rest = 2 * t * d_a * (d_a // groups) * k  # convolutional positional embedding
    if ctc:
        rest += 2 * t * d_a * cfg.ctc_vocab_size
    if cfg.text_dim != d:
        rest += 2 * tokens * cfg.text_dim * d  # text projection
    rest += _attention_block(tokens, tokens, d, ff)  # text self-attention
    rest += 2 * 2 * t * d_a * d  # audio_keys, audio_queries
    rest += _attention_block(tokens, t, d, ff)  # X1: text -> audio
    rest += _attention_block(t, tokens, d, ff)  # X2: audio -> text
    rest += _attention_block(tokens, t, d, ff)  # X3: text -> text-aware audio
    rest += 2 * tokens * 2 * d * d + 2 * 2 * d * d  # gate (per token), fused projection (pooled)
    feat = d_a + d
    rest += 2 * feat * cfg.num_classes  # classifier
    if projection:
        rest += 2 * feat * d + 2 * d * d  # projection head P (or P')
    return Pass(
        cnn=cnn,
        feature_projection=2 * t * enc.conv_dim[-1] * d_a,
        layers=enc.num_hidden_layers * _attention_block(t, t, d_a, enc.intermediate_size),
        rest=rest,
    )


def training_pass(p: Pass, enc: PretrainedConfig, cfg: MMERConfig) -> float:
    """Forward + backward FLOPs of a training pass (expected value under LayerDrop)."""
    if cfg.freeze_feature_encoder:
        cnn = p.cnn + 2 * p.feature_projection
    else:
        cnn = 3 * (p.cnn + p.feature_projection)
    keep = 1.0 - (getattr(enc, "layerdrop", 0.0) or 0.0)
    return cnn + 3 * keep * p.layers + 3 * p.rest


def training_flops(
    views: list[tuple[list[int], list[int]]], enc: PretrainedConfig, cfg: MMERConfig
) -> float:
    """FLOPs of one training micro-batch: `views` is [(samples, tokens) of the original view,
    (samples, tokens) of the augmented view (when fed)], per utterance."""
    active = active_losses(cfg)
    total = 0.0
    for v, (samples, tokens) in enumerate(views):
        if v == 1 and "acl" not in active:
            break  # no augmented pass
        projection = "acl" in active or (v == 0 and "scl" in active)
        for n, k in zip(samples, tokens, strict=True):
            p = forward_pass(n, k, enc, cfg, ctc=v == 0 and "ctc" in active, projection=projection)
            total += training_pass(p, enc, cfg)
    return total


def inference_flops(samples: list[int], tokens: list[int], enc: PretrainedConfig,
                    cfg: MMERConfig) -> int:  # fmt: skip
    """FLOPs of predicting these utterances (forward only, no CTC or projection heads)."""
    return sum(
        forward_pass(n, k, enc, cfg, ctc=False, projection=False).forward
        for n, k in zip(samples, tokens, strict=True)
    )


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak FLOP/s of a known GPU, from its name; None when unknown."""
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return tflops * 1e12
    return None
