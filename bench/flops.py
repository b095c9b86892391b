"""Analytic model FLOPs of MMER (1 multiply-add = 2 FLOPs), for throughput and MFU.

Counted on the true (unpadded) lengths, so padding shows up as lost utilisation.
Training = forward + backward = 3x forward for everything that trains; the frozen CNN
feature encoder runs forward only (no parameter grads, and the waveform needs none).
Norms, activations, softmax and the losses are left out (a few % at most).
"""

from __future__ import annotations

from transformers import PretrainedConfig

from models.config import MMERConfig

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


def _attention_block(tq: int, tk: int, d: int, ff: int) -> int:
    """One post-LN block: Q from tq queries, K/V from tk keys, scores + context, out, FFN on tq."""
    proj = 2 * tq * d * d + 2 * 2 * tk * d * d + 2 * tq * d * d
    attn = 2 * 2 * tq * tk * d
    ffn = 2 * 2 * tq * d * ff
    return proj + attn + ffn


def cnn_flops(samples: int, enc: PretrainedConfig) -> tuple[int, int]:
    """(FLOPs, frames) of the conv feature encoder on `samples` of audio."""
    flops, length, c_in = 0, samples, 1
    for c_out, k, s in zip(enc.conv_dim, enc.conv_kernel, enc.conv_stride, strict=True):
        length = (length - k) // s + 1
        flops += 2 * length * c_out * c_in * k
        c_in = c_out
    return flops, length


def utterance_flops(
    samples: int, tokens: int, enc: PretrainedConfig, cfg: MMERConfig
) -> tuple[int, int]:
    """(frozen CNN FLOPs, trainable-part FLOPs) of one forward pass on one utterance."""
    cnn, t = cnn_flops(samples, enc)
    d_a, d, ff = enc.hidden_size, cfg.hidden_size, cfg.intermediate_size
    rest = 2 * t * enc.conv_dim[-1] * d_a  # feature projection
    groups, k = enc.num_conv_pos_embedding_groups, enc.num_conv_pos_embeddings
    rest += 2 * t * d_a * (d_a // groups) * k  # convolutional positional embedding
    rest += enc.num_hidden_layers * _attention_block(t, t, d_a, enc.intermediate_size)
    rest += 2 * t * d_a * cfg.ctc_vocab_size  # CTC head
    rest += _attention_block(tokens, tokens, d, ff)  # text self-attention
    rest += 2 * 2 * t * d_a * d  # audio_keys, audio_queries
    rest += _attention_block(tokens, t, d, ff)  # X1: text -> audio
    rest += _attention_block(t, tokens, d, ff)  # X2: audio -> text
    rest += _attention_block(tokens, t, d, ff)  # X3: text -> text-aware audio
    rest += 2 * tokens * 2 * d * d + 2 * 2 * d * d  # gate, fused projection
    feat = d_a + d
    rest += 2 * feat * cfg.num_classes  # classifier
    rest += 2 * feat * d + 2 * d * d  # projection head P (or P')
    return cnn, rest


def batch_flops(
    sample_counts: list[int], tokens: int, enc: PretrainedConfig, cfg: MMERConfig, training: bool
) -> int:
    """Model FLOPs of a forward (or forward + backward if `training`) over these utterances."""
    total = 0
    for n in sample_counts:
        cnn, rest = utterance_flops(int(n), tokens, enc, cfg)
        total += cnn + (3 * rest if training else rest)
    return total


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak FLOP/s of a known GPU, from its name; None when unknown."""
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return tflops * 1e12
    return None
